"""Shared memory: ``MemoryStore`` add and search latency as the store grows, and the embedder.

A real embedded store on disk, with the offline MiniLM embedder. Filling 100k entries through
the embedder would take far too long, so the filler is unit vectors (random, precomputed)
inserted straight into the collections with the metadata ``add_message`` writes. Even so,
Chroma's own insert costs 1-2 ms of CPU per entry here (HNSW plus metadata), minutes at
100k: each filled store is kept in a cache folder (``$ROUNDTABLE_BENCH_CACHE``, else
``~/.cache/roundtable-bench``; about 0.3 GB in all) and reused by later runs, and what a run
adds is deleted again at its end. Delete the folder to rebuild.

The measured conversation holds 1,000 turns (a maximal debate), in its own collection and in
the archive; the other entries belong to other conversations and are in the archive only
(their own collections are never read by a scoped search; leaving them out halves the fill).

Measured at each size, interleaved: the embedder alone (a message; a recall query);
``add_message`` (embed + upserts into two collections, fsync-bound); ``aadd_message``
returning (all a turn waits for: the write runs on the store's worker thread). Searches are
timed with the query's vector computed beforehand, so that only the store is timed: scoped to
the conversation (its collection + the documents); the same excluding the ids already in the
speaker's prompt, as ``Recall.recall`` does (40, as pruning keeps a prompt; 1,000, every turn
unpruned); the whole archive (``include_past``); and the anchor the layout avoids, the
archive queried with a ``where`` filter on the conversation id.

Owns the measurement only. It reaches the store's collections through ``_collection`` to
insert the filler, run the ``where`` anchor and clean up: nothing public does these.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import chromadb
import numpy as np
import numpy.typing as npt
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, Embeddings, Metadata

from bench.figures import Row, percentile, row
from roundtable.common.owners import LOCAL_USER
from roundtable.conversations.recall import message_id
from roundtable.memory import MemoryStore, MiniLMEmbedding
from roundtable.memory.store import ARCHIVE, conversation_collection

BENCH = "memory"
SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
FILLER_VERSION = 1
"""Bump when the filler changes: cached stores of another version are not reused."""
CONVERSATION = "bench-conv-0"
CONVERSATION_TURNS = 1_000
FILL_BATCH = 5_000
DIMENSIONS = 384
K = 3
MIN_SCORE = 0.35
PRUNED_PROMPT = 40
TARGET_SCOPED_US = 20_000
ANCHOR_WHERE = "archive query with where= (issue: ~200 ms at 100k)"
QUESTION = "Should our city ban private cars downtown?"

REPEATS = {"embed": 12, "add": 8, "queue": 8, "search": 30, "exclude": 12, "where": 10}
QUICK_REPEATS = {"embed": 5, "add": 4, "queue": 4, "search": 10, "exclude": 5, "where": 4}

_VOCABULARY = (
    "traffic parking transit shops air noise delivery cyclists buses rents commuters evidence "
    "survey emissions pedestrians tram budget council retail safety congestion pricing trial "
    "results downtown weekend exemptions disabled access taxis"
)
_WORDS = _VOCABULARY.split()


def text(seed: int, words: int = 90) -> str:
    """Deterministic English-ish text of about ``words`` words, different for each seed."""
    picked = np.random.default_rng(seed).choice(len(_WORDS), size=words)
    return "The team notes that " + " ".join(_WORDS[int(i)] for i in picked) + "."


def recall_query(seed: int) -> str:
    """A query as ``compose_query`` makes one: the question and the latest two turns."""
    return "\n".join([QUESTION, text(seed), text(seed + 1)])[:1200]


def unit_vectors(rng: np.random.Generator, count: int) -> npt.NDArray[np.float32]:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


class PreparedQueries(MiniLMEmbedding):
    """The MiniLM embedder, except that queries embedded beforehand are answered from memory,
    so a timed search is the store's work only. Same name and config: the store accepts it."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: dict[str, Embeddings] = {}

    def prepare(self, query: str) -> None:
        self.prepared = {query: self([query])}

    def embed_query(self, input: Documents) -> Embeddings:
        if len(input) == 1 and input[0] in self.prepared:
            return self.prepared[input[0]]
        return super().embed_query(input)


