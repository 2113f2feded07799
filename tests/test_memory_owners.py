"""Memory scoped by owner, on a real embedded ChromaDB with the real offline embedder: one
user's turns and documents never answer another's search, on the dense and the BM25 side."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from roundtable.memory import MemoryStore
from roundtable.memory.scope import MARK, archive_of
from roundtable.memory.store import ARCHIVE, DOCUMENTS

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE_TURN = "The zanzibarite quarry should close because the aquifer is poisoned."
BOB_TURN = "The quillowhisp bridge toll pays for the river ferry at night."


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "memory") as memory:
        yield memory


def doc(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_past_conversation_is_recalled_only_by_its_owner(store: MemoryStore) -> None:
    store.add_message("conv-a", "analyst", 1, AT, ALICE_TURN, "conv-a:1", owner="alice")
    store.add_message("conv-b", "analyst", 1, AT, BOB_TURN, "conv-b:1", owner="bob")
    store.add_pruned("conv-a", "analyst", 1, ALICE_TURN, "conv-a:1", owner="alice")

    for owner, mine, theirs in (("alice", ALICE_TURN, BOB_TURN), ("bob", BOB_TURN, ALICE_TURN)):
        for query in (ALICE_TURN, BOB_TURN):
            hits = store.search(query, include_past=True, min_score=0.0, k=10, owner=owner)
            texts = [h.text for h in hits]
            assert theirs not in texts
            assert mine in texts
    # A conversation's own collection is filtered too (an id from another user finds nothing).
    assert store.search(ALICE_TURN, conversation_id="conv-a", min_score=0.0, owner="bob") == []
    assert store.search(ALICE_TURN, include_past=True, min_score=0.0) == []  # the local user


def test_documents_are_listed_searched_and_removed_per_owner(
    store: MemoryStore, tmp_path: Path
) -> None:
    alice = doc(tmp_path / "a", "notes.md", "# Plans\nThe canary word is zanzibarite ore.\n")
    bob = doc(tmp_path / "b", "notes.md", "# Plans\nThe canary word is quillowhisp reed.\n")
    store.add_files([alice], owner="alice")
    store.add_files([bob], owner="bob")
    shared = doc(tmp_path / "s", "same.md", "Both keep zanzibarite quillowhisp minutes here.\n")
    store.add_files([shared], owner="alice")
    store.add_files([shared], owner="bob")  # the same file for two owners: two copies

    assert [e.source for e in store.list_documents(owner="alice")] == sorted(
        [str(alice.resolve()), str(shared.resolve())]
    )
    assert str(alice.resolve()) not in {e.source for e in store.list_documents(owner="bob")}
    assert store.list_documents() == []  # the local user added nothing

    for owner, canary, other in (
        ("alice", "zanzibarite", "quillowhisp"),
        ("bob", "quillowhisp", "zanzibarite"),
    ):
        for query in ("zanzibarite", "quillowhisp", "What is the canary word?"):
            hits = store.search(query, min_score=0.0, k=10, owner=owner)
            joined = " ".join(h.text for h in hits if h.source != str(shared.resolve()))
            assert other not in joined
        assert canary in " ".join(h.text for h in store.search(canary, k=10, owner=owner))

    assert store.remove_document(str(alice.resolve()), owner="bob") == 0
    assert store.remove_document(str(shared.resolve()), owner="bob") == 1
    assert {e.source for e in store.list_documents(owner="alice")} == {
        str(alice.resolve()),
        str(shared.resolve()),
    }


def test_entries_from_before_owners_are_the_local_users(tmp_path: Path) -> None:
    folder = tmp_path / "memory"
    with MemoryStore(folder) as store:
        store.add_message("old", "analyst", 1, AT, ALICE_TURN, "old:1")
        store.add_files([doc(tmp_path, "old.md", "An old zanzibarite note.\n")])
    # Strip the owner and the upgrade mark, as a store written before owners has them.
    client = chromadb.PersistentClient(
        path=str(folder), settings=Settings(anonymized_telemetry=False)
    )
    for name in (ARCHIVE, DOCUMENTS):
        collection = client.get_collection(name, embedding_function=None)
        ids = collection.get(include=[])["ids"]
        collection.update(ids=ids, metadatas=[{"owner": None}] * len(ids))  # type: ignore[list-item]
        collection.modify(metadata={MARK: 0})
        assert all("owner" not in (m or {}) for m in collection.get()["metadatas"] or [])
    client.close()  # type: ignore[attr-defined]

    with MemoryStore(folder) as store:
        local = store.search(ALICE_TURN, include_past=True, min_score=0.0, k=5)
        assert ALICE_TURN in [h.text for h in local]
        assert store.search(ALICE_TURN, include_past=True, min_score=0.0, owner="bob") == []
        assert len(store.list_documents()) == 1
        assert store.list_documents(owner="bob") == []


def test_an_entry_of_another_owner_in_ones_collection_is_never_a_hit(store: MemoryStore) -> None:
    """The second wall: each hit's owner is checked, whatever collection it was found in."""
    store.add_message("conv-a", "analyst", 1, AT, ALICE_TURN, "conv-a:1", owner="alice")
    archive = store._collection(archive_of("alice"), create=False)
    assert archive is not None
    planted = "A planted quillowhisp note from bob."
    archive.add(
        ids=["planted"],
        embeddings=store._ef([planted]),
        documents=[planted],
        metadatas=[{"kind": "message", "owner": "bob", "conversation_id": "conv-b"}],
    )
    hits = store.search(planted, include_past=True, min_score=0.0, k=10, owner="alice")
    assert [h.text for h in hits] == [ALICE_TURN]
