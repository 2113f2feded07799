"""The transcript export the browser offers (Markdown and JSON): it lives in ``transcripts``,
where the MCP server reads it too; these names stay for the UI."""

from roundtable.transcripts import Transcript, escape_md, file_name, to_json, to_markdown

__all__ = ["download", "escape_md", "file_name", "to_json", "to_markdown"]


def download(transcript: Transcript, fmt: str) -> tuple[str, bytes, str]:
    """The file the browser downloads: (name, bytes, MIME type); ``fmt`` is md or json."""
    if fmt == "md":
        data, mime = to_markdown(transcript), "text/markdown"
    else:
        data, mime = to_json(transcript), "application/json"
    return file_name(transcript, fmt), data.encode("utf-8"), mime
