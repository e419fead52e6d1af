"""The python tool: run model-written code in a child process, only when the user opts in.

What bounds the child (Linux/macOS):

* **Opt-in** - :class:`PythonSandbox` is disabled unless built with ``enabled=True`` (the CLI's
  ``--allow-python``); disabled, it answers with an error that says how to enable it.
* **Time** - a wall-clock timeout (the child is killed) and ``RLIMIT_CPU``.
* **Memory** - ``RLIMIT_AS`` (address space), so an allocation past the limit fails in the child.
* **No network, no processes** - before the code runs, an audit hook (PEP 578, which Python code
  cannot remove) refuses socket creation and connection, DNS lookups, ``subprocess``/``os.system``/
  ``exec``/``fork``/``spawn`` and ``ctypes``; the child also starts isolated (``python -I``) with an
  empty environment in a fresh temporary directory, and file sizes are capped (``RLIMIT_FSIZE``).

This keeps honest mistakes and prompt-injected code from reaching the network; it is not a
security boundary against a determined attacker (use a container for that).

Core type: :class:`PythonSandbox`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ltm_agent.errors import InvalidInputError, UnsupportedOperationError

__all__ = ["PythonResult", "PythonSandbox"]

# Runs in the child before the user's code (read from stdin), which cannot undo the hook.
_BOOT = r"""
import sys
_BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
            "os.forkpty", "ctypes.", "_posixsubprocess", "pty.")
def _guard(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"the python tool blocks {event} (no network, no child processes)")
code = sys.stdin.read()
sys.addaudithook(_guard)
namespace = {"__name__": "__main__"}
exec(compile(code, "<tool>", "exec"), namespace)
"""


@dataclass(frozen=True, slots=True)
class PythonResult:
    """What one run printed and how it ended."""

    stdout: str
    stderr: str
    returncode: int
    timed_out: bool

    def render(self, limit: int = 4000) -> str:
        """The text a model reads: stdout, or the error's last lines."""
        if self.timed_out:
            return "Error: the code ran past the time limit and was stopped; make it faster or smaller."
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-6:])
            return f"Error (exit {self.returncode}):\n{tail[-limit:]}"
        return self.stdout[-limit:] if self.stdout.strip() else "(no output; print() the result)"


def _limits(memory_bytes: int, cpu_s: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 2**20, 16 * 2**20))


class PythonSandbox:
    """Run Python code in a limited child process (see the module docstring for the limits).

    Args:
        enabled: The explicit opt-in; ``False`` refuses every run.
        time_limit_s: Wall-clock seconds per run.
        memory_mb: Address-space limit of the child, in MiB.

    Example:
        >>> PythonSandbox(enabled=True).run("print(sum(range(10)))").stdout
        '45\\n'
        >>> "opt in" in PythonSandbox().run_text("print(1)")
        True
    """

    def __init__(self, *, enabled: bool = False, time_limit_s: float = 10.0, memory_mb: int = 512) -> None:
        if time_limit_s <= 0 or memory_mb < 64:
            raise InvalidInputError(
                f"time_limit_s must be > 0 and memory_mb >= 64, got {time_limit_s!r} and {memory_mb!r}"
            )
        self.enabled = enabled
        self.time_limit_s = time_limit_s
        self.memory_mb = memory_mb

    def run(self, code: str) -> PythonResult:
        """Run ``code``; raise :class:`UnsupportedOperationError` when not enabled."""
        if not self.enabled:
            raise UnsupportedOperationError(
                "the python tool is off: opt in with PythonSandbox(enabled=True) or `ltm-agent gaia run --allow-python`"
            )
        if not isinstance(code, str) or not code.strip():
            raise InvalidInputError("code must be a non-empty str of Python")
        memory = self.memory_mb * 2**20
        cpu = max(1, int(self.time_limit_s) + 1)
        with tempfile.TemporaryDirectory(prefix="ltm-gaia-python-") as cwd:
            try:
                done = subprocess.run(
                    [sys.executable, "-I", "-c", _BOOT],
                    input=code,
                    capture_output=True,
                    text=True,
                    cwd=cwd,
                    env={"PATH": "/usr/bin:/bin", "HOME": cwd},
                    timeout=self.time_limit_s,
                    preexec_fn=lambda: _limits(memory, cpu),
                )
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
                return PythonResult(out, "", -9, True)
        return PythonResult(done.stdout, done.stderr, done.returncode, False)

    def run_text(self, code: str) -> str:
        """:meth:`run` rendered for a model (errors as text, never raised)."""
        try:
            return self.run(code).render()
        except (UnsupportedOperationError, InvalidInputError) as exc:
            return f"Error: {exc}. The user has to opt in; solve it with the calculator or other tools."
