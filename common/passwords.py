"""Password hashes: scrypt from the standard library, stored as ``scrypt$n$r$p$salt$hash``.

Owns making and checking a hash. Does not own where hashes are kept (``accounts.py``, the
``ROUNDTABLE_USERS`` setting) nor who logs in (the UI's ``auth``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_SCRYPT = (2**14, 8, 1)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A storable hash of ``password``."""
    salt = salt or secrets.token_bytes(16)
    n, r, p = _SCRYPT
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return "$".join(
        ["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)],
    )


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
