"""The systems a retrieval benchmark compares, behind one small interface.

* ``dense-turn`` - raw Chroma, one document per turn, top-k cosine (baseline).
* ``bm25-turn`` - raw ``bm25s`` over turns (baseline).
* ``ltm`` and its ablations - ltm-agent's own memory through the public API
  (:class:`~ltm_agent.timeline.EpisodicTimeline` +
  :class:`~ltm_agent.retrieval.HybridRetriever` on a :class:`ChromaStore`).
* ``ltm-no-long-turns`` - ``ltm`` without long turns standing for themselves in the context
  rankings; ``ltm-recall-long-turns`` - only on questions about what the assistant said (not the
  user's long turns on every question); ``ltm-no-session-rank`` - without the
  fused session ranking; ``ltm-no-session-bm25`` - the session ranking from the memories' scores
  alone, without BM25 over whole sessions; ``ltm-no-excerpts`` - whole memories instead of 96-token query-focused
  excerpts of longer ones; ``ltm-excerpts-recall`` - excerpts also on questions about what the
  assistant said; ``ltm-diverse`` - opt-in diversification over sessions, measured against ``ltm``;
  ``ltm-excerpts-64`` (not in the default runs) - 64-token excerpts.
* ``ltm-sets``, ``ltm-sets-0.2``, ``ltm-sets-0.1``, ``ltm-sets-speaker``, ``ltm-sets-speaker-only``,
  ``ltm-sets-flat`` (not in the default runs) - ``ltm`` with other settings (``RetrievalConfig.for_sets``:
  session diversity 0.3 / 0.2 / 0.1, speaker boost 2 / 100, no session ranking with diversity 0.1)
  only for questions that ask for a set (:func:`~ltm_agent.retrieval.query_types.asks_for_a_set`);
  ``ltm-sets-speaker-1.2``, ``ltm-sets-feedback`` (feedback on 6 memories), ``ltm-sets-feedback-speaker``,
  ``ltm-sets-speaker-ex48`` / ``-ex64`` (speaker boost 2 and 48- / 64-token excerpts) likewise; ``ltm-speaker-2`` - the speaker boost 2 on every question (the rule's control).
* ``ltm-learned`` - ``ltm`` with ``fusion="learned"``: the shipped logistic model over every ranking's
  rank and score (:mod:`ltm_agent.retrieval.learned`); not in the default runs. Its weights were fitted
  on the dev files, so on them it is in-sample: ``bench train-fusion``'s cross-validation is its honest number.
* ``ltm-facts`` - ``ltm`` with fact-augmented keys from the deterministic pattern
  extractor (:class:`LTMFacts`).
* ``langgraph-inmemory`` - LangGraph's ``InMemoryStore`` with the same embedder (peer).
* ``llamaindex-vectorblock``, ``mem0-raw`` - LlamaIndex's ``VectorMemoryBlock`` over
  Chroma and mem0 with ``infer=False`` (peers, :mod:`ltm_agent.app.bench.peers`).

Every system returns ranked :class:`~ltm_agent.records.MemoryItem` s whose
``sources`` are the data set's turn ids, so one metric module scores them all.
A system whose optional package is missing raises
:class:`~ltm_agent.errors.MissingExtraError` from :func:`make_system`; the
benchmark loop records its reason as "unavailable" and runs the others.

Core types: :class:`BenchSystem`, :func:`make_system`, :data:`SYSTEMS`.
"""

from __future__ import annotations

import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ltm_agent.app.bench.datasets import Question
from ltm_agent.app.bench.metrics import TOKEN_BUDGETS
from ltm_agent.conversations import Conversation
from ltm_agent.embeddings import Embedder
from ltm_agent.errors import InvalidInputError
from ltm_agent.namespaces import Namespace
from ltm_agent.records import MemoryItem
from ltm_agent.retrieval import HybridRetriever, RetrievalConfig
from ltm_agent.tokens import count_tokens

__all__ = [
    "DEFAULT_SYSTEMS",
    "SYSTEMS",
    "BenchSystem",
    "LTMFacts",
    "make_system",
    "rendered_turns",
    "system_name",
    "turn_text",
]

DEPTH = 200
"""Results each system returns per question (enough to fill 4,096 tokens on both data sets)."""


def turn_text(speaker: str, role: str, text: str) -> str:
    """How every system renders one turn (identical, so token costs compare)."""
    return f"{speaker or role}: {text}"


