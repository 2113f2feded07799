"""Citations: a reply's [n] checked against the notes numbered in its prompt, and exported."""

from __future__ import annotations

from pathlib import Path

from roundtable.conversations import Budget
from roundtable.conversations.citations import find_citations
from roundtable.conversations.recall import MemorySettings
from roundtable.memory import MemoryStore
from roundtable.transcripts import MemoryEvent, MemoryHit, MessageEvent, load
from roundtable.transcripts.events import Citation
from roundtable.transcripts.replay import replay
from roundtable.ui.export import to_markdown
from roundtable.ui.render import ChainlitRenderer
from tests.support.chainlit_page import recording_page
from tests.support.debates import collect, scripted_debate


def _hit(n: int) -> MemoryHit:
    return MemoryHit(id=f"doc:{n}", source="document a.pdf, page 1", score=0.5, text="t", n=n)


def test_each_distinct_number_is_checked_against_the_prompt_s_notes() -> None:
    citations = find_citations("Costs [2] and [1]; again [2], but [7] and [x].", [_hit(1), _hit(2)])

    assert citations == [
        Citation(n=2, hit_id="doc:2", valid=True),
        Citation(n=1, hit_id="doc:1", valid=True),
        Citation(n=7, hit_id=None, valid=False),
    ]


async def test_a_reply_records_its_citations_and_the_export_lists_its_sources(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "trams.md"
    doc.write_text("# Trams\n\nA modern tram line costs 20 to 40 million euros per kilometre.\n")
    with MemoryStore(tmp_path / "memory") as store:
        store.add_documents([doc])
        debate, _, _ = scripted_debate(
            tmp_path / "t.jsonl",
            {"researcher": ["A tram line costs 20 to 40 million per km [1], not [4]."]},
            question="How much would a new tram line cost our town?",
            budget=Budget(max_turns=1),
            memory=store,
            memory_settings=MemorySettings(),
        )
        events = await collect(debate)

    memory = next(e for e in events if isinstance(e, MemoryEvent))
    assert memory.hits[0].n == 1 and "20 to 40 million" in memory.hits[0].text
    assert memory.hits[0].heading == "Trams" and memory.hits[0].line == 1
    reply = next(e for e in events if isinstance(e, MessageEvent) and e.speaker == "researcher")
    assert reply.citations == [
        Citation(n=1, hit_id=memory.hits[0].id, valid=True),
        Citation(n=4, hit_id=None, valid=False),
    ]
    # Replayed in the browser: the [1] of the reply opens the passage as a side element.
    page = recording_page()
    renderer = ChainlitRenderer(live=False)
    async for event in replay(load(debate.transcript_path)):
        await renderer.show(event)
    (element,) = [e for e in page.elements.values() if e["name"].startswith("[")]
    assert (element["name"], element["display"], element["type"]) == ("[1]", "side", "text")
    content = page.session.files[element["chainlitKey"]]["path"].read_text()
    assert content.startswith("**document trams.md, passage 0 · section Trams · line 1**\n\n")
    assert "20 to 40 million euros" in content and str(tmp_path) not in content
    shown = page.state[element["forId"]]
    assert "per km [1], not [4]." in shown["output"]

    exported = to_markdown(load(debate.transcript_path))
    sources = exported.split("## Sources\n\n", 1)[1].strip().splitlines()
    assert len(sources) == 1  # the invalid [4] is no source
    assert sources[0].startswith("- [1] turn 1, researcher: document trams.md, passage 0: ")
    assert "20 to 40 million euros" in sources[0]
