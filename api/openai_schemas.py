"""The records of the OpenAI-compatible ``/v1`` routes: OpenAI's shapes, as pydantic models,
its error body, and the ``/v1`` schema.

A request keeps the fields a debate can use and ignores the rest (clients send sampling
fields, ``user``, ``seed``... that mean nothing to a team); the fields it keeps are checked.
A field that asks for something a debate cannot give (several choices, client tools, a JSON
answer) is refused with one line, not ignored: the client would trust a reply it did not get.
Roundtable's own options ride in the same body as extra fields: ``max_turns`` and ``budget``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from roundtable.conversations import MAX_TURNS_LIMIT

MAX_MESSAGES = 500
MAX_ANSWER_TOKENS = 100_000
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
ERROR_CODES = {401: "invalid_api_key", 413: "request_too_large", 429: "rate_limit_exceeded"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    """One part of a message's content; only ``text`` parts carry anything a team reads."""

    type: str = Field(max_length=40)
    text: str | None = None


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's words: its text, or its text parts joined."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(part.text for part in parts if part.type == "text" and part.text)


class StreamOptions(_Lenient):
    include_usage: bool = False


class BudgetRequest(BaseModel):
    """Limits for this run, within the server's own (a larger value is the server's)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(default=None, ge=100)
    """Prompt and completion tokens of the whole run, the manager's included."""
    wall_clock_s: float | None = Field(default=None, gt=0)


class ChatRequest(_Lenient):
    """``POST /v1/chat/completions``: the last user message is the question."""

    model: str = Field(min_length=1, max_length=100)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_ANSWER_TOKENS)
    """Caps the answer (the debate's turns are not counted)."""
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_ANSWER_TOKENS)
    """OpenAI's newer name for ``max_tokens``; it wins when both are given."""
    max_turns: int | None = Field(default=None, ge=1, le=MAX_TURNS_LIMIT)
    """Roundtable's: agent turns at most."""
    budget: BudgetRequest | None = None
    """Roundtable's: the run's token and time limits."""
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("n")
    @classmethod
    def _one_answer(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise PydanticCustomError("one_answer", "a team gives one answer: n must be 1")
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _no_client_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise PydanticCustomError("no_tools", "a team calls no client tools: send none")
        return value

    @field_validator("response_format")
    @classmethod
    def _text_answer(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") != "text":
            raise PydanticCustomError(
                "text_only", 'a team answers in text: only {"type": "text"} is taken'
            )
        return value

    @property
    def answer_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "roundtable"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Usage(BaseModel):
    """The whole run's tokens: every role's calls and the manager's."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class RunInfo(BaseModel):
    """Roundtable's own part of a reply: which run answered and how it ended."""

    transcript_id: str
    stop_code: str | None = None
    stop_reason: str | None = None


class AnswerMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str
    """The debate's turns, as reasoning models served by vLLM and DeepSeek give theirs."""


FinishReason = Literal["stop", "length"]


class Choice(BaseModel):
    index: int = 0
    message: AnswerMessage
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    roundtable: RunInfo


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    roundtable: RunInfo | None = None


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "code"}}``."""

    error: ErrorBody


def openai_error(status: int, message: str, code: str | None = None) -> JSONResponse:
    """``{"error": {"message", "type", "code"}}`` with ``status``."""
    body = ErrorBody(
        message=message,
        type=ERROR_TYPES.get(status, "server_error"),
        code=code or ERROR_CODES.get(status),
    )
    return JSONResponse(ErrorResponse(error=body).model_dump(), status_code=status)


def openapi_of(app: FastAPI, models: list[str]) -> dict[str, Any]:
    """FastAPI's schema of ``/v1``, with the bearer token declared, the model ids this server
    offers listed, and the refusals every route may give (no token, a body too large)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
        }
        schema["security"] = [{"bearer": []}]
        components["schemas"]["ChatRequest"]["properties"]["model"]["enum"] = models
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses["401"] = {"description": "No valid bearer token", "content": error}
                responses["413"] = {"description": "The body is too large", "content": error}
                if "requestBody" in operation:
                    responses["400"] = {"description": "The body is invalid", "content": error}
                    responses.pop("422", None)
        app.openapi_schema = schema
    return app.openapi_schema


__all__ = [
    "AnswerMessage",
    "ChatChunk",
    "ChatCompletion",
    "ChatMessage",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "Delta",
    "ErrorBody",
    "ErrorResponse",
    "FinishReason",
    "ModelCard",
    "ModelList",
    "RunInfo",
    "Usage",
    "openai_error",
    "openapi_of",
]