# -- the filled stores ----------------------------------------------------------------------


def cache_root() -> Path:
    configured = os.environ.get("ROUNDTABLE_BENCH_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "roundtable-bench"


def owner(index: int) -> str:
    return f"bench-conv-{index // CONVERSATION_TURNS}"


def collection(store: MemoryStore, name: str) -> Collection:
    found = store._collection(name, create=True)  # private: see the module docstring
    if found is None:
        raise RuntimeError(f"collection {name} could not be opened")
    return found


def fill(store: MemoryStore, size: int) -> None:
    """Entries 0 .. size-1: unit vectors, short texts, the metadata of ``add_message``."""
    rng = np.random.default_rng(FILLER_VERSION)
    archive = collection(store, ARCHIVE)
    conversation = collection(store, conversation_collection(CONVERSATION))
    at = datetime(2025, 1, 1, tzinfo=UTC).isoformat()
    for first in range(0, size, FILL_BATCH):
        indices = range(first, min(first + FILL_BATCH, size))
        ids = [message_id(owner(i), i % CONVERSATION_TURNS + 1) for i in indices]
        documents = [f"turn {i}: {_WORDS[i % len(_WORDS)]} came up again" for i in indices]
        metadatas: list[Metadata] = [
            {
                "kind": "message",
                "conversation_id": owner(i),
                "speaker": "analyst",
                "turn": i % CONVERSATION_TURNS + 1,
                "at": at,
                "owner": LOCAL_USER,  # every search is scoped to its owner (memory/scope.py)
            }
            for i in indices
        ]
        vectors = unit_vectors(rng, len(indices))
        archive.add(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)
        mine = [n for n, i in enumerate(indices) if owner(i) == CONVERSATION]
        if mine:
            conversation.add(
                ids=[ids[n] for n in mine],
                embeddings=vectors[mine],
                documents=[documents[n] for n in mine],
                metadatas=[metadatas[n] for n in mine],
            )


def filled_store(size: int, embedder: MiniLMEmbedding) -> tuple[Path, float | None]:
    """The cached store of ``size`` entries, filled now if missing; and the fill's seconds."""
    folder = cache_root() / f"memory-{size}-chroma{chromadb.__version__}-v{FILLER_VERSION}"
    done = folder / "filled"
    if done.exists():
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)  # a fill that was cut short
    started = time.perf_counter()
    with MemoryStore(folder, embedding_function=embedder) as store:
        fill(store, size)
    done.touch()
    return folder, time.perf_counter() - started


# -- the measured calls, each returning microseconds ----------------------------------------


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e6


@dataclass
class Probe:
    """The measured calls against one open store; every call gets new text."""

    store: MemoryStore
    embedder: PreparedQueries
    seed: int = 0
    added: list[str] = field(default_factory=list)

    def _next(self) -> int:
        self.seed += 1
        return self.seed

    def embed_message(self) -> float:
        message = text(self._next())
        return timed(lambda: self.embedder([message]))

    def embed_query(self) -> float:
        query = recall_query(self._next())
        return timed(lambda: self.embedder([query]))

    def add(self) -> float:
        seq, words = self._new_message()
        return timed(
            lambda: self.store.add_message(
                CONVERSATION, "critic", seq, datetime.now(UTC), words, self.added[-1]
            )
        )

    def queue(self) -> float:
        """``aadd_message`` returning; the write it queued is then awaited, untimed."""
        seq, words = self._new_message()

        async def go() -> float:
            started = time.perf_counter()
            future = self.store.aadd_message(
                CONVERSATION, "critic", seq, datetime.now(UTC), words, self.added[-1]
            )
            elapsed = (time.perf_counter() - started) * 1e6
            await future
            return elapsed

        return asyncio.run(go())

    def _new_message(self) -> tuple[int, str]:
        seq = CONVERSATION_TURNS + self._next()
        self.added.append(message_id(CONVERSATION, seq))
        return seq, text(seq)

    def search(self, exclude: int = 0, past: bool = False) -> float:
        query = recall_query(self._next())
        self.embedder.prepare(query)
        excluded = [message_id(CONVERSATION, seq) for seq in range(1, exclude + 1)]
        return timed(
            lambda: self.store.search(
                query,
                conversation_id=CONVERSATION,
                include_past=past,
                exclude_ids=excluded,
                k=K,
                min_score=MIN_SCORE,
            )
        )

    def where(self) -> float:
        vector = self.embedder([recall_query(self._next())])
        archive = collection(self.store, ARCHIVE)
        return timed(
            lambda: archive.query(
                query_embeddings=vector,
                n_results=K,
                where={"conversation_id": CONVERSATION},
                include=["documents", "metadatas", "distances"],
            )
        )

    def clean_up(self) -> None:
        """Delete what this run added, so the cached store stays as it was filled."""
        if self.added:
            for name in (ARCHIVE, conversation_collection(CONVERSATION)):
                collection(self.store, name).delete(ids=self.added)
            self.added = []


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    """Which repeat count applies."""
    call: Callable[[Probe], float]
    unit: str


