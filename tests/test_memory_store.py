"""The memory store on a real embedded ChromaDB with the real offline embedder."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import chromadb
import numpy as np
import pytest
from chromadb.api.types import Documents, Embeddable, EmbeddingFunction, Embeddings
from chromadb.config import Settings

from roundtable.common.errors import ConfigError, InfraError
from roundtable.memory import Hit, MemoryStats, MemoryStore, MiniLMEmbedding
from roundtable.memory.store import ARCHIVE, DOCUMENTS

REPO = Path(__file__).resolve().parent.parent
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(tmp_path / "memory") as memory:
        yield memory


def add(
    store: MemoryStore, conversation: str, turn: int, text: str, speaker: str = "analyst"
) -> str:
    message_id = f"{conversation}-{turn}"
    store.add_message(conversation, speaker, turn, AT, text, message_id)
    return message_id


# -- retrieval quality -------------------------------------------------------------------

# (title, passage, a paraphrased question that avoids the passage's key words)
LABELLED = [
    (
        "photosynthesis",
        "Green plants capture energy from sunlight in their leaves and use it to turn carbon "
        "dioxide and water into sugar, releasing oxygen as a by-product.",
        "How does vegetation produce its own nourishment from the sun's rays?",
    ),
    (
        "volcanoes",
        "Molten rock rising from deep underground can burst through the crust, throwing ash into "
        "the sky and sending lava down the mountain's slopes.",
        "Why do some peaks explode and spew burning material?",
    ),
    (
        "sourdough",
        "A sourdough starter is a mixture of flour and water colonised by wild yeast and lactic "
        "bacteria; it leavens bread without commercial yeast.",
        "How do I get a loaf to rise with a home-grown fermented culture rather than a packet?",
    ),
    (
        "marathon",
        "Runners preparing for a marathon gradually lengthen their weekly long run and taper "
        "their mileage in the final weeks before the race.",
        "How should I build up my fitness for a 42 km road event?",
    ),
    (
        "compound interest",
        "Compound interest means earnings are added to the principal, so each period's interest "
        "is calculated on a growing balance.",
        "Why do savings grow faster when the returns are reinvested?",
    ),
    (
        "honeybees",
        "Honeybees communicate the location of flowers to their hive mates through a waggle dance "
        "whose angle and duration encode direction and distance.",
        "How do pollinating insects tell each other where the nectar is?",
    ),
    (
        "git rebase",
        "Rebasing a branch rewrites its commits on top of another branch, producing a linear "
        "history instead of a merge commit.",
        "How can I replay my version-control changes onto the latest main line to keep the log "
        "straight?",
    ),
    (
        "aqueducts",
        "The ancient Romans built aqueducts that carried water across valleys on stone arches, "
        "relying on a gentle downhill gradient.",
        "How did the old Italian empire bring drinking supplies into its cities from far away?",
    ),
    (
        "vaccines",
        "Vaccines train the immune system by exposing it to a harmless piece or weakened form of "
        "a pathogen, so the body recognises the real infection later.",
        "How do immunisations protect people from catching diseases?",
    ),
    (
        "chess openings",
        "In chess, the opening phase is about developing knights and bishops quickly, controlling "
        "the centre and castling the king to safety.",
        "What should I aim for in the first moves of a game on the sixty-four squares?",
    ),
    (
        "tides",
        "Ocean tides rise and fall twice a day mainly because of the gravitational pull of the "
        "Moon on the Earth's water.",
        "Why does the sea level at the coast go up and down each day?",
    ),
    (
        "pour-over coffee",
        "For pour-over coffee, use water just off the boil and a medium-fine grind, pouring "
        "slowly in circles to extract the grounds evenly.",
        "Tips for making a good cup with a filter cone and a kettle?",
    ),
    (
        "sleep",
        "Adults who regularly sleep less than seven hours a night show poorer memory, weaker "
        "immunity and a higher risk of heart disease.",
        "What harm comes from habitually short slumber?",
    ),
    (
        "inflation",
        "When the general level of prices rises, each unit of currency buys fewer goods, eroding "
        "the purchasing power of savings.",
        "Why does my money get me less at the shops every year?",
    ),
    (
        "electric cars",
        "Electric cars store energy in lithium-ion battery packs, and their driving range drops "
        "noticeably in freezing weather.",
        "Why can a plug-in automobile travel fewer kilometres when it is very cold?",
    ),
    (
        "passwords",
        "A strong password is long, unique for every site and ideally generated and stored by a "
        "password manager.",
        "How should I choose login credentials to keep my accounts safe?",
    ),
    (
        "bicycle care",
        "Keep a bicycle chain clean and lightly oiled, and check tyre pressure weekly to avoid "
        "punctures and wasted effort.",
        "How do I look after my bike so it rides smoothly?",
    ),
    (
        "black holes",
        "A black hole is a region of space where gravity is so strong that nothing, not even "
        "light, can escape once it crosses the event horizon.",
        "Which collapsed stellar remnant swallows everything, even photons?",
    ),
    (
        "guitar tuning",
        "Standard guitar tuning from the lowest string to the highest is E, A, D, G, B, E.",
        "What pitches do I set on a six-string instrument?",
    ),
    (
        "composting",
        "Kitchen scraps and garden waste break down into rich compost when kept moist, turned "
        "regularly and balanced between greens and browns.",
        "How can I recycle vegetable peelings into soil for my plants?",
    ),
    (
        "remote work",
        "Employees who work from home save commuting time but can feel isolated from colleagues "
        "and find it harder to switch off.",
        "What are the pros and cons of doing my job from my own house?",
    ),
    (
        "plate tectonics",
        "The Earth's outer shell is divided into plates that drift a few centimetres a year, "
        "causing earthquakes where they grind past each other.",
        "Why do continents move and the ground shake?",
    ),
    (
        "DNS",
        "The domain name system translates human-readable website names into the numeric IP "
        "addresses computers use to find each other.",
        "How does my browser find the server behind a web address?",
    ),
    (
        "Hamlet",
        "Hamlet, the Prince of Denmark, seeks revenge on his uncle Claudius, who murdered "
        "Hamlet's father to seize the throne.",
        "Who does the melancholy royal heir at Elsinore want to punish, and why?",
    ),
    (
        "puppy training",
        "Reward a puppy immediately with a treat or praise when it sits on command, so it links "
        "the behaviour with something pleasant.",
        "How do I teach a young hound to obey?",
    ),
    (
        "climate change",
        "Burning fossil fuels releases carbon dioxide that traps heat in the atmosphere and warms "
        "the planet.",
        "Why is the world getting hotter?",
    ),
    (
        "burns first aid",
        "Cool a minor burn under running water for at least twenty minutes and cover it loosely "
        "with cling film; do not apply butter or ice.",
        "What should I do right after scalding my hand on a hot pan?",
    ),
    (
        "rainbows",
        "A rainbow appears when sunlight is refracted, reflected and dispersed inside raindrops, "
        "splitting white light into its colours.",
        "What causes the multicoloured arc in the sky after a shower?",
    ),
    (
        "tax returns",
        "Self-employed people must file their annual tax return and pay any income tax owed by "
        "the deadline to avoid penalties.",
        "When do freelancers have to settle what they owe the revenue service?",
    ),
    (
        "quicksort",
        "Quicksort picks a pivot element, partitions the array into smaller and larger values, "
        "and recursively sorts each part.",
        "Explain the divide-and-conquer method for putting a list in order.",
    ),
    (
        "hydration",
        "Drinking enough water keeps the body's temperature stable, lubricates joints and helps "
        "the kidneys flush out waste.",
        "Why is it important to have plenty of fluids?",
    ),
    (
        "Moon landing",
        "In July 1969 Apollo 11 landed on the Moon, and Neil Armstrong became the first person to "
        "walk on its surface.",
        "Who first set foot on our natural satellite, and when?",
    ),
    (
        "Vikings",
        "Norse seafarers from Scandinavia raided and traded across Europe between the eighth and "
        "eleventh centuries in longships.",
        "Who were the medieval Nordic sea raiders?",
    ),
]


def test_retrieval_top1_accuracy_on_paraphrased_questions(
    store: MemoryStore, tmp_path: Path
) -> None:
    assert len(LABELLED) >= 30
    corpus = tmp_path / "corpus.md"
    corpus.write_text(
        "".join(f"## {title}\n\n{passage}\n\n" for title, passage, _ in LABELLED),
        encoding="utf-8",
    )
    passages = store.add_documents([corpus])
    assert len(passages) == len(LABELLED)  # one heading, one passage

    correct = 0
    misses = []
    for position, (title, _, question) in enumerate(LABELLED):
        hits = store.search(question, k=1, min_score=0.0)
        if hits and hits[0].position == position:
            correct += 1
        else:
            misses.append((title, question, hits[0].text[:60] if hits else None))
    accuracy = correct / len(LABELLED)
    print(f"\nretrieval top-1 accuracy: {correct}/{len(LABELLED)} = {accuracy:.3f}")
    for miss in misses:
        print("  miss:", miss)
    assert accuracy >= 0.9


# -- messages and scoping ------------------------------------------------------------------


def test_add_and_search_round_trip(store: MemoryStore) -> None:
    solar = add(store, "debate-a", 0, "Solar panels turn sunlight into electricity.", "researcher")
    add(store, "debate-a", 1, "The recipe needs two cups of flour and an egg.")

    hits = store.search("How do photovoltaic cells generate power?", conversation_id="debate-a")

    assert [h.id for h in hits] == [solar]
    hit = hits[0]
    assert hit == Hit(
        id=solar,
        text="Solar panels turn sunlight into electricity.",
        kind="message",
        score=hit.score,
        conversation_id="debate-a",
        speaker="researcher",
        turn=0,
        at=AT,
    )
    assert 0.3 <= hit.score <= 1.0
    exact = store.search("Solar panels turn sunlight into electricity.", conversation_id="debate-a")
    assert exact[0].score == pytest.approx(1.0, abs=1e-3)
    assert all(0.0 <= h.score <= 1.0 for h in exact)


def test_a_conversation_never_sees_another_unless_include_past(store: MemoryStore) -> None:
    a_solar = add(store, "debate-a", 0, "Solar panels turn sunlight into electricity.")
    b_wind = add(store, "debate-b", 0, "Wind turbines generate power from moving air.")
    question = "renewable sources of electric power"

    own = store.search(question, conversation_id="debate-b", min_score=0.0, k=10)
    assert {h.conversation_id for h in own} == {"debate-b"}
    assert [h.id for h in own] == [b_wind]

    with_past = store.search(
        question, conversation_id="debate-b", include_past=True, min_score=0.0, k=10
    )
    assert {h.id for h in with_past} == {a_solar, b_wind}

    assert store.search(question, conversation_id="never-seen", min_score=0.0) == []
    assert store.search(question, min_score=0.0) == []  # no conversation, no documents


def test_exclude_ids_are_never_returned(store: MemoryStore) -> None:
    ids = [
        add(store, "debate-a", turn, text)
        for turn, text in enumerate(
            [
                "Coffee contains caffeine, a stimulant.",
                "Tea also has caffeine, though less than coffee.",
                "Espresso is concentrated coffee brewed under pressure.",
            ]
        )
    ]

    hits = store.search(
        "coffee", conversation_id="debate-a", exclude_ids=ids[:2], k=3, min_score=0.0
    )
    assert [h.id for h in hits] == [ids[2]]
    past = store.search("coffee", include_past=True, exclude_ids=ids, k=3, min_score=0.0)
    assert past == []


def test_min_score_is_honoured(store: MemoryStore) -> None:
    add(store, "debate-a", 0, "The mitochondria is the powerhouse of the cell.")
    add(store, "debate-a", 1, "Interest rates were raised by the central bank.")

    all_hits = store.search("cell biology energy", conversation_id="debate-a", min_score=0.0)
    assert len(all_hits) == 2
    strict = store.search("cell biology energy", conversation_id="debate-a", min_score=0.45)
    assert strict and all(h.score >= 0.45 for h in strict)
    assert len(strict) < len(all_hits)
    unrelated = store.search("medieval castle architecture", conversation_id="debate-a")
    assert unrelated == []


def test_pruned_turn_replaces_its_message_and_keeps_its_time(store: MemoryStore) -> None:
    message = add(store, "debate-a", 3, "Nuclear plants provide steady low-carbon power.")
    store.add_pruned(
        "debate-a", "analyst", 3, "Nuclear plants provide steady low-carbon power.", message
    )

    hits = store.search("atomic energy", conversation_id="debate-a")
    assert [(h.id, h.kind, h.at) for h in hits] == [(message, "pruned", AT)]
    assert store.stats() == MemoryStats(message=0, document=0, pruned=1, conversations=1)


async def test_async_calls_run_in_call_order_off_the_event_loop(store: MemoryStore) -> None:
    first = store.aadd_message("debate-a", "critic", 0, AT, "Cats purr when content.", "m0")
    store.aadd_message("debate-a", "critic", 1, AT, "Dogs wag their tails.", "m1")  # not awaited

    hits = await store.asearch("feline happiness", conversation_id="debate-a", k=1)

    assert [h.id for h in hits] == ["m0"]  # queued after the write, so it sees it
    await first
    await store.flush()
    assert store.stats().message == 2


def test_stats_counts_by_kind(store: MemoryStore, tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# One\n\nFirst part.\n\n# Two\n\nSecond part.\n", encoding="utf-8")
    store.add_documents([doc])
    add(store, "debate-a", 0, "alpha")
    add(store, "debate-a", 1, "beta")
    add(store, "debate-b", 0, "gamma")
    store.add_pruned("debate-b", "critic", 1, "delta", "debate-b-1")

    assert store.stats() == MemoryStats(message=3, document=2, pruned=1, conversations=2)


# -- documents -------------------------------------------------------------------------------

GUIDE = """# Field guide

