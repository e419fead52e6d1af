"""Crash safety: a writer killed with SIGKILL at a random moment loses nothing it acknowledged.

A child process writes through one public path (store puts in batches, bulk
ingest, live ``add_turn``, fact updates, ``LTMStore.put``) and appends each
acknowledged write to a file (fsynced) before the next. The parent kills it
at a random moment, reopens the store and checks: the store opens; every
acknowledged write is there exactly once; no batch is half-visible; keyword
and dense search return exactly what Chroma holds; re-ingesting adds nothing.

A few trials run in CI; ``LTM_HEAVY=1`` (or ``ltm-agent reliability --heavy``)
runs 50 per path.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import record, spawn_child, trials

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.memory_stores._keyword import tokenize

_CHILD = r"""
import json, os, sys
from datetime import UTC, datetime, timedelta
from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.memory_stores import ChromaStore
from ltm_agent.records import StoredItem

path, scenario, ack_path = sys.argv[1], sys.argv[2], sys.argv[3]
ack = open(ack_path, "a")
def acknowledge(entry):
    ack.write(json.dumps(entry) + "\n"); ack.flush(); os.fsync(ack.fileno())
from ltm_agent.app.bench.perf_worker import synthetic_conversation
from ltm_agent.facts import FactMemory
from ltm_agent.plugins.langgraph import LTMStore
from ltm_agent.timeline import EpisodicTimeline
store = ChromaStore.persistent(path, embedder=HashingEmbedder(64))
print("ready", flush=True)
base = datetime(2024, 1, 1, tzinfo=UTC)
if scenario == "put":
    for b in range(10_000):
        store.put([StoredItem(("u",), f"b{b}-{i}", f"crash note alpha {b} {i}", metadata={"batch": b}) for i in range(25)])
        acknowledge({"batch": b})
elif scenario == "ingest":
    for c in range(10_000):
        conv = synthetic_conversation(f"c{c}", 120, 7)
        EpisodicTimeline(store, ("u", f"c{c}")).ingest(conv, batch_size=64)
        acknowledge({"conversation": c})
elif scenario == "live":
    timeline = EpisodicTimeline(store, ("u",))
    for t in range(10_000):
        timeline.add_turn(f"live crash note alpha {t}", session_id=f"s{t // 15}", time=base + timedelta(minutes=t))
        acknowledge({"turn": t})
elif scenario == "facts":
    facts = FactMemory(store, ("u",))
    for k in range(10_000):
        facts.add(f"The user lives in city{k}.", "user.location", base + timedelta(days=k), [f"s{k}"])
        acknowledge({"fact": k})
elif scenario == "ltmstore":
    graph_store = LTMStore(store)
    for k in range(10_000):
        graph_store.put(("memories", "u"), f"k{k % 40}", {"text": f"crash note alpha {k}", "version": k})
        acknowledge({"key": f"k{k % 40}", "version": k})
