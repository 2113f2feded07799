"""Transcript downloads over HTTP: ``GET /roundtable/export/<id>.md`` (or ``.json``, ``.html``).

The end of a run shows plain links to this route, so an export is one click: the browser
gets the file as an attachment, with no file card to click again. The file is made from the
saved transcript at each request, so a link keeps working in a thread reopened after a reload
or a restart (the link is in the thread's saved message; the session that ran it is gone).

Who asks is Chainlit's logged-in user, read from its session cookie (a signed JWT; the local
user's too, when the UI has no users): no valid cookie, 401. Another user's transcript is
answered exactly as a missing one (404), and so is an id that is not a plain name, before any
file is touched. The read is bounded (``transcripts.load``) and done off the event loop.

Owns the route, the id's shape and the links; the documents are ``transcripts.export``'s and
the owner rule is ``common.owners``'.
"""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

from chainlit.auth import get_token_from_cookies
from chainlit.auth.jwt import decode_jwt
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from roundtable.common.owners import owns
from roundtable.transcripts import (
    HTML_CSP,
    Transcript,
    TranscriptError,
    load,
    to_html,
    to_json,
    to_markdown,
)

PREFIX = "/roundtable/export"
TRANSCRIPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A transcript's file name without ``.jsonl``: what the UI names them (conversation ids,
``20261205-170644-1a2b3c``); no dots, slashes or anything a path could be made of."""
FORMATS = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
LABELS = {"md": "Markdown", "json": "JSON", "html": "HTML"}
"""Each format's name in its link, in the links' order."""
EXPORTERS: dict[str, Callable[[Transcript], str]] = {
    "md": to_markdown,
    "json": to_json,
    "html": to_html,
}
NOT_FOUND = "No such transcript."


def page_root() -> str:
    """Where the page is served from, as Chainlit's own page computes it: a ``--root-path``,
    or the path it is mounted at in another app (``mount_chainlit``); "" at the top."""
    root = os.environ.get("CHAINLIT_PARENT_ROOT_PATH", "") + os.environ.get(
        "CHAINLIT_ROOT_PATH", ""
    )
    return "" if root == "/" else root.rstrip("/")


def export_url(transcript_id: str, fmt: str, root_path: str = "") -> str | None:
    """The link to a transcript's export, or None when ``transcript_id`` is no plain name."""
    if not TRANSCRIPT_ID.fullmatch(transcript_id) or fmt not in FORMATS:
        return None
    return f"{root_path.rstrip('/')}{PREFIX}/{transcript_id}.{fmt}"


def export_links(transcript_id: str, root_path: str = "") -> str:
    """``Download Markdown · Download JSON · Download HTML`` as Markdown links ("" for an
    unusable id)."""
    if not TRANSCRIPT_ID.fullmatch(transcript_id):
        return ""
    return " · ".join(
        f"[Download {label}]({export_url(transcript_id, fmt, root_path)})"
        for fmt, label in LABELS.items()
    )


def caller(request: Request) -> str | None:
    """The logged-in Chainlit user's identifier from the session cookie; None: nobody."""
    token = get_token_from_cookies(dict(request.cookies))
    if not token:
        return None
    try:
        return str(decode_jwt(token).identifier)
    except Exception:  # expired, forged, malformed: all the same to the caller, not logged in
        return None


def _own(folder: Path, transcript_id: str, user: str) -> Transcript | None:
    path = folder / f"{transcript_id}.jsonl"
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():  # a torn tail is dropped; the rest exports
            warnings.simplefilter("ignore")
            transcript = load(path)
    except TranscriptError:  # whose it is cannot be told: answered as a missing one
        return None
    return transcript if owns(user, transcript.header.owner) else None


def route(folder: Path, root_path: str = "") -> Route:
    """``GET <root_path>/roundtable/export/{name}``: ``name`` is ``<id>.md``, ``.json`` or
    ``.html``."""

    async def serve(request: Request) -> Response:
        user = caller(request)
        if user is None:
            return PlainTextResponse("Log in first.", status_code=401)
        name = str(request.path_params["name"])
        transcript_id, _, fmt = name.rpartition(".")
        if fmt not in FORMATS or not TRANSCRIPT_ID.fullmatch(transcript_id):
            return PlainTextResponse(NOT_FOUND, status_code=404)
        transcript = await asyncio.to_thread(_own, folder, transcript_id, user)
        if transcript is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        body = EXPORTERS[fmt](transcript)
        headers = {
            "Content-Disposition": f'attachment; filename="{transcript_id}.{fmt}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": HTML_CSP,  # the page's own, if a browser ever shows it
        }
        return Response(body.encode("utf-8"), media_type=FORMATS[fmt], headers=headers)

    return Route(f"{root_path.rstrip('/')}{PREFIX}/{{name:str}}", serve, methods=["GET"])


__all__ = ["PREFIX", "TRANSCRIPT_ID", "caller", "export_links", "export_url", "page_root", "route"]
