"""Thread titles (``ui.titles``) on the real SQLite history: a thread opened by a command is
titled by the question, whichever comes first of our title and Chainlit's first-message name;
any other name (a person renaming the thread) is written as given; the pending renames are
bounded. The browser test is ``test_ui_browser_commands.py``."""

from __future__ import annotations

import uuid
from pathlib import Path

from chainlit.user import User

from roundtable.ui.history import create_schema, data_layer, database_url
from roundtable.ui.titles import MAX_PINS, NEUTRAL, TitledDataLayer

TITLE = "Replay: Should our city ban private cars downtown?"


async def _layer(tmp_path: Path) -> tuple[TitledDataLayer, str]:
    url = database_url(tmp_path, None)
    await create_schema(url)
    layer = data_layer(url)
    assert isinstance(layer, TitledDataLayer)
    user = await layer.create_user(User(identifier="local", metadata={"provider": "local"}))
    assert user is not None
    return layer, user.id


async def _name(layer: TitledDataLayer, thread_id: str) -> str | None:
    thread = await layer.get_thread(thread_id)
    assert thread is not None
    return thread["name"]


async def test_chainlits_late_first_message_name_is_rewritten_to_the_title(
    tmp_path: Path,
) -> None:
    layer, user = await _layer(tmp_path)
    thread = str(uuid.uuid4())
    await layer.update_thread(thread, user_id=user)
    await layer.title(thread, TITLE, "/replay 1")
    assert await _name(layer, thread) == TITLE
    await layer.update_thread(thread, name="/replay 1", user_id=user)  # Chainlit's, late
    assert await _name(layer, thread) == TITLE
    await layer.update_thread(thread, name="My own name")  # the person renames it
    assert await _name(layer, thread) == "My own name"
    await layer.update_thread(thread, name="/replay 1")  # the pin was used once
    assert await _name(layer, thread) == "/replay 1"


async def test_a_title_after_chainlits_name_replaces_it(tmp_path: Path) -> None:
    layer, user = await _layer(tmp_path)
    thread = str(uuid.uuid4())
    await layer.update_thread(thread, name="1", user_id=user)  # a menu command's text
    await layer.title(thread, f"  {TITLE}\n", "1")
    assert await _name(layer, thread) == TITLE
    await layer.title(thread, "   ")
    assert await _name(layer, thread) == NEUTRAL


async def test_pending_renames_are_bounded(tmp_path: Path) -> None:
    layer, _user = await _layer(tmp_path)
    for n in range(MAX_PINS + 5):
        layer._pins[f"t{n}"] = ("/replay", TITLE)  # as ``title`` keeps them, without writing
    await layer.title(str(uuid.uuid4()), TITLE, "/replay")
    assert len(layer._pins) == MAX_PINS
    assert "t0" not in layer._pins and f"t{MAX_PINS + 4}" in layer._pins
