"""Avatars for every role of every team, drawn, not hand-made: an initial on a colour.

The browser asks ``/avatars/<author>`` for each message's author. Chainlit answers from
``public/avatars/<name>.*`` and with its favicon for any other name, so a role with no file
would show the favicon. ``route`` answers first: a role's generated SVG, unless a file in
``public/avatars`` names it (a person may still draw their own), else Chainlit's own answer.
A role's colour is the palette's entry at its index in its team, so the roles of one team
never share a colour; a name in several teams keeps the colour of the first team listing it.
Role names are checked (``SAFE_NAME``), so they are safe in an SVG, a file name and a URL.

Owns the drawing and the route; knows nothing of which team a session runs.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roundtable.agents import Team

PALETTE = (
    "#0e7490",
    "#b45309",
    "#a21caf",
    "#15803d",
    "#be123c",
    "#4338ca",
    "#4d7c0f",
    "#854d0e",
)
"""One colour per place in a team (a team has at most eight roles); white text reads on all."""
SVG_TYPE = "image/svg+xml"


TEAM_COLOUR = "#334155"
"""Roundtable's own slate (``public/avatars/roundtable.svg``), in no role's palette: Chainlit
also shows the chosen profile's icon beside Roundtable's own messages."""


def avatar_svg(name: str, colour: str, text: str | None = None) -> str:
    """A round badge with ``text`` (the name's initial by default)."""
    shown = text or name[:1].upper()
    size = 30 if len(shown) == 1 else 24
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" '
        f'aria-label="{name}"><circle cx="32" cy="32" r="32" fill="{colour}"/>'
        f'<text x="32" y="{32 + size // 3}" font-family="sans-serif" font-size="{size}" '
        f'font-weight="bold" text-anchor="middle" fill="#fff">{shown}</text></svg>'
    )


def role_avatars(teams: Iterable[Team]) -> dict[str, str]:
    """Every role's SVG by role name."""
    drawn: dict[str, str] = {}
    for team in teams:
        for index, name in enumerate(team.roster):
            drawn.setdefault(name, avatar_svg(name, PALETTE[index % len(PALETTE)]))
    return drawn


def team_icon(team: Team) -> str:
    """The team's badge (its name's first two letters, as several teams may share an
    initial) as a ``data:`` URL, a chat profile's icon: it needs no route, so it works
    under any root path."""
    svg = avatar_svg(team.name, TEAM_COLOUR, team.name[:2].capitalize())
    return f"data:{SVG_TYPE};base64,{base64.b64encode(svg.encode()).decode()}"


Fallback = Callable[[str], Awaitable[Response]]


def route(avatars: dict[str, str], folder: Path, fallback: Fallback) -> Route:
    """``GET /avatars/{avatar_id}``: a drawn role avatar, else ``fallback(avatar_id)``."""

    async def serve(request: Request) -> Response:
        avatar_id = str(request.path_params["avatar_id"])
        svg = avatars.get(avatar_id.strip().lower())
        if svg is None or any(folder.glob(f"{avatar_id.strip().lower()}.*")):
            return await fallback(avatar_id)
        return Response(svg, media_type=SVG_TYPE, headers={"Cache-Control": "max-age=3600"})

    return Route("/avatars/{avatar_id:str}", serve, methods=["GET"])
