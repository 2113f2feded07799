"""Structured output on any OpenAI-compatible server: which form an endpoint accepts.

Servers differ in what ``response_format`` they take: OpenAI, vLLM, Ollama and llama.cpp's
own server take ``{"type": "json_schema", ...}``; llama-cpp-python's server takes only
``{"type": "json_object", "schema": {...}}`` and answers HTTP 500 to the other (measured here);
some servers take neither. Each endpoint has a setting (``EndpointSettings.structured_output``):
one form, or ``auto``, which tries the forms in ``ORDER`` and remembers, per endpoint and model
for the life of the process, the first one the server does not refuse. The last form,
``prompt``, sends no ``response_format`` at all: the schema goes into the prompt and the caller
parses and checks the reply, as it does for every form (a model may ignore any of them).

A refusal is recognised from the status and the server's own words (``refused``), and is never
retried as the same request: a 500 that names ``response_format`` is not a passing fault.

The same holds for a reply grammar (the verdict-giver's ``ACCEPT: ...`` / ``REVISE: ...``):
llama.cpp's servers take a GBNF ``grammar`` field; a server that refuses it is remembered and
asked without it (the instructions ask for the format in words, and the reply is checked).

Owns the forms, the request arguments for each, the refusal test and the per-endpoint memory.
Does not own sending requests (``openai_client``) or checking replies (the callers).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Literal

from autogen_core.models import LLMMessage, UserMessage
from openai.lib._parsing import type_to_response_format_param
from pydantic import BaseModel

from roundtable.agents.resilience import EndpointFault

Form = Literal["json_schema", "json_object", "prompt"]
Setting = Literal["auto", "json_schema", "json_object", "prompt"]
ORDER: tuple[Form, ...] = ("json_schema", "json_object", "prompt")
"""The forms ``auto`` tries, strictest first."""

LOGGER = logging.getLogger("roundtable.model")

_REFUSAL_STATUSES = frozenset({400, 415, 422, 500, 501})
_NAMES_THE_FORMAT = re.compile(
    r"response_format|json_schema|json_object|structured output|grammar|'text'", re.IGNORECASE
)


class FormatRefused(EndpointFault):
    """The server refused the ``response_format`` it was sent (never retried as it was)."""

    def __init__(self, message: str, *, form: Form, status: int) -> None:
        super().__init__(message, retryable=False, status=status)
        self.form = form


class GrammarRefused(EndpointFault):
    """The server refused the ``grammar`` field (llama.cpp's servers take it; others may not)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=False, status=status)


def refused(status: int, message: str) -> bool:
    """Whether an HTTP error is the server refusing the structured-output form it was sent."""
    return status in _REFUSAL_STATUSES and _NAMES_THE_FORMAT.search(message) is not None


def request_args(form: Form, schema: type[BaseModel]) -> dict[str, Any]:
    """The extra request fields that ask for ``schema`` in ``form`` (none for ``prompt``)."""
    if form == "json_schema":
        return {"response_format": type_to_response_format_param(schema)}
    if form == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema.model_json_schema()}}
    return {}


def with_instruction(messages: list[LLMMessage], schema: type[BaseModel]) -> list[LLMMessage]:
    """The ``prompt`` form: the schema is asked for in words, at the end of the last turn."""
    compact = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    ask = f"Answer with one JSON object only, no other text, matching this JSON schema: {compact}"
    last = messages[-1] if messages else None
    if isinstance(last, UserMessage) and isinstance(last.content, str):
        return [*messages[:-1], last.model_copy(update={"content": f"{last.content}\n\n{ask}"})]
    return [*messages, UserMessage(content=ask, source="user")]


class Negotiation:
    """Which form each endpoint takes, learnt from refusals; shared by every client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], Form] = {}
        self._no_grammar: set[tuple[str, str]] = set()

    def form_for(self, endpoint: tuple[str, str], setting: Setting) -> Form:
        """The form to send now: the setting's, or for ``auto`` the best not yet refused."""
        if setting != "auto":
            return setting
        with self._lock:
            return self._known.get(endpoint, ORDER[0])

    def refuse(self, endpoint: tuple[str, str], form: Form, why: str) -> Form | None:
        """``form`` was refused: remember and return the next form to try (None: none left)."""
        following = ORDER[ORDER.index(form) + 1 :]
        with self._lock:
            current = self._known.get(endpoint, ORDER[0])
            if ORDER.index(current) <= ORDER.index(form) and following:
                self._known[endpoint] = following[0]
            chosen = self._known.get(endpoint) if following else None
        LOGGER.warning(
            "structured_output_refused",
            extra={"endpoint": endpoint[0], "form": form, "next": chosen, "error": why[:300]},
        )
        return chosen

    def takes_grammar(self, endpoint: tuple[str, str]) -> bool:
        """Whether to send a reply grammar: until the server has refused one."""
        with self._lock:
            return endpoint not in self._no_grammar

    def refuse_grammar(self, endpoint: tuple[str, str], why: str) -> None:
        with self._lock:
            self._no_grammar.add(endpoint)
        LOGGER.warning("grammar_refused", extra={"endpoint": endpoint[0], "error": why[:300]})

    def forget(self) -> None:
        """Start over (tests)."""
        with self._lock:
            self._known.clear()
            self._no_grammar.clear()


NEGOTIATION = Negotiation()
"""The process's memory of what each endpoint accepts."""
