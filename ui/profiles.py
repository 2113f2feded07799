"""Chat profiles: one per team, so a person picks the team of a new chat in the page.

Each profile is named after its team; its description lists the team's roles, what each does
and its part in the protocol (opens, gives verdicts, answers, plans), and which modes the
team can run. ``team_for`` maps the profile a session was opened with back to its team; an
unknown or missing profile (a page from before the teams changed) gets the configured team.

Owns the profiles' content; the teams themselves are loaded once at start-up by the app.
"""

from __future__ import annotations

from chainlit.types import ChatProfile, Starter

from roundtable.agents import Team, Teams
from roundtable.conversations import MODES
from roundtable.ui.avatars import team_icon

FLAG_WORDS = {
    "opens": "opens",
    "gives_verdict": "gives the verdict",
    "answers": "writes the answer",
    "plans": "plans a panel",
}
"""The protocol flags (``agents.FLAGS``) as a person reads them."""

INTRO = (
    "## Roundtable\n\n"
    "A team of AI agents debates your question, live: a manager picks who speaks next and "
    "says why, and the run ends with the answer and the reason it stopped. Type at any "
    "moment to step in."
)
"""What the product is, in a line, above the team on the first page (every profile)."""


def profile_markdown(team: Team) -> str:
    """The profile's description: the team, each role and its part, the modes it runs."""
    lines = [team.description or f"The {team.name} team.", ""]
    for card in team.roles:
        parts = ", ".join(FLAG_WORDS[flag] for flag in team.flags_of(card.name))
        part = f" *({parts})*" if parts else ""
        lines.append(f"- **{card.name}**{part}: {card.description.strip()}")
    lines += ["", f"Modes: {', '.join(m for m in MODES if team.can_run(m))}."]
    return "\n".join(lines)


def chat_profiles(teams: Teams, model_note: str = "") -> list[ChatProfile]:
    """One profile per team, the configured team's first and marked default, then the
    shipped teams and the user's; each says what Roundtable is (``INTRO``), offers its
    team's starter questions, and says which model answers (``model_note``)."""
    order = [teams.default, *(name for name in teams.by_name if name != teams.default)]
    note = f"\n\n{model_note}" if model_note else ""
    return [
        ChatProfile(
            name=name,
            markdown_description=f"{INTRO}\n\n{profile_markdown(teams.by_name[name])}{note}",
            icon=team_icon(teams.by_name[name]),
            default=name == teams.default,
            starters=[Starter(label=_label(q), message=q) for q in teams.by_name[name].starters],
        )
        for name in order
    ]


def model_note(endpoint_kind: str, model: str) -> str:
    """Which model answers by default, in a line; the embedded demo model says so."""
    if endpoint_kind == "embedded":
        return (
            f"Answered by **{model}**, the small offline demo model shipped with Roundtable: "
            "expect weak writing. Point Roundtable at Ollama, vLLM or OpenAI in "
            "`roundtable.toml` for real answers (see the README, Configuration)."
        )
    return f"Answered by **{model}** ({endpoint_kind} endpoint)."


def _label(question: str) -> str:
    return question if len(question) <= 48 else question[:47].rstrip() + "…"


def team_for(profile: object, teams: Teams) -> Team:
    """The team of the profile a session was opened with (the configured team if unknown)."""
    if isinstance(profile, str) and profile in teams.by_name:
        return teams.by_name[profile]
    return teams.get(None)
