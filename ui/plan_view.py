# mypy: disallow-untyped-calls=False
# (Chainlit ships py.typed, but Step.send and Step.update are unannotated.)
"""A pipeline's or panel's plan, branches and comparison as Chainlit steps.

The plan is one step, open, sent before any work starts: its sub-questions, the role taking
each and what each waits for. Every branch is a step nested under it (``parent_id``), sent
when the branch starts and updated when it ends: its name says its role and how it went
(``ok in 1.2 s``, ``failed``, ``timed out``...), failed and timed-out branches are marked as
errors (drawn red), and its body holds the sub-question and the reason of a failure. The
comparison is an open step listing the disagreements and the missing branches. Step names use
only letters, digits, spaces, dots and dashes (see ``render``).

Also here: which branch an agent's message answers (``branch_of``), so the renderer can label
the message. Owns no run logic, and does not draw messages (``render``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import chainlit as cl
from chainlit.utils import utc_now

from roundtable.transcripts import (
    AggregateEvent,
    BranchEvent,
    PlanEvent,
    PlanStep,
)

FAILED = ("failed", "timeout")
"""Branch endings drawn as errors."""


def plan_title(event: PlanEvent) -> str:
    if not event.accepted:
        return f"Plan refused for the {event.mode}"
    unit = "stage" if event.mode == "pipeline" else "sub-question"
    count = len(event.steps)
    return f"Plan {event.mode} {count} {unit}{'' if count == 1 else 's'}"


def plan_body(event: PlanEvent) -> str:
    """The reason, then one line per sub-question."""
    lines = [event.reason, ""]
    lines.extend(f"- {step_line(step)}" for step in event.steps)
    if event.fallback is not None:
        lines.extend(["", f"Instead: a {event.fallback}."])
    return "\n".join(lines).strip()


def step_line(step: PlanStep) -> str:
    after = f", after {', '.join(step.depends_on)}" if step.depends_on else ""
    return f"**{step.id}** {step.role} ({step.needs}{after}): {step.question}"


def branch_title(event: BranchEvent) -> str:
    head = f"Branch {event.branch} {event.role}"
    took = f"{event.latency_s:.1f} s"
    if event.phase == "start":
        return f"{head} running"
    return {
        "ok": f"{head} ok in {took}",
        "failed": f"{head} FAILED after {took}",
        "timeout": f"{head} TIMED OUT after {took}",
        "skipped": f"{head} skipped",
        "cancelled": f"{head} cancelled",
    }.get(event.status, f"{head} {event.status}")


def branch_body(event: BranchEvent, step: PlanStep | None) -> str:
    """The sub-question, the role (what it needs, what it waits for), how it went and why."""
    after = f" · after {', '.join(step.depends_on)}" if step and step.depends_on else ""
    needs = f" · needs {step.needs}" if step is not None else ""
    parts = [f"**Sub-question:** {event.question}", f"Role: {event.role}{needs}{after}"]
    if event.phase == "end":
        status = "timed out" if event.status == "timeout" else event.status
        parts.append(f"Status: {status} · {event.latency_s:.1f} s")
    if event.error:
        family = f" ({event.family})" if event.family else ""
        parts.append(f"Why{family}: {event.error}")
    return "\n\n".join(parts)


def aggregate_title(event: AggregateEvent) -> str:
    count = len(event.conflicts)
    title = f"Comparison {count} disagreement{'' if count == 1 else 's'}"
    return title + (f" {len(event.missing)} missing" if event.missing else "")


def aggregate_body(event: AggregateEvent) -> str:
    lines = [f"Answered: {', '.join(event.answered) or 'none'}"]
    if not event.compared:
        lines.append(
            "The comparison of the branches could not be used: disagreements may be unlisted."
        )
    if event.conflicts:
        lines.extend(["", "**Disagreements**"])
        lines.extend(f"- {c.topic} [{', '.join(c.branches)}]: {c.detail}" for c in event.conflicts)
    if event.missing:
        lines.extend(["", "**Missing**"])
        lines.extend(f"- {m.branch} ({m.role}, {m.status}): {m.reason}" for m in event.missing)
    return "\n".join(lines)


@dataclass
class PlanView:
    """The steps of one run's plan and branches, as drawn so far."""

    plan: cl.Step | None = None
    steps: dict[str, PlanStep] = field(default_factory=dict)
    branches: dict[str, cl.Step] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)
    """Branch id -> role, for the branches started and not ended."""

    def branch_of(self, speaker: str) -> str | None:
        """The branch ``speaker`` is answering, when exactly one of its branches is running."""
        mine = [branch for branch, role in self.running.items() if role == speaker]
        return mine[0] if len(mine) == 1 else None

    def busy(self, speaker: str) -> bool:
        """Whether ``speaker`` has branches running (its message answers one of them)."""
        return speaker in self.running.values()

    async def show_plan(self, event: PlanEvent) -> None:
        self.steps = {step.id: step for step in event.steps}
        step = cl.Step(name=plan_title(event), type="run", show_input=False, default_open=True)
        step.is_error = not event.accepted
        step.output = plan_body(event)
        step.start = step.end = utc_now()
        await step.send()
        self.plan = step if event.accepted else None

    async def show_branch(self, event: BranchEvent) -> None:
        step = self.branches.get(event.branch)
        shown = step is not None
        if step is None:  # starting, or ending without a start (skipped, cancelled)
            parent = self.plan.id if self.plan is not None else None
            step = cl.Step(name="", type="tool", parent_id=parent, show_input=False)
            step.start = utc_now()
            self.branches[event.branch] = step
        step.name = branch_title(event)
        step.output = branch_body(event, self.steps.get(event.branch))
        if event.phase == "start":
            self.running[event.branch] = event.role
        else:
            self.running.pop(event.branch, None)
            step.end = utc_now()
            step.is_error = event.status in FAILED
        await (step.update() if shown else step.send())

    async def show_aggregate(self, event: AggregateEvent) -> None:
        step = cl.Step(
            name=aggregate_title(event), type="tool", show_input=False, default_open=True
        )
        step.output = aggregate_body(event)
        step.start = step.end = utc_now()
        await step.send()