def rendered_turns(conversation: Conversation) -> list[tuple[str, str, str]]:
    """(turn id, role, rendered text) for every non-empty turn, in conversation order."""
    return [
        (t.id, t.role, turn_text(t.speaker, t.role, t.text))
        for s in conversation.ordered_sessions()
        for t in s.turns
        if t.text.strip()
    ]


def _turns(conversation: Conversation) -> list[tuple[str, str]]:
    """(turn id, rendered text) for every non-empty turn."""
    return [(tid, text) for tid, _, text in rendered_turns(conversation)]


class BenchSystem(ABC):
    """One system under test: ingest a conversation, answer retrieval questions."""

    name: str

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @abstractmethod
    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        """Store the conversation; return the number of turns ingested."""

    @abstractmethod
    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        """Ranked items for the question, at least enough to fill 4,096 tokens."""

    def forget(self, namespace: Namespace) -> None:
        """Drop what was ingested for ``namespace`` (keeps memory bounded)."""

    def close(self) -> None:
        """Release resources."""


class DenseTurn(BenchSystem):
    """Baseline: one raw Chroma document per turn, cosine top-k."""

    name = "dense-turn"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        import chromadb

        self.client = chromadb.EphemeralClient()
        self.collections: dict[Namespace, Any] = {}

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        turns = _turns(conversation)
        name = f"dense-{uuid.uuid4().hex[:16]}"
        collection = self.client.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        vectors = self.embedder.embed([text for _, text in turns])
        for start in range(0, len(turns), 1000):
            chunk = turns[start : start + 1000]
            collection.add(
                ids=[tid for tid, _ in chunk],
                documents=[text for _, text in chunk],
                embeddings=vectors[start : start + len(chunk)],
            )
        self.collections[namespace] = collection
        return len(turns)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        collection = self.collections[namespace]
        result = collection.query(
            query_embeddings=[self.embedder.embed_query(question.text)],
            n_results=min(DEPTH, collection.count()),
            include=["documents", "distances"],
        )
        return [
            MemoryItem(tid, "turn", doc, 1.0 - dist, None, count_tokens(doc), (tid,), namespace)
            for tid, doc, dist in zip(result["ids"][0], result["documents"][0], result["distances"][0], strict=True)
        ]

    def forget(self, namespace: Namespace) -> None:
        collection = self.collections.pop(namespace, None)
        if collection is not None:
            self.client.delete_collection(collection.name)


