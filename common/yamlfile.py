"""Reading a user's YAML file: bounded, and each problem one line naming the file and line.

Owns the parse (the bytes come from ``common.bounded``: at most ``limit``; UTF-8, one YAML
document) and finding the line of a field (``line_of``) for validation errors. Team files and
``roundtable eval``'s question sets use it; what the document must hold is each caller's
pydantic model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from roundtable.common.bounded import read_bounded
from roundtable.common.errors import ConfigError


def read_yaml(path: Path, limit: int, what: str) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for ``line_of``); ``what`` names the file's
    kind in errors ("team file")."""
    data = read_bounded(path, limit, what)
    try:
        text = data.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from exc
    return raw, node


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """The 1-based line of the deepest node of ``loc`` found in the YAML tree."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = value if isinstance(value, yaml.CollectionNode) else key
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
            line = child.start_mark.line + 1 if child is not None else line
        if child is None:
            break
        node = child
    return line
