"""What an OpenAI-compatible endpoint's failures mean: one clear line in the right family.

An SDK error, an HTTP status with the server's error body, or a failed start-up check becomes a
``ConfigError`` (a refused key, an unknown model or URL), a ``ModelError`` (a prompt over the
context) or an ``EndpointFault`` (retryable or not). The server's words are scrubbed of our
secrets before they are cut to one line, and an HTTP error is never chained to the SDK's
exception, whose message holds the whole body.

Owns the mapping and the start-up reachability check; sending requests is ``openai_client``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import openai

from roundtable.agents.endpoints import EndpointSettings
from roundtable.agents.resilience import EndpointFault, parse_retry_after, retryable_status
from roundtable.agents.structured_output import Form, FormatRefused, GrammarRefused, refused
from roundtable.common.errors import ConfigError, InfraError, ModelError, RoundtableError
from roundtable.common.secrets import scrub

OPENAI_BASE_URL = "https://api.openai.com/v1"
NO_API_KEY = "not-needed"
"""Sent when no key is configured: local servers ignore it, the SDK refuses an empty one."""
PREFLIGHT_TIMEOUT_S = 3.0

_CONTEXT_EXCEEDED = re.compile(
    r"context[ _](length|size|window)|maximum context|too many tokens|prompt is too long", re.I
)


class EndpointStatusError(EndpointFault):
    """The endpoint answered with an HTTP error status (5xx, 429, ...): a fault, maybe passing.

    ``status`` and ``retry_after`` (seconds, from ``Retry-After``) are for retries; the status
    decides ``retryable`` (408, 409, 429, 5xx).
    """

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(
            message, retryable=retryable_status(status), status=status, retry_after=retry_after
        )


def sdk_failure(
    exc: openai.OpenAIError,
    *,
    where: str,
    endpoint: EndpointSettings,
    secrets: Sequence[str],
    started: bool,
    answered: bool = False,
) -> RoundtableError:
    """One clear line in the right family for an SDK error; a fault is retryable only
    while nothing of the reply has been streamed (``started``). ``answered``: the server
    had begun its answer (status and headers)."""
    if isinstance(exc, openai.APITimeoutError):
        return EndpointFault(
            f"{where}: no answer within {endpoint.timeout_s:g} s", retryable=not started
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = one_line(scrub(str(exc.__cause__ or exc), secrets))
        cause = cause or type(exc.__cause__).__name__
        if started:
            return EndpointFault(f"{where}: connection lost mid-reply ({cause})", retryable=False)
        if answered:
            return EndpointFault(
                f"{where}: connection lost before the reply ({cause})", retryable=True
            )
        return EndpointFault(f"{where}: cannot connect ({cause})", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        return status_failure(
            where,
            exc.status_code,
            exc.body,
            exc.response,
            model=endpoint.model,
            secrets=secrets,
        )
    message = one_line(scrub(str(getattr(exc, "message", None) or exc), secrets))
    if _CONTEXT_EXCEEDED.search(message):
        return ModelError(f"{where}: the prompt is longer than the model's context ({message})")
    return EndpointFault(f"{where}: the server failed mid-reply ({message})", retryable=not started)


async def check_reachable(
    settings: EndpointSettings, name: str, *, timeout_s: float = PREFLIGHT_TIMEOUT_S
) -> None:
    """Fail in seconds, at start-up, if the endpoint cannot serve us: GET ``{base_url}/models``.

    Raises the same errors a call would: ``InfraError`` when nothing answers, ``ConfigError``
    for a refused key or a URL with no OpenAI-compatible API behind it.
    """
    url = settings.base_url or OPENAI_BASE_URL
    where = f"endpoint {name!r} at {url}"
    headers = {"Authorization": f"Bearer {settings.key() or NO_API_KEY}"}
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.get(f"{url.rstrip('/')}/models", headers=headers)
    except httpx.TimeoutException as exc:
        raise InfraError(f"{where}: no answer within {timeout_s:g} s") from exc
    except httpx.TransportError as exc:
        cause = one_line(str(exc)) or type(exc).__name__
        raise InfraError(f"{where}: cannot connect ({cause})") from exc
    if response.status_code == 404:
        raise ConfigError(
            f"{where}: no OpenAI-compatible API here (GET /models: HTTP 404); check base_url"
        )
    if response.status_code >= 400:
        try:
            body: object = response.json()
        except ValueError:
            body = None
        secrets = [key] if (key := settings.key()) else []
        raise status_failure(
            where, response.status_code, body, response, model=settings.model, secrets=secrets
        )


def cause(exc: openai.OpenAIError) -> openai.OpenAIError | None:
    """What our error is raised from: ``exc``, except an HTTP error, whose SDK message holds
    the server's whole body (which may echo our key): a traceback must not print it."""
    return None if isinstance(exc, openai.APIStatusError) else exc


def refusal_of(
    failure: RoundtableError, args: Mapping[str, Any]
) -> FormatRefused | GrammarRefused | None:
    """The server refusing the ``response_format`` or ``grammar`` a request carried (so the
    client asks again in another form), or None when ``failure`` is something else."""
    if not isinstance(failure, EndpointStatusError) or not refused(
        failure.status or 0, str(failure)
    ):
        return None
    sent = args.get("response_format")
    if isinstance(sent, dict):
        form: Form = "json_object" if sent.get("type") == "json_object" else "json_schema"
        return FormatRefused(str(failure), form=form, status=failure.status or 0)
    if "grammar" in args.get("extra_body", {}):
        return GrammarRefused(str(failure), status=failure.status or 0)
    return None


def status_failure(
    where: str,
    status: int,
    body: object,
    response: Any,
    *,
    model: str,
    secrets: Sequence[str] = (),
) -> RoundtableError:
    """The family of an HTTP error status, from the status and the server's error body (with
    ``secrets`` scrubbed out: a server may echo the key it was sent)."""
    message, code = server_error(body, response, secrets)
    detail = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in (401, 403):
        return ConfigError(f"{where}: the API key was refused ({detail}); check api_key_env")
    if status == 404:
        return ConfigError(f"{where}: model {model!r} not found ({detail}); check model, base_url")
    if status in (400, 413, 422) and _CONTEXT_EXCEEDED.search(f"{code} {message}"):
        return ModelError(f"{where}: the prompt is longer than the model's context ({detail})")
    retry_after = parse_retry_after(response.headers)
    return EndpointStatusError(f"{where}: {detail}", status=status, retry_after=retry_after)


def server_error(body: object, response: Any, secrets: Sequence[str]) -> tuple[str, str]:
    """The error message (one short line, secrets scrubbed before it is cut) and code the
    server sent, as far as it said."""
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict):
        message, code = inner.get("message") or inner.get("detail"), inner.get("code")
        return one_line(scrub(str(message or ""), secrets)), scrub(str(code or ""), secrets)
    if isinstance(inner, str):
        return one_line(scrub(inner, secrets)), ""
    try:
        return one_line(scrub(response.text, secrets)), ""
    except Exception:  # a streamed response whose body was never read
        return "", ""


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
