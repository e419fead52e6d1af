"""Every script in ``examples/`` runs to completion (exit 0) as its own process, offline.

Scripts are found by globbing, so a new example is tested without editing this
file. Each runs in a temporary working directory with a timeout.

Measured on the project's shared 2-core machine (sequential, loaded): the
LangGraph, LlamaIndex and shared-server examples take 5-15 s each;
``thirty_sessions.py`` about 75 s; ``sirllm_settings.py`` about 250 s with the
local model (its default when the ``[local]`` extra is installed), so it runs
here with ``--statistical`` (under 1 s) to keep this file under ~3 minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))

ARGS: dict[str, list[str]] = {
    # The local llama.cpp scorer takes ~250 s here; the statistical path runs the same script logic.
    "sirllm_settings.py": ["--statistical"],
}
TIMEOUT_S: dict[str, float] = {"thirty_sessions.py": 150.0}
DEFAULT_TIMEOUT_S = 90.0


def test_examples_are_found() -> None:
    assert len(SCRIPTS) >= 5, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"}
    timeout = TIMEOUT_S.get(script.name, DEFAULT_TIMEOUT_S)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(script), *ARGS.get(script.name, [])],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or ""
        tail = (output.decode(errors="replace") if isinstance(output, bytes) else output)[-2000:]
        pytest.fail(f"{script.name} did not finish within {timeout:.0f} s; last output:\n{tail}")
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, (
        f"{script.name} exited {done.returncode} after {elapsed:.1f} s\n"
        f"--- stdout (tail)\n{done.stdout[-3000:]}\n--- stderr (tail)\n{done.stderr[-3000:]}"
    )
    assert done.stdout.strip(), f"{script.name} printed nothing"
