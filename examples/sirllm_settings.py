"""SirLLM's three settings, scaled down: what an EntropyDecayBuffer keeps over ~15 turns.

SirLLM (Yao et al., ACL 2024) evaluates its entropy-decay cache on DailyDialog
(decay 0.7), a Grocery shopping memory task (decay 1.0) and Rock-Paper-Scissors
(decay 0.9), with 4 start (sink) tokens plus 508-1020 entropy-kept tokens. Here
each setting is a short scripted dialogue with a budget of 4 sink units plus
120 tokens of rendered text.

Scores come from the local model (SmolLM2-135M on llama.cpp) when the
``[local]`` extra is installed, else from the statistical fallback (word
unigram self-information - not entropy from an LM). Pass ``--statistical`` to
force the fallback.

Run (about 40 s with the local model on a busy 2-core machine, under a second with the fallback):
    python examples/sirllm_settings.py
"""

from __future__ import annotations

import argparse
import os
import time

from ltm_agent.buffer import EntropyDecayBuffer, StatisticalScorer, TokenScorer, default_scorer
from ltm_agent.buffer.local_model import THREADS_ENV
from ltm_agent.tokens import count_tokens

SINKS = 4
ENTROPY_KEPT = 60

DAILY_DIALOG = [
    ("user", "Hi! I'm Marguerite, I just moved here from Quebec City."),
    ("assistant", "Welcome! How are you finding the neighbourhood?"),
    ("user", "It's nice. Quiet. I work nights as a pediatric nurse, so quiet matters."),
    ("assistant", "That makes sense. Do you have any plans for the weekend?"),
    ("user", "Maybe a walk by the river. The weather looks good."),
    ("assistant", "Sounds lovely. Bring a jacket though, it gets windy."),
    ("user", "Thanks, I will."),
    ("assistant", "Have you found a good bakery yet?"),
    ("user", "Not yet. Any recommendations?"),
    ("assistant", "Try Boulangerie Fontaine on Elm Street, their rye bread is great."),
    ("user", "Oh nice, I love rye bread."),
    ("assistant", "They open at seven."),
    ("user", "Perfect, that is right after my shift ends."),
    ("assistant", "Great. Anything else you need to know?"),
    ("user", "Where is the closest pharmacy?"),
]

GROCERY = [
    ("user", "Please remember my shopping list for Saturday."),
    ("assistant", "Sure, go ahead."),
    ("user", "I need two avocados and a bag of basmati rice."),
    ("assistant", "Got it."),
    ("user", "Also oat milk, the unsweetened kind."),
    ("assistant", "Noted."),
    ("user", "By the way, how was your day?"),
    ("assistant", "Pretty good, thanks for asking."),
    ("user", "Add saffron, a small jar, for the paella."),
    ("assistant", "Added."),
    ("user", "And dishwasher tablets. We ran out yesterday."),
    ("assistant", "Okay."),
    ("user", "The weather has been so grey this week."),
    ("assistant", "It really has."),
    ("user", "What is on my list?"),
]

ROCK_PAPER_SCISSORS = [
    ("user", "Let's play rock paper scissors. I pick rock."),
    ("assistant", "I pick paper. I win."),
    ("user", "rock"),
    ("assistant", "paper, I win again."),
    ("user", "paper"),
    ("assistant", "scissors. I win."),
    ("user", "rock"),
    ("assistant", "scissors. You win this one."),
    ("user", "rock"),
    ("assistant", "paper. I win."),
    ("user", "scissors"),
    ("assistant", "rock. I win."),
    ("user", "rock"),
    ("assistant", "paper. I win."),
    ("user", "Which move do I play most often?"),
]

SETTINGS = [
    ("DailyDialog-like", 0.7, DAILY_DIALOG),
    ("Grocery", 1.0, GROCERY),
    ("Rock-Paper-Scissors", 0.9, ROCK_PAPER_SCISSORS),
]


def run_setting(name: str, decay: float, dialogue: list[tuple[str, str]], scorer: TokenScorer) -> None:
    """Feed one scripted dialogue through a buffer and print what it kept."""
    buffer = EntropyDecayBuffer(SINKS + ENTROPY_KEPT, decay=decay, sink_units=SINKS, unit="phrase", scorer=scorer)
    full = "\n".join(f"{role}: {text}" for role, text in dialogue)
    start = time.perf_counter()
    for role, text in dialogue:
        buffer.update(text, role=role)
    stats = buffer.stats
    print(f"=== {name} (decay {decay}) ===")
    print(
        f"{stats.turns_seen} turns, {count_tokens(full)} tokens of dialogue -> kept {stats.units_kept} of "
        f"{stats.units_seen} phrases, {stats.rendered_tokens}/{buffer.budget_tokens} tokens "
        f"({time.perf_counter() - start:.1f} s)"
    )
    print(buffer.render())
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statistical", action="store_true", help="use the statistical fallback scorer")
    args = parser.parse_args()
    # One llama.cpp thread keeps this example under a minute on a small machine whose cores are
    # shared with other work (two threads then stall each other); export the variable to override.
    os.environ.setdefault(THREADS_ENV, "1")
    for name, decay, dialogue in SETTINGS:
        # A fresh scorer per setting: the statistical one keeps running counts.
        scorer = StatisticalScorer() if args.statistical else default_scorer()
        if name == SETTINGS[0][0]:
            kind = "statistical fallback (not entropy from an LM)" if isinstance(scorer, StatisticalScorer) else "local LM"
            print(f"scorer: {scorer.name} - {kind}\n")
        run_setting(name, decay, dialogue, scorer)


if __name__ == "__main__":
    main()
