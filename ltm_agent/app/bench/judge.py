"""LongMemEval's LLM judge: the paper's per-type answer-check prompts, on any chat model.

The prompts are those of LongMemEval's reference evaluation
(``src/evaluation/evaluate_qa.py``, Wu et al., ICLR 2025, MIT licence): a
yes/no question to the judge, with per-type leniency —

* ``single-session-user`` / ``-assistant`` / ``multi-session``: the response
  must contain the correct answer (or all intermediate steps to it);
* ``temporal-reasoning``: the same, and off-by-one errors in counts of
  days/weeks/months are not penalised;
* ``knowledge-update``: correct when the updated answer is given, even if
  earlier information is mentioned too;
* ``single-session-preference``: the gold is a rubric; correct when the
  response recalls and uses the user's personal information;
* abstention (``question_id`` ending in ``_abs``): correct when the response
  identifies the question as unanswerable.

The verdict is ``"yes" in reply.lower()``, as in the reference. With no judge
configured the QA bench leaves ``judge`` null and scores by F1/exact match.

Core type: :class:`LongMemEvalJudge`; function :func:`judge_prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from ltm_agent.app.bench.datasets import Question
from ltm_agent.errors import ModelError
from ltm_agent.llm import ModelStep, UsageLedger

__all__ = ["JUDGE_TEMPLATES", "JudgeVerdict", "LongMemEvalJudge", "judge_prompt"]

_INTRO = (
    "I will give you a question, a correct answer, and a response from a model. Please answer yes if the "
    "response contains the correct answer. Otherwise, answer no. "
)
_STEPS = (
    "If the response is equivalent to the correct answer or contains all the intermediate steps to get the "
    "correct answer, you should also answer yes. If the response only contains a subset of the information "
    "required by the answer, answer no. "
)
_TAIL = (
    "\n\nQuestion: {}\n\nCorrect Answer: {}\n\nModel Response: {}\n\n"
    "Is the model response correct? Answer yes or no only."
)

_DEFAULT = _INTRO + _STEPS + _TAIL
JUDGE_TEMPLATES: dict[str, str] = {
    "single-session-user": _DEFAULT,
    "single-session-assistant": _DEFAULT,
    "multi-session": _DEFAULT,
    "temporal-reasoning": _INTRO + _STEPS + (
        "In addition, do not penalize off-by-one errors for the number of days. If the question asks for the "
        "number of days/weeks/months, etc., and the model makes off-by-one errors (e.g., predicting 19 days when "
        "the answer is 18), the model's response is still correct. "
    ) + _TAIL,
    "knowledge-update": _INTRO + (
        "If the response contains some previous information along with an updated answer, the response should "
        "be considered as correct as long as the updated answer is the required answer."
    ) + _TAIL,
    "single-session-preference": (
        "I will give you a question, a rubric for desired personalized response, and a response from a model. "
        "Please answer yes if the response satisfies the desired response. Otherwise, answer no. The model does "
        "not need to reflect all the points in the rubric. The response is correct as long as it recalls and "
        "utilizes the user's personal information correctly.\n\nQuestion: {}\n\nRubric: {}\n\nModel Response: "
        "{}\n\nIs the model response correct? Answer yes or no only."
    ),
    "abstention": (
        "I will give you an unanswerable question, an explanation, and a response from a model. Please answer yes "
        "if the model correctly identifies the question as unanswerable. The model could say that the information "
        "is incomplete, or some other information is given but the asked information is not.\n\nQuestion: {}\n\n"
        "Explanation: {}\n\nModel Response: {}\n\nDoes the model correctly identify the question as "
        "unanswerable? Answer yes or no only."
    ),
}
"""LongMemEval's judge templates by question type (``"abstention"`` for ``_abs`` questions)."""


def judge_prompt(question: Question, response: str) -> str:
    """The LongMemEval judge prompt for one response (unknown types get the default template).

    Example:
        >>> q = Question(id="x_abs", dataset="longmemeval", category="multi-session", text="Q?",
        ...              answer="Not said.", conversation_id="x_abs", abstention=True)
        >>> judge_prompt(q, "No idea.").startswith("I will give you an unanswerable question")
        True
    """
    kind = "abstention" if question.abstention else question.category
    template = JUDGE_TEMPLATES.get(kind, _DEFAULT)
    return template.format(question.text, question.answer, response)


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    """One judge call.

    Attributes:
        label: The verdict, or ``None`` when the judge failed (see ``error``).
        reply: The judge's raw reply.
        prompt_tokens: Judge input tokens.
        completion_tokens: Judge output tokens.
        error: Why the judge failed, else ``None``.
    """

    label: bool | None
    reply: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


class LongMemEvalJudge:
    """LongMemEval's LLM judge on any LangChain chat model (the paper used GPT-4o at temperature 0).

    Args:
        model: The judge chat model.
        name: The name outputs give the judge.
        timeout_s: Seconds one call may take.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        >>> q = Question(id="q1", dataset="longmemeval", category="temporal-reasoning", text="How many days?",
        ...              answer="18", conversation_id="q1")
        >>> judge = LongMemEvalJudge(GenericFakeChatModel(messages=iter(["Yes."])), name="fake")
        >>> judge.verdict(q, "19 days").label
        True
    """

    def __init__(self, model: BaseChatModel, *, name: str, timeout_s: float | None = 300.0) -> None:
        self.model = model
        self.name = name
        self.timeout_s = timeout_s

    def verdict(self, question: Question, response: str) -> JudgeVerdict:
        """Judge ``response`` to ``question``; a failed call gives ``label=None`` and an error."""
        ledger = UsageLedger()
        step = ModelStep(self.model, ledger=ledger, timeout_s=self.timeout_s)
        try:
            reply = step.invoke_text("bench.qa.judge", [HumanMessage(judge_prompt(question, response))])
            label: bool | None = "yes" in reply.lower()
            error = None
        except ModelError as exc:
            reply, label, error = "", None, f"{type(exc).__name__}: {exc}"
        prompt = sum(c.prompt_tokens for c in ledger.calls)
        completion = sum(c.completion_tokens for c in ledger.calls)
        return JudgeVerdict(label, reply, prompt, completion, error)