SEARCH = "us per search, store only (query vector ready)"
CASES = [
    Case("embed one message", "embed", Probe.embed_message, "us per message (~95 words)"),
    Case("embed one recall query", "embed", Probe.embed_query, "us per query (1,200 chars)"),
    Case("add_message (disk)", "add", Probe.add, "us per add: embed + 2 upserts"),
    Case("aadd_message returns", "queue", Probe.queue, "us a turn waits per add"),
    Case("search scoped", "search", lambda p: p.search(), SEARCH),
    Case(
        f"search scoped, {PRUNED_PROMPT} in prompt",
        "exclude",
        lambda p: p.search(exclude=PRUNED_PROMPT),
        SEARCH,
    ),
    Case(
        f"search scoped, {CONVERSATION_TURNS} in prompt",
        "exclude",
        lambda p: p.search(exclude=CONVERSATION_TURNS),
        SEARCH,
    ),
    Case("search archive (include_past)", "search", lambda p: p.search(past=True), SEARCH),
    Case("anchor: archive where=", "where", Probe.where, SEARCH),
]


def measure(probe: Probe, repeats: dict[str, int]) -> dict[str, list[float]]:
    """Each case its number of times, interleaved round by round."""
    samples: dict[str, list[float]] = {case.name: [] for case in CASES}
    for round_ in range(max(repeats.values())):
        gc.collect()
        for case in CASES:
            if round_ < repeats[case.group]:
                samples[case.name].append(case.call(probe))
    return samples


def rows_for(size: int, samples: dict[str, list[float]], fill_s: float | None) -> list[Row]:
    anchor = statistics.median(samples["anchor: archive where="])
    out: list[Row] = []
    for case in CASES:
        values = samples[case.name]
        p95 = percentile(values, 95)
        search = case.name.startswith("search")
        target = ""
        if case.name.startswith("search scoped"):
            target = f"p50 < {TARGET_SCOPED_US // 1000} ms at 100k"
        elif case.group == "queue":
            target = "off the turn's critical path"
        out.append(
            row(
                BENCH,
                case.name,
                size,
                values,
                unit=case.unit + ("; ratio vs anchor" if search else ""),
                ratio=statistics.median(values) / anchor if search else None,
                anchor=ANCHOR_WHERE if search else "",
                target=target,
                note=f"p95 {p95 / 1000:.1f} ms; runs={len(values)}",
                p95_us=round(p95, 1),
            )
        )
    fill_note = "reused from the cache" if fill_s is None else f"filled in {fill_s:.0f} s"
    out.append(
        row(
            BENCH,
            "store filler",
            size,
            [],
            unit="setup, not a figure",
            note=f"{fill_note} ({cache_root()})",
        )
    )
    return out


@contextmanager
def open_store(folder: Path, embedder: PreparedQueries) -> Iterator[Probe]:
    with MemoryStore(folder, embedding_function=embedder) as store:
        probe = Probe(store, embedder)
        try:
            yield probe
        finally:
            probe.clean_up()


def run(quick: bool) -> list[Row]:
    embedder = PreparedQueries()
    embedder.load()
    out: list[Row] = []
    for size in QUICK_SIZES if quick else SIZES:
        folder, fill_s = filled_store(size, embedder)
        with open_store(folder, embedder) as probe:
            samples = measure(probe, QUICK_REPEATS if quick else REPEATS)
        out += rows_for(size, samples, fill_s)
    return out
