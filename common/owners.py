"""Who a record belongs to: the one rule that says whether a caller may see it.

Every transcript, memory entry and run belongs to a user. ``None`` (and the name ``local``) is
the local user: the one person of a machine with no users configured, the CLI, and every
record written before owners existed (transcripts without an ``owner``, memory entries
without one). Owns: that rule. Does not own: who is logged in (the UI's auth, the API's
tokens) nor where the owner is stored (each record's own field).
"""

from __future__ import annotations

LOCAL_USER = "local"
"""The local user's name; no configured user may take it."""


def owner_key(owner: str | None) -> str:
    """The stored form of an owner: the user's name, ``local`` for the local user."""
    return owner if owner else LOCAL_USER


def header_owner(owner: str | None) -> str | None:
    """The form a transcript header records: None for the local user (as before owners)."""
    key = owner_key(owner)
    return None if key == LOCAL_USER else key


def owns(caller: str | None, owner: str | None) -> bool:
    """Whether ``caller`` may see a record of ``owner`` (both None-able: the local user)."""
    return owner_key(caller) == owner_key(owner)
