"""Chainlit's app root: a copy in the data folder, refreshed when the shipped files change."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from roundtable.ui.approot import SHIPPED_ROOT, prepare_app_root, shipped_files
from roundtable.ui.server import check_mcp_disabled, config_file


def shipped_copy(tmp_path: Path) -> Path:
    """A stand-in for site-packages/roundtable with the shipped files only."""
    source = tmp_path / "site-packages" / "roundtable"
    for name in shipped_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_ROOT / name, source / name)
    return source


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_the_app_root_is_the_data_folders_ui_with_every_shipped_file(data_dir: Path) -> None:
    root = prepare_app_root(data_dir)
    assert root == data_dir / "ui"
    names = shipped_files()
    assert {".chainlit/config.toml", "chainlit.md", "public/composer.js"} <= set(names)
    assert "public/avatars/you.svg" in names
    for name in names:
        assert (root / name).read_bytes() == (SHIPPED_ROOT / name).read_bytes()
    check_mcp_disabled(config_file(root))


def test_a_read_only_install_still_gives_a_writable_app_root(
    tmp_path: Path, data_dir: Path
) -> None:
    source = shipped_copy(tmp_path)
    before = sorted(source.rglob("*"))
    make_read_only(source)  # (root ignores the mode bits: the listing below checks no writes)
    try:
        root = prepare_app_root(data_dir, source)
        (root / ".chainlit" / "translations").mkdir(exist_ok=True)  # Chainlit writes there
        (root / ".files").mkdir()
        assert sorted(source.rglob("*")) == before
    finally:
        for path in [source, *source.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_an_edit_to_the_copy_lasts_until_the_shipped_files_change(
    tmp_path: Path, data_dir: Path
) -> None:
    source = shipped_copy(tmp_path)
    root = prepare_app_root(data_dir, source)
    (root / "chainlit.md").write_text("my own welcome\n")
    prepare_app_root(data_dir, source)
    assert (root / "chainlit.md").read_text() == "my own welcome\n"

    (source / "public" / "avatars" / "you.svg").unlink()  # an upgrade drops one file
    (source / "public" / "new.css").write_text("body {}\n")
    prepare_app_root(data_dir, source)
    assert (root / "chainlit.md").read_bytes() == (source / "chainlit.md").read_bytes()
    assert (root / "public" / "new.css").is_file()
    assert not (root / "public" / "avatars" / "you.svg").exists()
    assert (root / "public" / "avatars" / "roundtable.svg").is_file()


def test_a_deleted_file_in_the_copy_comes_back(data_dir: Path) -> None:
    root = prepare_app_root(data_dir)
    (root / ".chainlit" / "config.toml").unlink()
    prepare_app_root(data_dir)
    check_mcp_disabled(config_file(root))


def test_the_command_menu_is_labelled_commands_and_stays_so(data_dir: Path) -> None:
    """Chainlit calls the composer's command menu "Tools"; it holds Roundtable's commands."""
    root = prepare_app_root(data_dir)
    labels = json.loads((root / ".chainlit/translations/en-US.json").read_text(encoding="utf-8"))
    assert labels["chat"]["commands"]["button"] == "Commands"
    assert labels["chat"]["commands"]["availableTools"] == "Commands"
    assert labels["chat"]["settings"], "the rest of Chainlit's labels are kept"
    (root / ".chainlit/translations/en-US.json").unlink()
    prepare_app_root(data_dir)  # the shipped files did not change; the labels come back
    assert "Commands" in (root / ".chainlit/translations/en-US.json").read_text(encoding="utf-8")
