"""TextWorldExpress as the bench's environment: seeds, folds, the step budget, what the agent sees.

The agent sees only what the game shows a player: the observation, the room
description (``look``), the inventory, the task text, the valid actions and
the score. The gold path is read once per episode for one number only, the
step budget (the environment's own evaluation setting: the gold path's length,
as the environment returns it, plus 3); the policy never sees it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ltm_agent.errors import InvalidInputError, MissingExtraError

__all__ = ["Observation", "TwxEnv", "parse_env"]

FOLDS = ("train", "dev")  # the test fold is reserved for verification and never used here


@dataclass(frozen=True, slots=True)
class Observation:
    """What the agent is shown after a reset or a step."""

    text: str
    look: str
    inventory: str
    task: str
    valid_actions: tuple[str, ...]
    score: float
    reward: float
    done: bool
    won: bool

    @property
    def situation(self) -> str:
        """The text memory is keyed by: where the agent is and what it holds.

        The first sentence of the room description (which room) plus the
        inventory, one short line: a sentence encoder reads only its first 128
        word pieces, and a whole room listing would drown what changed. Generic
        text handling, the same for every game.
        """
        room = _first_sentence(self.look) or _first_sentence(self.text)
        held = " ".join(line.strip() for line in self.inventory.splitlines()[1:] if line.strip())
        return f"{room} Holding: {held or 'nothing'}"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def parse_env(spec: str) -> str:
    """The game name of an ``twx:<game>`` spec."""
    if not spec.startswith("twx:") or not spec[4:]:
        raise InvalidInputError(f"--env must look like 'twx:<game>' (e.g. twx:twc), got {spec!r}")
    return spec[4:]


class TwxEnv:
    """One TextWorldExpress game with a fixed parameter string (needs Java 17).

    Args:
        game: ``twc``, ``coin``, ``cookingworld``, ... (TextWorldExpress names).
        params: The game's parameter string, e.g. ``numLocations=1,includeDoors=0``.
        extra_steps: Steps allowed beyond the gold path's length.
    """

    def __init__(self, game: str, params: str = "", *, extra_steps: int = 3) -> None:
        try:
            from textworld_express import TextWorldExpressEnv
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtraError(
                "textworld-express is not installed; pip install 'ltm-agent[bench]' (needs a Java 17 runtime)"
            ) from exc
        self.game, self.params, self.extra_steps = game, params, extra_steps
        self._env: Any = TextWorldExpressEnv(envStepLimit=10_000)
        self._env.load(gameName=game, gameParams=params)
        self.budget = 0
        self._steps = 0

    def seeds(self, fold: str) -> list[int]:
        if fold not in FOLDS:
            raise InvalidInputError(f"fold must be one of {FOLDS} (test is reserved), got {fold!r}")
        getter = self._env.getValidSeedsTrain if fold == "train" else self._env.getValidSeedsDev
        return list(getter())

    def stream(self, fold: str, episodes: int, seed: int, pool_size: int | None = None) -> list[int]:
        """A seeded order of game seeds from ``fold`` (the same for every arm of a run).

        ``pool_size`` draws only from the fold's first that-many games (games then
        repeat: a quick check that the loop learns at all).
        """
        pool = self.seeds(fold)[:pool_size] if pool_size else self.seeds(fold)
        rng = random.Random(seed)
        return [rng.choice(pool) for _ in range(episodes)]

    def reset(self, game_seed: int, fold: str) -> Observation:
        obs, infos = self._env.reset(seed=game_seed, gameFold=fold, generateGoldPath=True)
        self.budget = len(self._env.getGoldActionSequence()) + self.extra_steps
        self._steps = 0
        return self._observation(obs, infos, 0.0)

    def step(self, action: str) -> Observation:
        obs, reward, _done, infos = self._env.step(action)
        self._steps += 1
        return self._observation(obs, infos, float(reward))

    def _observation(self, obs: str, infos: dict[str, Any], reward: float) -> Observation:
        won = bool(infos.get("tasksuccess", False))
        done = won or bool(infos.get("taskfailure", False)) or self._steps >= self.budget
        return Observation(
            text=obs,
            look=str(infos.get("look", "")),
            inventory=str(infos.get("inventory", "")),
            task=str(infos.get("taskDescription", "")),
            valid_actions=tuple(sorted(infos.get("validActions", []))),
            score=float(infos.get("score", 0.0)),
            reward=reward,
            done=done,
            won=won,
        )

    @property
    def steps(self) -> int:
        return self._steps

    def close(self) -> None:
        self._env.close()
