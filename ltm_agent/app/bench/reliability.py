"""``ltm-agent reliability``: run the reliability suites and publish their figures.

Runs ``pytest tests/reliability`` (from a source checkout) with
``LTM_RELIABILITY_OUT`` set, so each suite appends its trials, operations and
failures to ``figures.jsonl``; reads pytest's JUnit XML for the outcome of
every test; and writes ``docs/reliability.md``: one table of figures, one of
the fault reproductions (each a test that failed before its fix), and the
exact command. ``--heavy`` runs the heavy variant (``LTM_HEAVY=1``, slow tests
included: >= 50 SIGKILL trials per write path, 500 examples per property).

The heavy variant of every suite takes longer than one sitting on a small host,
so it can run in parts: ``--select EXPR`` passes ``-k EXPR`` to pytest and
``--parts DIR`` keeps each part's figures and outcomes in ``DIR/<part>.json``;
the page is then written from every part in ``DIR`` (each part's command,
time and pytest summary listed). Parts must select disjoint tests; a test run
by two parts is listed once, from the part that ran last.

Core function: :func:`run_reliability`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ltm_agent.errors import NotFoundError

__all__ = ["run_reliability"]

SUITES = Path("tests") / "reliability"


def run_reliability(
    page: Path,
    *,
    heavy: bool = False,
    root: Path | None = None,
    select: str | None = None,
    parts: Path | None = None,
) -> Path:
    """Run the suites under ``root`` (default: the working directory) and write ``page``.

    Args:
        page: The page to write (docs/reliability.md).
        heavy: Run the heavy variant.
        root: A source checkout (holds tests/reliability).
        select: A pytest ``-k`` expression: run only these tests (one part).
        parts: Keep this run as a part in this folder and write the page from every part there.
    """
    root = (root or Path.cwd()).resolve()
    if not (root / SUITES).is_dir():
        raise NotFoundError(
            f"{root / SUITES} does not exist; run `ltm-agent reliability` from a source checkout of ltm-agent"
        )
    commit = _commit(root, page)  # before the run: the code the suites import
    with tempfile.TemporaryDirectory(prefix="ltm-reliability-") as folder:
        env = {**os.environ, "LTM_RELIABILITY_OUT": folder, "ANONYMIZED_TELEMETRY": "False"}
        command = [sys.executable, "-m", "pytest", "-q", str(SUITES), f"--junitxml={folder}/junit.xml"]
        if heavy:
            env["LTM_HEAVY"] = "1"
            command += ["-m", "slow or not slow"]
        if select:
            command += ["-k", select]
        started = time.monotonic()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        figures = _figures(Path(folder) / "figures.jsonl")
        cases = _cases(Path(folder) / "junit.xml")
    shown = "ltm-agent reliability" + (" --heavy" if heavy else "") + (f" --select {select!r}" if select else "")
    shown += (f" --parts {parts}" if parts else "") + f" --out {page}"
    run = {"command": shown, "heavy": heavy, "elapsed_s": round(elapsed, 1), "finished": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
           "commit": commit,
           "summary": (done.stdout.strip().splitlines() or ["no summary"])[-1], "figures": figures,
           "cases": [list(c) for c in cases]}
    runs = [run]
    if parts is not None:
        parts.mkdir(parents=True, exist_ok=True)
        name = ("heavy" if heavy else "ci") + ("-" + "".join(c if c.isalnum() else "_" for c in select) if select else "")
        (parts / f"{name}.json").write_text(json.dumps(run, indent=1), "utf-8")
        runs = [json.loads(p.read_text("utf-8")) for p in sorted(parts.glob("*.json"))]
        runs.sort(key=lambda r: r["finished"])
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_render(runs), "utf-8")
    return page


def _commit(root: Path, page: Path | None = None) -> str | None:
    """The checkout's commit (with ``+changes`` when tracked files other than ``page``, the page
    this command writes, differ from it), or None outside git."""
    ignore = [f":(exclude){page.resolve().relative_to(root)}"] if page is not None and page.resolve().is_relative_to(root) else []
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *ignore],
                               cwd=root, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _at(run: dict[str, Any]) -> str:
    return f"at commit {run['commit']}" if run.get("commit") else "commit not recorded"


def _figures(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    merged: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        into = merged.setdefault(row["suite"], {"suite": row["suite"], "trials": 0, "ops": 0, "failures": 0})
        for key in ("trials", "ops", "failures"):
            into[key] += int(row[key])
    return sorted(merged.values(), key=lambda r: r["suite"])


def _cases(path: Path) -> list[tuple[str, str, str]]:
    """``(file, test, outcome)`` for every test pytest ran; a failure's outcome carries its message."""
    if not path.exists():
        return []
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                message = " ".join((child.get("message") or "").split())[:300].replace("|", "/")
                outcome = f"FAILED: {message}" if message else "FAILED"
            elif child.tag == "skipped":
                outcome = "xfail (known, strict)" if "xfail" in (child.get("type") or "") + (child.get("message") or "") \
                    else "skipped"
        cases.append((case.get("classname", "").rsplit(".", 1)[-1], case.get("name", ""), outcome))
    return cases


