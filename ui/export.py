"""The transcript export the browser offers (Markdown, JSON, HTML): it lives in ``transcripts``,
where the MCP server reads it too; these names stay for the UI."""

from roundtable.transcripts import Transcript, escape_md, file_name, to_html, to_json, to_markdown

__all__ = ["download", "escape_md", "file_name", "to_html", "to_json", "to_markdown"]

_MIME = {"md": "text/markdown", "json": "application/json", "html": "text/html"}


def download(transcript: Transcript, fmt: str) -> tuple[str, bytes, str]:
    """The file the browser downloads: (name, bytes, MIME type); ``fmt`` is md, json or html
    (anything else: json)."""
    fmt = fmt if fmt in _MIME else "json"
    make = {"md": to_markdown, "json": to_json, "html": to_html}[fmt]
    return file_name(transcript, fmt), make(transcript).encode("utf-8"), _MIME[fmt]
