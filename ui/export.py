"""The transcript export the browser offers (Markdown and JSON): it lives in ``transcripts``,
where the MCP server reads it too; these names stay for the UI."""

from roundtable.transcripts import escape_md, file_name, to_json, to_markdown

__all__ = ["escape_md", "file_name", "to_json", "to_markdown"]
