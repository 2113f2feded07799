"""Uploads from the browser: added to the person's library with their identifier, or refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainlit.element import Element

from roundtable.memory import MemoryStore
from roundtable.memory.scope import documents_of
from roundtable.ui.uploads import add_uploads, uploaded_files, user_folder
from tests.support.chainlit_page import recording_page
from tests.support.docfiles import make_pdf


async def test_an_uploaded_pdf_is_added_for_its_owner_and_reported(tmp_path: Path) -> None:
    page = recording_page()
    upload = make_pdf(tmp_path / "0f3a-upload", [["Trams cost 31 million euros per km."], ["x."]])
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [("tram brief.pdf", upload)], tmp_path, "ana")
        stored = store._collection(documents_of("ana"), create=False)
        assert stored is not None
        metadatas = stored.get(include=["metadatas"])["metadatas"] or []

    assert page.messages()[-1].endswith(
        "Added 2 passage(s) from 1 file(s), 2 PDF page(s). "
        "The team can now recall them, citing [n]."
    )
    assert {m["owner"] for m in metadatas} == {"ana"}
    assert {m["source"] for m in metadatas} == {
        str(user_folder(tmp_path, "ana") / "tram brief.pdf")
    }


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("tram brief.pdf", "application/pdf"),
        ("notes.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("notes.md", "text/markdown"),
        ("photo.png", "image/png"),
    ],
)
async def test_every_file_the_composer_uploads_is_taken(
    tmp_path: Path, name: str, mime: str
) -> None:
    """As Chainlit's emitter makes a sent message's elements: a PDF is a ``cl.Pdf``, not a
    ``cl.File``, and was once dropped (the composer showed it; memory never saw it). A file
    that cannot be read is taken too, and refused by name when it is added."""
    recording_page()
    path = tmp_path / "upload-id"
    path.write_bytes(b"x")
    element = Element.from_dict(
        {"id": "e1", "name": name, "path": str(path), "type": Element.infer_type_from_mime(mime)}
        | {"mime": mime, "display": "inline", "chainlitKey": "e1"}
    )

    assert uploaded_files([element]) == [(name, path)]


async def test_a_bad_upload_is_refused_in_one_line_and_nothing_is_added(tmp_path: Path) -> None:
    page = recording_page()
    upload = tmp_path / "blob"
    upload.write_bytes(b"MZ")
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [("tool.exe", upload)], tmp_path, "ana")
        assert store.list_documents() == []

    last = page.messages()[-1]
    assert last.startswith("Nothing added: document tool.exe: ") and "unsupported type .exe" in last
    assert str(tmp_path) not in last  # the file's own name, never where the server keeps it


async def test_a_refusal_names_the_file_as_sent_not_its_copy_on_the_server(tmp_path: Path) -> None:
    """The reason is the converter's (it names the kept copy); the person reads their own name."""
    page = recording_page()
    locked = make_pdf(tmp_path / "upload-id", [["Minutes of the board."]], password="hunter2")
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [("../board minutes.pdf", locked)], tmp_path, "ana")
        assert store.list_documents(owner="ana") == []

    assert page.messages()[-1] == (
        "Nothing added: document ../board minutes.pdf: the PDF is encrypted (password-protected)"
    )


async def test_two_users_uploads_each_reach_only_their_own_searches(tmp_path: Path) -> None:
    recording_page()
    ana = make_pdf(tmp_path / "a", [["The canary word of ana is quenderwick."]])
    bo = make_pdf(tmp_path / "b", [["The canary word of bo is marplethorn."]])
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [("brief.pdf", ana)], tmp_path, "ana")
        await add_uploads(store, [("brief.pdf", bo)], tmp_path, "bo")
        for owner, mine, theirs in (
            ("ana", "quenderwick", "marplethorn"),
            ("bo", "marplethorn", "quenderwick"),
        ):
            for query in (mine, theirs, "What is the canary word?"):
                text = " ".join(h.text for h in store.search(query, min_score=0.0, owner=owner))
                assert theirs not in text
            assert mine in " ".join(h.text for h in store.search(mine, owner=owner))
            assert len(store.list_documents(owner=owner)) == 1


async def test_a_refused_upload_leaves_nothing_and_puts_back_what_it_replaced(
    tmp_path: Path,
) -> None:
    """A refused file's copy was left in the person's folder, and one sent under the name of
    a file they had added replaced its copy."""
    recording_page()
    good = make_pdf(tmp_path / "u1", [["The hives are checked on Mondays."]])
    locked = make_pdf(tmp_path / "u2", [["Secret minutes."]], password="hunter2")
    folder = user_folder(tmp_path, "ana")
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [("hives.pdf", good)], tmp_path, "ana")
        await add_uploads(store, [("hives.pdf", locked), ("minutes.pdf", locked)], tmp_path, "ana")
        assert len(store.list_documents(owner="ana")) == 1

    assert sorted(p.name for p in folder.iterdir()) == ["hives.pdf"]
    assert (folder / "hives.pdf").read_bytes() == good.read_bytes()


async def test_a_file_name_in_the_status_lines_shows_as_written_not_as_markdown(
    tmp_path: Path,
) -> None:
    """A name is the uploader's text: a Markdown image in it would make the page fetch its URL."""
    page = recording_page()
    upload = tmp_path / "blob"
    upload.write_bytes(b"MZ")
    name = "![x](http://example.invalid/t.png) <b>.exe"
    with MemoryStore(tmp_path / "memory") as store:
        await add_uploads(store, [(name, upload)], tmp_path, "ana")

    said = page.messages()
    assert said and all("](" not in m.replace("\\[x](", "") for m in said)
    assert all("\\[x](" in m and "\\<b>" in m for m in said)
