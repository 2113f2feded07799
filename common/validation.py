"""Reading a pydantic ``ValidationError`` as one line a person can act on.

Owns ``first_error``: the first problem's location (dotted) and message. Does not own the
sentence around them: each caller names its file, setting or reply.
"""

from pydantic import ValidationError


def first_error(exc: ValidationError, whole: str = "") -> tuple[str, str]:
    """``(where, message)`` of the first problem; ``whole`` names a problem with no location."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or whole
    return where, str(err["msg"])
