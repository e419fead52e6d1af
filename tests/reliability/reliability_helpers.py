"""Helpers of the reliability suites: a Chroma server of the test's own, and child processes.

The session-wide server in ``tests/conftest.py`` is shared, so no test may
freeze or kill it; :class:`OwnServer` is a ``chroma run`` that one test owns
and can SIGSTOP, SIGCONT, SIGKILL and restart on the same data directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

ENV = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def trials(ci: int, heavy: int) -> int:
    """How many trials a suite runs: a few in CI, ``heavy`` with ``LTM_HEAVY=1`` or ``-m slow``."""
    return heavy if os.environ.get("LTM_HEAVY") == "1" else ci


class OwnServer:
    """A ``chroma run`` process owned by one test."""

    def __init__(self, data: Path) -> None:
        self.exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
        if self.exe is None:
            pytest.skip("the chroma executable is not installed next to this Python")
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import httpx

        log = (self.data / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.data / "db"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited with {self.proc.returncode}; see {self.data / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        pytest.fail("chroma run did not answer within 30 s")

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def run_child(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a fresh interpreter (argv[1:] = ``args``) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def spawn_child(code: str, *args: str) -> subprocess.Popen[str]:
    """Start Python ``code`` in a fresh interpreter with a line-buffered stdout pipe."""
    return subprocess.Popen(
        [sys.executable, "-u", "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def record(suite: str, *, trials: int, ops: int, failures: int) -> None:
    """Append a suite's figures to ``$LTM_RELIABILITY_OUT/figures.jsonl`` (what ``ltm-agent reliability`` reads)."""
    import json

    folder = os.environ.get("LTM_RELIABILITY_OUT")
    if not folder:
        return
    with open(Path(folder) / "figures.jsonl", "a") as handle:
        handle.write(json.dumps({"suite": suite, "trials": trials, "ops": ops, "failures": failures}) + "\n")


def synthetic(cid: str, turns: int = 120) -> object:
    """The conversation the crash suite's ingest child writes (seeded: the same every time)."""
    from ltm_agent.app.bench.perf_worker import synthetic_conversation

    return synthetic_conversation(cid, turns, 7)