def _render(runs: list[dict[str, Any]]) -> str:
    """The page from one run, or from the parts of one (figures summed per suite, each test listed once)."""
    merged: dict[str, dict[str, Any]] = {}
    for run in runs:
        for row in run["figures"]:
            into = merged.setdefault(row["suite"], {"suite": row["suite"], "trials": 0, "ops": 0, "failures": 0})
            for key in ("trials", "ops", "failures"):
                into[key] += int(row[key])
    figures = sorted(merged.values(), key=lambda r: r["suite"])
    outcome: dict[tuple[str, str], str] = {}
    for run in runs:  # oldest first: a test run again later shows its latest outcome
        for file, test, result in run["cases"]:
            outcome[(file, test)] = result
    cases = [(f, t, o) for (f, t), o in outcome.items()]
    if len(runs) == 1:
        run = runs[0]
        made = (f"Generated by `{run['command']}` on {run['finished']} UTC, {_at(run)} "
                f"({'heavy variant' if run['heavy'] else 'CI variant: a few trials each'}; {run['elapsed_s']:.0f} s; "
                f"pytest: {run['summary']}). Do not edit by hand.")
    else:
        made = "Generated in parts (each selects different tests; figures are summed) by:\n\n" + "\n".join(
            f"- `{r['command']}` on {r['finished']} UTC, {_at(r)} ({'heavy' if r['heavy'] else 'CI'} variant; "
            f"{r['elapsed_s']:.0f} s; pytest: {r['summary']})" for r in runs
        ) + "\n\nDo not edit by hand."
    lines = [
        "# Reliability",
        "",
        made,
        "",
        "What the suites assert: a writer killed with SIGKILL at a random moment loses no acknowledged write and "
        "leaves no half-written batch, and keyword and dense search return exactly what Chroma holds after reopening; "
        "concurrent writers (threads, and processes through a server) lose no turn and never share a position; "
        "hostile input round-trips exactly or raises an `LTMError` and leaves the store unchanged; no tenant "
        "reads another's memory through any API; a forgotten namespace leaves its text in no file of the store "
        "directory, even beside concurrent writers; restarts of the embedded Chroma system (the memory bound) "
        "lose no write.",
        "",
        "| suite | trials | operations checked | failures |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['suite']} | {r['trials']:,} | {r['ops']:,} | {r['failures']:,} |" for r in figures]
    total_failures = sum(r["failures"] for r in figures) + sum(1 for c in cases if c[2].startswith("FAILED"))
    lines += ["", f"Failures in all: {total_failures}.", "", "## Every test", "", "| file | test | outcome |",
              "|---|---|---|"]
    lines += [f"| {f} | `{t}` | {o} |" for f, t, o in cases]
    lines += ["", "The fault tests (`test_store_faults.py`, `test_hostile_input.py`) each reproduce one failure of "
              "issue 15 and failed before its fix. Strict xfails name bugs outside the store layer that are still "
              "open; a fix turns them into failures, so the marker gets removed."]
    return "\n".join(lines) + "\n"