class BM25Turn(BenchSystem):
    """Baseline: BM25 (``bm25s``, English stop words, Snowball stemmer) over turns."""

    name = "bm25-turn"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        self.indexes: dict[Namespace, tuple[Any, list[tuple[str, str]], Any]] = {}

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        import bm25s
        import Stemmer

        turns = _turns(conversation)
        stemmer = Stemmer.Stemmer("english")
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize([t for _, t in turns], stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
        self.indexes[namespace] = (retriever, turns, stemmer)
        return len(turns)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        import bm25s

        retriever, turns, stemmer = self.indexes[namespace]
        query = bm25s.tokenize([question.text], stopwords="en", stemmer=stemmer, show_progress=False)
        if not query.vocab:
            return []
        docs, scores = retriever.retrieve(query, k=min(DEPTH, len(turns)), show_progress=False)
        items = []
        for doc, score in zip(docs[0], scores[0], strict=True):
            if score <= 0:
                break
            tid, text = turns[int(doc)]
            items.append(MemoryItem(tid, "turn", text, float(score), None, count_tokens(text), (tid,), namespace))
        return items

    def forget(self, namespace: Namespace) -> None:
        self.indexes.pop(namespace, None)


class LTM(BenchSystem):
    """ltm-agent through its public API, with a given retrieval configuration and units.

    Systems that write the same items (same class and units) share one store and
    one ingest per conversation (see :class:`_SharedIngest`); ``ingest.json``
    then times the ingest under the first of them, and the others report none.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        name: str,
        config: RetrievalConfig,
        units: tuple[str, ...] = ("turn", "context"),
    ) -> None:
        super().__init__(embedder)
        self.name = name
        self.units = units
        self.shared = _SharedIngest.join(self, embedder)
        self.store = self.shared.store
        self.retriever = HybridRetriever(self.store, config)

    def _ns(self, namespace: Namespace) -> Namespace:
        return (self.shared.prefix, *namespace)

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        """Store the conversation, unless a sibling that stores the same already did (then 0 turns)."""
        ns = self._ns(namespace)
        if ns in self.shared.pending:
            return 0  # counted once, under the sibling that ingested it
        turns = self._ingest(ns, conversation)
        self.shared.pending[ns] = set(self.shared.members)
        return turns

    def _ingest(self, ns: Namespace, conversation: Conversation) -> int:
        from ltm_agent.timeline import EpisodicTimeline

        return EpisodicTimeline(self.store, ns, units=self.units).ingest(conversation).turns

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        # Rendered until the contract's largest budget is full: nothing after it is scored.
        return self.retriever.rank(
            self._ns(namespace), question.text, reference_time=question.question_time, depth=DEPTH,
            max_tokens=max(TOKEN_BUDGETS),
        )

    def forget(self, namespace: Namespace) -> None:
        """Drop the namespace once every sibling sharing it is done with it."""
        ns = self._ns(namespace)
        waiting = self.shared.pending.get(ns)
        if waiting is None:
            return
        waiting.discard(self.name)
        if not waiting:
            del self.shared.pending[ns]
            self.store.delete(ns)

    def close(self) -> None:
        self.shared.leave(self)


class _SharedIngest:
    """One store, and one ingest per conversation, for the ``ltm`` systems that store the same thing.

    Ablations that differ only in how they read (``ltm``, ``ltm-no-hybrid``,
    ``ltm-no-time``, ...) write identical items, so they share a store and the
    first of them to see a conversation ingests it for all: a run costs one
    ingest per distinct way of writing, not one per ablation. Groups are per
    embedder object (one run, one embedder), keyed by system class and units.
    """

    _pools: weakref.WeakKeyDictionary[Embedder, dict[tuple[str, tuple[str, ...]], _SharedIngest]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, embedder: Embedder, prefix: str) -> None:
        from ltm_agent.memory_stores.chroma import ChromaStore

        self.store = ChromaStore.ephemeral(embedder=embedder)
        self.prefix = prefix
        self.members: set[str] = set()
        self.pending: dict[Namespace, set[str]] = {}

    @classmethod
    def join(cls, system: LTM, embedder: Embedder) -> _SharedIngest:
        key = (type(system).__name__, system.units)
        pool = cls._pools.setdefault(embedder, {})
        group = pool.get(key)
        if group is None:
            group = pool[key] = cls(embedder, f"{type(system).__name__.lower()}-{'-'.join(system.units)}")
        group.members.add(system.name)
        return group

    def leave(self, system: LTM) -> None:
        self.members.discard(system.name)
        if not self.members:
            pool = self._pools.get(system.embedder, {})
            if pool.get((type(system).__name__, system.units)) is self:
                del pool[(type(system).__name__, system.units)]
            self.store.close()


class LTMFacts(LTM):
    """``ltm`` plus fact-augmented keys: facts extracted at ingest are appended to their turns' keys.

    After the timeline ingest, a :class:`~ltm_agent.facts.FactMemory` with the
    deterministic :class:`~ltm_agent.facts.patterns.PatternFactExtractor` reads each
    session (``FactMemory.ingest_session``) and, in the same store batch as the
    facts, re-puts the episodes the facts came from with ``key = text + "\\n" +
    facts`` (its default ``augment_units``: rounds and turns; ``ltm`` stores no
    rounds, so the source turns). Text, id and sources of each turn stay, so the
    rendered item and its ``sources`` are the same as in ``ltm``; only what is
    embedded and BM25-indexed changes. Retrieval is ``ltm``'s: its units are turns
    and context keys, so the fact records themselves (kind ``fact``, each with
    ``sources`` = the turns it was derived from) are stored but never returned.
    The pattern extractor only knows a fixed set of first-person statements
    (see :mod:`ltm_agent.facts.patterns`); on most turns it finds nothing, and then
    this system equals ``ltm``.
    """

    def _ingest(self, ns: Namespace, conversation: Conversation) -> int:
        from ltm_agent.facts import FactMemory
        from ltm_agent.facts.patterns import PatternFactExtractor

        turns = super()._ingest(ns, conversation)
        facts = FactMemory(self.store, ns, extractor=PatternFactExtractor())
        for session in conversation.ordered_sessions():
            facts.ingest_session(session)
        self.store.warm(ns)  # the key updates changed the namespace after ingest's warm
        return turns


class LangGraphInMemory(BenchSystem):
    """Peer: LangGraph's own ``InMemoryStore`` with the same embedder, one item per turn."""

    name = "langgraph-inmemory"

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(embedder)
        from langgraph.store.memory import InMemoryStore

        def embed(texts: list[str]) -> list[list[float]]:
            return self.embedder.embed(texts).tolist()

        self.store = InMemoryStore(index={"dims": embedder.dimension, "embed": embed, "fields": ["text"]})

    def ingest(self, namespace: Namespace, conversation: Conversation) -> int:
        from langgraph.store.base import PutOp

        turns = _turns(conversation)
        # LangGraph's InMemoryStore embeds each distinct text once per batch but expects one
        # vector per item ("Number of embeddings does not match number of indices" when two
        # turns say the same thing), so a repeated text goes into a later batch.
        pending = list(turns)
        while pending:
            seen: set[str] = set()
            now, later = [], []
            for tid, text in pending:
                (later if text in seen else now).append((tid, text))
                seen.add(text)
            self.store.batch([PutOp(("bench", *namespace), tid, {"text": text}) for tid, text in now])
            pending = later
        return len(turns)

    def retrieve(self, namespace: Namespace, question: Question) -> list[MemoryItem]:
        hits = self.store.search(("bench", *namespace), query=question.text, limit=DEPTH)
        return [
            MemoryItem(h.key, "turn", h.value["text"], float(h.score or 0.0), None, count_tokens(h.value["text"]), (h.key,), namespace)
            for h in hits
        ]

    def forget(self, namespace: Namespace) -> None:
        from langgraph.store.base import PutOp

        keys = [item.key for item in self.store.search(("bench", *namespace), limit=100_000)]
        self.store.batch([PutOp(("bench", *namespace), key, None) for key in keys])


class _LTMSpec:
    """How to build one ``ltm`` configuration, through any write path (see :mod:`ltm_agent.app.bench.paths`)."""

    def __init__(self, name: str, kind: type[LTM], changes: dict[str, Any]) -> None:
        self.name, self.kind, self.changes = name, kind, changes

    def __call__(self, embedder: Embedder, path: str = "bulk") -> BenchSystem:
        units = tuple(self.changes.get("units", RetrievalConfig().units))
        config = RetrievalConfig().but(**self.changes)
        if path == "bulk":
            return self.kind(embedder, name=self.name, config=config, units=units)
        from ltm_agent.app.bench.paths import PATH_CLASSES

        name = f"{self.name}@{path}"
        if self.kind is LTMFacts and path == "langgraph":
            # Facts on the live path: the write node extracts them in the background (off the hot path).
            return PATH_CLASSES[path](embedder, name=name, config=config, units=units, facts=True)
        if self.kind is not LTM:
            raise InvalidInputError(
                f"{self.name!r} runs on --path bulk, and on langgraph for ltm-facts (its write node's "
                f"background facts); not on {path!r}"
            )
        return PATH_CLASSES[path](embedder, name=name, config=config, units=units)


def _ltm(name: str, kind: type[LTM] = LTM, **changes: Any) -> Callable[[Embedder], BenchSystem]:
    return _LTMSpec(name, kind, changes)


def _peer(class_name: str) -> Callable[[Embedder], BenchSystem]:
    """A peer from :mod:`ltm_agent.app.bench.peers`, imported only when it is built."""

    def build(embedder: Embedder) -> BenchSystem:
        from ltm_agent.app.bench import peers

        return getattr(peers, class_name)(embedder)

    return build


SYSTEMS: dict[str, Callable[[Embedder], BenchSystem]] = {
    "dense-turn": DenseTurn,
    "bm25-turn": BM25Turn,
    "ltm": _ltm("ltm"),
    "ltm-no-hybrid": _ltm("ltm-no-hybrid", hybrid=False),
    "ltm-no-time": _ltm("ltm-no-time", time_expansion=False),
    "ltm-no-context": _ltm("ltm-no-context", units=("turn",)),
    "ltm-no-speaker": _ltm("ltm-no-speaker", speaker_boost=0.0),
    "ltm-no-feedback": _ltm("ltm-no-feedback", feedback_docs=0),
    "ltm-rounds": _ltm("ltm-rounds", units=("turn", "context", "round")),
    "ltm-no-long-turns": _ltm("ltm-no-long-turns", long_turns_as_context="never"),
    "ltm-recall-long-turns": _ltm("ltm-recall-long-turns", long_turns_as_context="recall"),
    "ltm-no-session-rank": _ltm("ltm-no-session-rank", session_weight=0.0),
    "ltm-no-session-bm25": _ltm("ltm-no-session-bm25", session_keyword_weight=0.0),
    "ltm-diverse": _ltm("ltm-diverse", session_diversity=0.3),
    "ltm-no-excerpts": _ltm("ltm-no-excerpts", excerpt_tokens=0),
    "ltm-excerpts-recall": _ltm("ltm-excerpts-recall", excerpt_when_recalling=True),
    "ltm-excerpts-64": _ltm("ltm-excerpts-64", excerpt_tokens=64),
    "ltm-own-dates": _ltm("ltm-own-dates", share_dates=False),
    "ltm-learned": _ltm("ltm-learned", fusion="learned"),
    # Query-type settings (opt-in, not in the default runs): other settings only for questions that
    # ask for a set (ltm_agent.retrieval.query_types.asks_for_a_set); docs/retrieval.md has the numbers.
    "ltm-sets": _ltm("ltm-sets", for_sets=(("session_diversity", 0.3),)),
    "ltm-sets-0.2": _ltm("ltm-sets-0.2", for_sets=(("session_diversity", 0.2),)),
    "ltm-sets-0.1": _ltm("ltm-sets-0.1", for_sets=(("session_diversity", 0.1),)),
    "ltm-sets-speaker": _ltm("ltm-sets-speaker", for_sets=(("speaker_boost", 2.0),)),
    "ltm-sets-speaker-only": _ltm("ltm-sets-speaker-only", for_sets=(("speaker_boost", 100.0),)),
    "ltm-sets-flat": _ltm("ltm-sets-flat", for_sets=(("session_weight", 0.0), ("session_diversity", 0.1))),
    "ltm-sets-speaker-1.2": _ltm("ltm-sets-speaker-1.2", for_sets=(("speaker_boost", 1.2),)),
    "ltm-sets-feedback": _ltm("ltm-sets-feedback", for_sets=(("feedback_docs", 6),)),
    "ltm-sets-feedback-speaker": _ltm("ltm-sets-feedback-speaker", for_sets=(("feedback_docs", 6), ("speaker_boost", 2.0))),
    "ltm-sets-speaker-ex48": _ltm("ltm-sets-speaker-ex48", for_sets=(("speaker_boost", 2.0), ("excerpt_tokens", 48))),
    "ltm-sets-speaker-ex64": _ltm("ltm-sets-speaker-ex64", for_sets=(("speaker_boost", 2.0), ("excerpt_tokens", 64))),
    "ltm-speaker-2": _ltm("ltm-speaker-2", speaker_boost=2.0),  # the control: the larger boost on every question
    "ltm-facts": _ltm("ltm-facts", LTMFacts),
    "langgraph-inmemory": LangGraphInMemory,
    "llamaindex-vectorblock": _peer("LlamaIndexVectorBlock"),
    "mem0-raw": _peer("Mem0Raw"),
}
"""Every system by name."""

DEFAULT_SYSTEMS = (
    "dense-turn",
    "bm25-turn",
    "ltm",
    "ltm-no-hybrid",
    "ltm-no-time",
    "ltm-no-context",
    "ltm-no-speaker",
    "ltm-no-feedback",
    "ltm-rounds",
    "ltm-no-long-turns",
    "ltm-recall-long-turns",
    "ltm-no-session-rank",
    "ltm-no-session-bm25",
    "ltm-diverse",
    "ltm-no-excerpts",
    "ltm-own-dates",
    "ltm-excerpts-recall",
    "ltm-facts",
    "langgraph-inmemory",
    "llamaindex-vectorblock",
    "mem0-raw",
)
"""The systems a run includes unless ``--systems`` names others (peers whose package is
missing are reported as not run)."""


def system_name(name: str, path: str = "bulk") -> str:
    """The name a system runs under on ``path`` (``ltm`` on ``live`` is ``ltm@live``)."""
    factory = SYSTEMS.get(name)
    return f"{name}@{path}" if path != "bulk" and isinstance(factory, _LTMSpec) else name


def make_system(name: str, embedder: Embedder, path: str = "bulk") -> BenchSystem:
    """Build a system by name; ``ltm`` configurations are fed through ``path``.

    With a ``path`` other than ``"bulk"`` an ``ltm`` configuration is named
    ``"<name>@<path>"`` (e.g. ``ltm@langgraph``); baselines and peers have one
    way in and keep their names.

    Raises:
        InvalidInputError: ``name`` is not in :data:`SYSTEMS` (the message lists
            them), or ``path`` is not one of ``bulk``, ``live``, ``langgraph``, ``llamaindex``.
        MissingExtraError: The system needs a package that is not installed (the
            message says which and why).
    """
    from ltm_agent.app.bench.paths import PATHS

    if name not in SYSTEMS:
        raise InvalidInputError(f"unknown benchmark system {name!r}; choose from {sorted(SYSTEMS)}")
    if path not in PATHS:
        raise InvalidInputError(f"unknown write path {path!r}; choose from {list(PATHS)}")
    factory = SYSTEMS[name]
    return factory(embedder, path) if isinstance(factory, _LTMSpec) else factory(embedder)