Short introduction to the guide.

## Birds

{birds}

## Trees

Oaks live for centuries and support hundreds of insect species.

```
# not a heading: inside a code fence

still the same block
```
"""


def test_documents_are_split_with_source_and_position(store: MemoryStore, tmp_path: Path) -> None:
    birds = " ".join(
        f"Sentence {i} about a robin singing at dawn in the garden." for i in range(60)
    )
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE.format(birds=birds), encoding="utf-8")

    passages = store.add_documents([str(guide)])

    source = str(guide.resolve())
    assert [p.position for p in passages] == list(range(len(passages)))
    assert {p.source for p in passages} == {source}
    assert passages[0].text == "# Field guide\n\nShort introduction to the guide."
    assert passages[1].text.startswith("## Birds\n\nSentence 0 ")
    assert len(passages) >= 5  # the long section is cut at sentence ends
    counter = MiniLMEmbedding().count_tokens
    assert all(counter(p.embedding_text()) <= 128 for p in passages)
    assert passages[-2].text.startswith("## Trees\n\nOaks live")
    assert passages[-1].text.endswith("still the same block\n```")
    assert passages[-1].heading == "Trees"

    hits = store.search("How long do oak trees live?")
    assert hits[0].kind == "document"
    assert (hits[0].source, hits[0].position, hits[0].heading) == (
        source,
        len(passages) - 2,
        "Trees",
    )
    assert store.stats().document == len(passages)


def test_readding_a_shorter_file_replaces_its_passages(store: MemoryStore, tmp_path: Path) -> None:
    doc = tmp_path / "plan.txt"
    doc.write_text("\n\n".join(f"# Part {i}\n\nDetails of part {i}." for i in range(4)))
    assert len(store.add_documents([doc])) == 4
    doc.write_text("# Part 0\n\nOnly this remains.")

    assert len(store.add_documents([doc])) == 1
    assert store.stats().document == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("big.md", b"word " * 400, "over the size limit of 1000 bytes"),
        ("slides.pdf", b"%PDF-1.7", "corrupt PDF"),
        ("slides.key", b"PK", "unsupported type .key"),
        ("missing.md", None, "cannot read"),
    ],
)
def test_bad_documents_are_refused_and_nothing_is_loaded(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Fine\n\nA perfectly good file.", encoding="utf-8")
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)

    with MemoryStore(tmp_path / "memory", max_document_bytes=1000) as store:
        with pytest.raises(ConfigError, match=message) as error:
            store.add_documents([good, bad])
        assert str(bad) in str(error.value)
        assert store.stats().document == 0


# -- embedding function identity -------------------------------------------------------------


class _OtherEmbedding(EmbeddingFunction[Documents]):
    """A different embedding function; ``name_`` and ``config`` say what it claims to be."""

    def __init__(self, name_: str = "test-other-embedding", config: dict[str, Any] | None = None):
        self._name = name_
        self._config = config or {"dimensions": 384}

    def __call__(self, input: Documents) -> Embeddings:
        return [np.ones(384, dtype=np.float32) / np.sqrt(384) for _ in input]

    @staticmethod
    def name() -> str:
        return "test-other-embedding"

    def get_config(self) -> dict[str, Any]:
        return self._config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _OtherEmbedding:
        return _OtherEmbedding(config=config)


def _make_collection(path: Path, name: str, ef: EmbeddingFunction[Documents]) -> None:
    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False)
    )
    client.create_collection(
        name,
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=cast("EmbeddingFunction[Embeddable]", ef),
    )
    cast(Any, client).close()  # Client.close exists; ClientAPI does not declare it


def test_collection_of_another_embedding_function_is_refused(tmp_path: Path) -> None:
    _make_collection(tmp_path, DOCUMENTS, _OtherEmbedding())

    with pytest.raises(ConfigError) as error:
        MemoryStore(tmp_path)
    assert "'test-other-embedding'" in str(error.value)
    assert "'roundtable-minilm-int8'" in str(error.value)
    assert DOCUMENTS in str(error.value)


def test_same_name_with_another_model_hash_is_refused(tmp_path: Path) -> None:
    class Impostor(_OtherEmbedding):
        @staticmethod
        def name() -> str:
            return MiniLMEmbedding.name()

    config = {**MiniLMEmbedding().get_config(), "model_sha256": "f" * 64}
    _make_collection(tmp_path, ARCHIVE, Impostor(config=config))

    with pytest.raises(ConfigError, match=r"model_sha256=f{64}.*model_sha256=8199be6f"):
        MemoryStore(tmp_path)


# -- one owner per directory -----------------------------------------------------------------


def test_a_second_process_gets_infra_error_at_once(store: MemoryStore, tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from roundtable.memory import MemoryStore\n"
        "from roundtable.common.errors import InfraError\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    MemoryStore(sys.argv[1])\n"
        "except InfraError as e:\n"
        "    print(f'{time.monotonic() - start:.3f}', e)\n"
        "    sys.exit(3)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "memory")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 3, done.stderr
    seconds, message = done.stdout.split(" ", 1)
    assert float(seconds) < 2.0
    assert elapsed < 20  # including the interpreter and imports
    assert "in use by another process" in message


def test_the_same_process_cannot_open_twice_but_can_reopen_after_close(tmp_path: Path) -> None:
    first = MemoryStore(tmp_path)
    with pytest.raises(InfraError, match="in use"):
        MemoryStore(tmp_path)
    add(first, "debate-a", 0, "kept across reopening")
    first.close()
    first.close()  # idempotent

    with MemoryStore(tmp_path) as again:
        assert again.stats().message == 1


def test_a_conversation_gets_a_collection_only_once_a_turn_is_pruned(store: MemoryStore) -> None:
    """Chroma keeps every opened collection's index in memory: one per conversation grew a
    server by about 2.5 MB a run, for good (#15, finding 10). Until a turn is pruned, the
    conversation is searched in the archive (with its owner's filter); once one is, its
    collection holds every turn so far and those written after."""
    from roundtable.memory.store import CONVERSATION_PREFIX

    def own_collections() -> list[str]:
        names = [c.name for c in store._client.list_collections()]
        return [n for n in names if n.startswith(CONVERSATION_PREFIX)]

    first = add(store, "debate-a", 0, "Trams carry many riders on fixed rails.")
    store.add_message("debate-a", "critic", 1, AT, "Buses go anywhere.", "bob-1", owner="bob")
    assert own_collections() == []
    hits = store.search("rail transit", conversation_id="debate-a", min_score=0.0, k=5)
    assert [h.id for h in hits] == [first]  # bob's entry is not the local user's

    pruned = add(store, "debate-a", 2, "Bike lanes are the cheapest to build.")
    store.add_pruned("debate-a", "analyst", 2, "Bike lanes are the cheapest to build.", pruned)
    later = add(store, "debate-a", 3, "Ferries suit river towns.")
    assert len(own_collections()) == 1
    ids = {h.id for h in store.search("transport", conversation_id="debate-a", min_score=0.0)}
    assert ids == {first, pruned, later}
    assert store.stats().conversations == 1  # one conversation id, whoever wrote in it
