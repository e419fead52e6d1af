"""Two agents in two processes sharing one memory through a Chroma server, offline.

An embedded Chroma directory (``ChromaStore.persistent``) belongs to one
process. Agents in several processes share memory through a Chroma server
instead. This script:

1. starts ``chroma run --path <tmp> --host 127.0.0.1 --port <free port>`` (the
   ``chroma`` executable next to this Python) and waits for its heartbeat;
2. runs **agent A** in its own process: it records Ana's first session as
   turns on her timeline and extracts facts (pattern fallback), all for tenant
   ``("user-42",)``, through ``ChromaStore.server(url)``;
3. runs **agent B** in another process: it reads what A wrote with
   ``HybridRetriever`` (dense + BM25). A then writes a second session; B's
   BM25 index, built before that write, picks it up on its next search,
   because B's side index notices, from Chroma alone, that the namespace changed;
4. runs a **third tenant** (``("user-7",)``) in a third process: it sees none
   of Ana's memories;
5. stops the server and removes its data.

Every process embeds with the offline MiniLM model. Each agent checks what it
saw; the script exits 1 if a check fails.

Run:
    python examples/shared_memory_server.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

TENANT = ("user-42",)
OTHER_TENANT = ("user-7",)
STEP_TIMEOUT_S = 60.0  # an agent waiting for the other gives up after this

SESSION_1 = (
    ("s1:1", "user", "I'm Ana. I live in Lisbon and I'm vegetarian."),
    ("s1:2", "assistant", "Nice to meet you, Ana! I'll keep meals vegetarian."),
    ("s1:3", "user", "My sister Rosa's birthday is on 2 June."),
)
SESSION_2 = (
    ("s2:1", "user", "Big news: I moved from Lisbon to Berlin last weekend."),
    ("s2:2", "assistant", "Congratulations! How is Berlin so far?"),
    ("s2:3", "user", "Cold, but I found a great bakery in Kreuzberg."),
)


def say(who: str, text: str) -> None:
    print(f"[{who} pid {os.getpid()}] {text}", flush=True)


# ---------------------------------------------------------------------------
# The agents (each runs in its own process)


def write_session(store: Any, session_id: str, when: datetime, turns: tuple[tuple[str, str, str], ...]) -> Any:
    from ltm_agent.facts import FactMemory
    from ltm_agent.facts.patterns import PatternFactExtractor
    from ltm_agent.timeline import EpisodicTimeline

    timeline = EpisodicTimeline(store, TENANT)
    episodes = [
        timeline.add_turn(
            text, role=role, speaker="Ana" if role == "user" else "", session_id=session_id, time=when, turn_id=tid
        )
        for tid, role, text in turns
    ]
    return FactMemory(store, TENANT, extractor=PatternFactExtractor()).ingest_session(episodes)


def agent_a(url: str, first_written: Event, b_indexed: Event, second_written: Event) -> None:
    from ltm_agent.memory_stores import ChromaStore

    with ChromaStore.server(url) as store:
        update = write_session(store, "s1", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), SESSION_1)
        added = " ".join(f.text for f in update.added)
        say("agent A", f"wrote session s1 ({len(SESSION_1)} turns) for tenant {TENANT}; facts added: {added}")
        first_written.set()
        if not b_indexed.wait(STEP_TIMEOUT_S):
            raise SystemExit("agent A: agent B never built its index")
        update = write_session(store, "s2", datetime(2024, 5, 15, 18, 0, tzinfo=UTC), SESSION_2)
        added = " ".join(f.text for f in update.added)
        invalidated = " ".join(f"{f.text} (invalid from {f.invalid_at:%Y-%m-%d})" for f in update.invalidated)
        say("agent A", f"wrote session s2 ({len(SESSION_2)} turns); facts added: {added} invalidated: {invalidated}")
        second_written.set()


def agent_b(url: str, first_written: Event, b_indexed: Event, second_written: Event, results: Any) -> None:
    from ltm_agent.facts import FactMemory
    from ltm_agent.memory_stores import ChromaStore
    from ltm_agent.retrieval import HybridRetriever

    asked = datetime(2024, 5, 20, 9, 0, tzinfo=UTC)
    with ChromaStore.server(url) as store:
        retriever = HybridRetriever(store)
        if not first_written.wait(STEP_TIMEOUT_S):
            raise SystemExit("agent B: agent A never wrote session s1")
        first = retriever.retrieve(TENANT, "Where does Ana live?", reference_time=asked, k=2)
        say("agent B", "read A's writes: " + " | ".join(f"{i.text} ({','.join(i.sources)})" for i in first))
        before = store.search(TENANT, "Kreuzberg bakery", mode="keyword", limit=3)
        say("agent B", f"BM25 index built; keyword search 'Kreuzberg bakery' -> {len(before)} hits (not written yet)")
        b_indexed.set()
        if not second_written.wait(STEP_TIMEOUT_S):
            raise SystemExit("agent B: agent A never wrote session s2")
        after = store.search(TENANT, "Kreuzberg bakery", mode="keyword", limit=3)
        found = "; ".join(repr(hit.item.text) for hit in after) or "nothing"
        say("agent B", f"same search after A's second write -> {len(after)} hit(s): {found}")
        say("agent B", "(B's side index saw from Chroma that the namespace changed and brought BM25 up to date)")
        now = retriever.retrieve(TENANT, "Where did Ana move to?", reference_time=asked, k=2)
        say("agent B", "hybrid retrieval now: " + " | ".join(f"{i.text} ({','.join(i.sources)})" for i in now))
        facts = FactMemory(store, TENANT)
        current = [f.text for f in facts.current()]
        history = [
            (f.text, f"{f.invalid_at:%Y-%m-%d}" if f.invalid_at else "current") for f in facts.history("user.location")
        ]
        say("agent B", f"current facts: {current}")
        say("agent B", f"location history (invalidated, not deleted): {history}")
        outcome = {"first": [i.text for i in first], "before": len(before), "after": [h.item.text for h in after]}
        results.put(("B", {**outcome, "current": current, "history": history}))


def third_tenant(url: str, results: Any) -> None:
    from ltm_agent.memory_stores import ChromaStore
    from ltm_agent.retrieval import HybridRetriever

    with ChromaStore.server(url) as store:
        items = HybridRetriever(store).retrieve(OTHER_TENANT, "Where does Ana live? Lisbon Berlin Kreuzberg", k=5)
        keyword = store.search(OTHER_TENANT, "Lisbon Berlin Kreuzberg", mode="keyword", limit=5)
        seen = f"{len(items)} memories, {len(keyword)} keyword hits"
        say("tenant user-7", f"same server, its own namespace {OTHER_TENANT}: {seen}")
        results.put(("C", {"items": len(items), "keyword": len(keyword), "count": store.count(OTHER_TENANT)}))


# ---------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data: Path, timeout_s: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        found = shutil.which("chroma")
        if found is None:
            raise SystemExit(f"no chroma executable next to {sys.executable}; pip install chromadb")
        exe = Path(found)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "server.log").open("wb")
    server = subprocess.Popen(
        [str(exe), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            log_tail = (data / "server.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"chroma run exited with {server.returncode}:\n{log_tail}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as reply:
                if reply.status == 200:
                    return server, url
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise SystemExit(f"chroma run did not answer its heartbeat within {timeout_s:.0f} s")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def main() -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # inherited by the server and the agents
    started = time.perf_counter()
    data = Path(tempfile.mkdtemp(prefix="ltm-shared-"))
    try:
        server, url = start_server(data)
        up = time.perf_counter() - started
        print(f"chroma server at {url}, data in {data / 'db'} (heartbeat after {up:.1f} s)", flush=True)
        try:
            ctx = mp.get_context("spawn")  # fresh interpreters: nothing shared but the server
            first_written, b_indexed, second_written = ctx.Event(), ctx.Event(), ctx.Event()
            results = ctx.Queue()
            a = ctx.Process(target=agent_a, args=(url, first_written, b_indexed, second_written), name="agent-A")
            b = ctx.Process(
                target=agent_b, args=(url, first_written, b_indexed, second_written, results), name="agent-B"
            )
            a.start()
            b.start()
            outcome = dict([results.get(timeout=3 * STEP_TIMEOUT_S)])
            for proc in (a, b):
                proc.join(STEP_TIMEOUT_S)
            c = ctx.Process(target=third_tenant, args=(url, results), name="tenant-user-7")
            c.start()
            outcome.update([results.get(timeout=STEP_TIMEOUT_S)])
            c.join(STEP_TIMEOUT_S)
            codes = {p.name: p.exitcode for p in (a, b, c)}
        finally:
            stop_server(server)
            print("chroma server stopped", flush=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    checks = {
        "every process exited cleanly": all(code == 0 for code in codes.values()),
        "B read A's first session": any("Lisbon" in text for text in outcome["B"]["first"]),
        "B's BM25 index picked up A's later write": outcome["B"]["before"] == 0
        and any("Kreuzberg" in text for text in outcome["B"]["after"]),
        "B sees Berlin as current, Lisbon invalidated": "Ana lives in Berlin." in outcome["B"]["current"]
        and ("Ana lives in Lisbon.", "2024-05-11") in outcome["B"]["history"],
        "the third tenant sees nothing": outcome["C"] == {"items": 0, "keyword": 0, "count": 0},
    }
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
