"""The panel's plan as a graph (``transcripts.plan_graph``): a node per branch coloured and
labelled in words by its latest state, an arrow per dependency, hostile branch text escaped,
and a cycle or an unknown dependency drawn without looping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from roundtable.transcripts import BranchEvent, PlanEvent, PlanStep, now, plan_svg
from roundtable.transcripts.events import BranchStatus

NS = "{http://www.w3.org/2000/svg}"


def step(name: str, role: str = "analyst", *waits: str, question: str = "Cost?") -> PlanStep:
    return PlanStep(id=name, role=role, needs="facts", question=question, depends_on=list(waits))


def plan(*steps: PlanStep) -> PlanEvent:
    return PlanEvent(
        seq=2, at=now(), turn=0, mode="panel", steps=list(steps), accepted=True, reason="r"
    )


def branch(seq: int, name: str, status: BranchStatus) -> BranchEvent:
    phase = "start" if status == "running" else "end"
    return BranchEvent(
        seq=seq,
        at=now(),
        turn=0,
        phase=phase,
        branch=name,
        role="analyst",
        question="q",
        status=status,
    )


def nodes(svg: str) -> dict[str, str]:
    """Each drawn branch's state, by id."""
    root = ET.fromstring(svg)
    return {g.get("data-branch", ""): g.get("data-state", "") for g in root.iter(f"{NS}g")}


def test_each_branch_is_a_node_in_its_latest_state_with_words_beside_the_colour() -> None:
    graph = plan(step("q1"), step("q2"), step("q3"), step("q4"), step("q5"))
    events = [
        branch(3, "q1", "running"),
        branch(4, "q2", "running"),
        branch(5, "q2", "ok"),
        branch(6, "q3", "running"),
        branch(7, "q3", "failed"),
        branch(8, "q4", "timeout"),
    ]
    svg = plan_svg(graph, events)
    assert nodes(svg) == {
        "q1": "running",
        "q2": "ok",
        "q3": "failed",
        "q4": "timeout",
        "q5": "planned",
    }
    root = ET.fromstring(svg)
    words = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "state"]
    assert words == ["running", "done", "failed", "timed out", "planned, waiting"]
    assert "2 failed or timed out" in svg


def test_a_dependency_is_an_arrow_from_the_step_waited_for() -> None:
    svg = plan_svg(plan(step("q1"), step("q2"), step("q3", "writer", "q1", "q2")))
    root = ET.fromstring(svg)
    arrows = [line for line in root.iter(f"{NS}line") if line.get("class") == "waits-for"]
    assert len(arrows) == 2
    assert all(a.get("marker-end") == "url(#arrow)" for a in arrows)
    boxes = {g.get("data-branch"): g.find(f"{NS}rect") for g in root.iter(f"{NS}g")}
    q3 = boxes["q3"]
    assert q3 is not None and all(a.get("x2") == q3.get("x") for a in arrows)


def test_hostile_branch_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & </svg>'
    svg = plan_svg(plan(step("q1", "analyst", question=hostile)), [branch(3, "q1", "failed")])
    ET.fromstring(svg)  # still well-formed
    assert "<script>" not in svg and "</svg>" not in svg[:-8]


def test_a_cycle_or_an_unknown_dependency_is_drawn_without_looping() -> None:
    svg = plan_svg(plan(step("q1", "a", "q2"), step("q2", "b", "q1"), step("q3", "c", "zz", "q3")))
    assert set(nodes(svg)) == {"q1", "q2", "q3"}
