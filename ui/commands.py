"""What the person typed, parsed: a plain message or one of the chat commands.

Owns the command grammar (``/ask ROLE text``, ``/stop [reason]``, ``/replay [N] [speed]``,
``/fork N text``, ``/export [md|json|html]``) and the input size limit. Pure functions, no
Chainlit: the app decides what each command does.

Chainlit's composer can also send a command picked from its menu: then the command name comes
separately (``message.command``) and the text is the rest; ``parse`` accepts both forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_INPUT_CHARS = 20_000
"""Default size limit of one message; Socket.IO drops connections near 1 MB."""

COMMANDS = ("ask", "stop", "replay", "fork", "export")


MENU: tuple[tuple[str, str, str], ...] = (
    ("ask", "message-circle-question", "/ask ROLE text: that role answers next"),
    ("stop", "square", "Stop the debate (it ends at the next turn)"),
    ("replay", "history", "List saved transcripts; /replay N [2x|fast]"),
    ("fork", "git-branch", "/fork TURN text: continue a replay from a turn"),
    ("export", "download", "/export md, /export json or /export html"),
)
"""The composer's command menu: (name, icon, description)."""


@dataclass(frozen=True)
class Say:
    """A message for the debate; ``ask`` names the role that should answer next."""

    text: str
    ask: str | None = None


@dataclass(frozen=True)
class Stop:
    reason: str


@dataclass(frozen=True)
class Replay:
    """List transcripts (``which`` is None) or replay one (a number from the list, or an id)."""

    which: str | None = None
    speed: float | None = None


@dataclass(frozen=True)
class Fork:
    turn: int
    text: str


@dataclass(frozen=True)
class Export:
    fmt: Literal["md", "json", "html"]


@dataclass(frozen=True)
class Refused:
    """Input we will not act on, with the message to show the person."""

    message: str


Command = Say | Stop | Replay | Fork | Export | Refused

SPEEDS = {"fast": None, "instant": None}


def check_size(text: str, limit: int = MAX_INPUT_CHARS) -> Refused | None:
    """A refusal for input over ``limit`` characters, else None."""
    if len(text) > limit:
        return Refused(
            f"That message is {len(text):,} characters; the limit is {limit:,}. Please shorten it."
        )
    return None


def parse(text: str, command: str | None = None, *, roles: tuple[str, ...] = ()) -> Command:
    """Parse one message. ``roles`` are the roles ``/ask`` accepts (empty: any name)."""
    body = text.strip()
    if command is None and body.startswith("/"):
        head, _, rest = body[1:].partition(" ")
        if head.lower() in COMMANDS:
            command, body = head.lower(), rest.strip()
    if command is None:
        return Say(body) if body else Refused("Type a question or a message for the team.")
    handler = _HANDLERS.get(command.lower())
    if handler is None:
        return Refused(f"Unknown command /{command}. Commands: " + ", ".join(COMMANDS))
    return handler(body, roles)


def _ask(body: str, roles: tuple[str, ...]) -> Command:
    role, _, text = body.partition(" ")
    role = role.strip().lower()
    if not role:
        example = roles[-1] if roles else "ROLE"
        return Refused(f"Usage: /ask ROLE your message, e.g. /ask {example} is this sound?")
    if roles and role not in roles:
        return Refused(f"No role {role!r} in this debate; roles: {', '.join(roles)}")
    return Say(text.strip(), ask=role)


def _stop(body: str, _roles: tuple[str, ...]) -> Command:
    reason = body or "/stop"
    return Stop(f"stopped by the person ({reason})")


def _replay(body: str, _roles: tuple[str, ...]) -> Command:
    words = body.split()
    if not words:
        return Replay()
    speed: float | None = None
    if len(words) > 1:
        parsed = _speed(words[1])
        if isinstance(parsed, Refused):
            return parsed
        speed = parsed
    return Replay(which=words[0], speed=speed)


def _speed(word: str) -> float | Refused | None:
    word = word.lower()
    if word in SPEEDS:
        return SPEEDS[word]
    try:
        value = float(word.removesuffix("x"))
    except ValueError:
        return Refused(f"Speed {word!r}: use a factor like 1x, 2x, 10x, or 'fast'.")
    if value <= 0 or value > 1000:
        return Refused(f"Speed {word!r}: the factor must be between 0 and 1000.")
    return value


def _fork(body: str, _roles: tuple[str, ...]) -> Command:
    turn, _, text = body.partition(" ")
    if not turn.isdigit() or not text.strip():
        return Refused("Usage: /fork TURN your message, e.g. /fork 3 what if buses were free?")
    return Fork(turn=int(turn), text=text.strip())


def _export(body: str, _roles: tuple[str, ...]) -> Command:
    fmt = (body or "md").lower().lstrip(".")
    if fmt in ("md", "markdown"):
        return Export("md")
    if fmt == "json":
        return Export("json")
    if fmt in ("html", "htm"):
        return Export("html")
    return Refused("Usage: /export md, /export json or /export html")


_HANDLERS = {
    "ask": _ask,
    "stop": _stop,
    "replay": _replay,
    "fork": _fork,
    "export": _export,
}