"""

# CI runs three paths once each (time on a shared 2-core machine); the heavy variant runs all five 50 times.
SCENARIOS = [
    "put",
    "live",
    "ltmstore",
    pytest.param("ingest", marks=pytest.mark.slow),
    pytest.param("facts", marks=pytest.mark.slow),
]


def _kill_at_random(path: Path, scenario: str, ack: Path, rng: random.Random) -> None:
    child = spawn_child(_CHILD, str(path), scenario, str(ack))
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != "ready":
        child.kill()
        pytest.fail(f"child did not start: {line!r} {child.stderr.read() if child.stderr else ''}")
    deadline = time.monotonic() + 60  # kill somewhere after the first acknowledged write
    while time.monotonic() < deadline and not (ack.exists() and ack.stat().st_size):
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    if child.stderr is not None:
        child.stderr.close()
    child.stdout.close()


def _acked(ack: Path) -> list[dict[str, Any]]:
    if not ack.exists():
        return []
    return [json.loads(line) for line in ack.read_text().splitlines() if line.strip()]


def _search_agrees_with_chroma(store: ChromaStore, namespace: tuple[str, ...], word: str) -> int:
    everything = {i.id for i in store.list(namespace)}
    keyword = {h.item.id for h in store.search(namespace, word, mode="keyword", limit=len(everything) + 10)}
    dense = {h.item.id for h in store.search(namespace, word, limit=len(everything) + 10)} if everything else set()
    stem = tokenize(word)[0]
    with_word = {i.id for i in store.list(namespace) if stem in tokenize(i.index_text)}
    assert keyword == with_word, "keyword search disagrees with Chroma"
    assert dense == everything, "dense search disagrees with Chroma"
    return len(everything)


def _check(path: Path, scenario: str, acked: list[dict[str, Any]]) -> int:
    """Reopen and check the invariants; return how many acknowledged writes were checked."""
    with ChromaStore.persistent(path, embedder=HashingEmbedder(64)) as store:
        if scenario == "put":
            items = store.list(("u",))
            by_batch: dict[int, int] = {}
            for item in items:
                by_batch[int(item.metadata["batch"])] = by_batch.get(int(item.metadata["batch"]), 0) + 1
            assert all(n == 25 for n in by_batch.values()), f"half-written batch: {by_batch}"
            assert {a["batch"] for a in acked} <= set(by_batch)
            _search_agrees_with_chroma(store, ("u",), "alpha")
        elif scenario == "ingest":
            from reliability_helpers import synthetic

            from ltm_agent.timeline import EpisodicTimeline

            for entry in acked:
                ns = ("u", f"c{entry['conversation']}")
                before = store.count(ns)
                EpisodicTimeline(store, ns).ingest(synthetic(f"c{entry['conversation']}"), batch_size=64)
                assert store.count(ns) == before, "re-ingest of an acknowledged conversation added items"
            done = {entry["conversation"] for entry in acked}
            for ns in store.list_namespaces(("u",)):
                timeline = EpisodicTimeline(store, ns)
                timeline.ingest(synthetic(ns[1]), batch_size=64)  # a crashed ingest completes on re-run
                full = store.count(ns)
                timeline.ingest(synthetic(ns[1]), batch_size=64)
                assert store.count(ns) == full, "re-ingest added items"
                if int(ns[1][1:]) in done:
                    _search_agrees_with_chroma(store, ns, "kalo")
        elif scenario == "live":
            turns = [i for i in store.list(("u",), filter={"kind": "turn"})]
            texts = [t.text for t in turns]
            for entry in acked:
                text = f"live crash note alpha {entry['turn']}"
                assert sum(1 for t in texts if t.endswith(text)) == 1, f"turn {entry['turn']} not present exactly once"
            positions = [(t.metadata.get("session_id"), t.metadata.get("position")) for t in turns]
            assert len(positions) == len(set(positions)), "two turns share a position"
            _search_agrees_with_chroma(store, ("u",), "alpha")
        elif scenario == "facts":
            from ltm_agent.facts import FactMemory

            facts = FactMemory(store, ("u",))
            current = facts.current()
            assert len(current) <= 1, f"a half-applied update left {len(current)} current values"
            history = {f.text for f in facts.history("user.location")}
            for entry in acked:
                assert f"The user lives in city{entry['fact']}." in history
            if acked:
                last = acked[-1]["fact"]
                assert current and current[0].text in {f"The user lives in city{k}." for k in (last, last + 1)}
        elif scenario == "ltmstore":
            from ltm_agent.plugins.langgraph import LTMStore

            graph_store = LTMStore(store)
            latest: dict[str, int] = {}
            for entry in acked:
                latest[entry["key"]] = entry["version"]
            for key, version in latest.items():
                got = graph_store.get(("memories", "u"), key)
                assert got is not None and got.value["version"] in (version, version + 40), (key, version, got)
    return len(acked)


def _run(scenario: str, n: int, tmp_path: Path) -> None:
    rng = random.Random(f"{scenario}-{os.getpid()}-{time.time()}")
    checked = failures = 0
    try:
        for trial in range(n):
            path, ack = tmp_path / f"{scenario}-{trial}", tmp_path / f"{scenario}-{trial}.ack"
            _kill_at_random(path, scenario, ack, rng)
            try:
                checked += _check(path, scenario, _acked(ack))
            except AssertionError:
                failures += 1
                raise
    finally:
        record(f"crash: SIGKILL during {scenario}", trials=n, ops=checked, failures=failures)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sigkill_loses_no_acknowledged_write(scenario: str, tmp_path: Path) -> None:
    _run(scenario, trials(1, 50), tmp_path)
