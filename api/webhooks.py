"""Webhooks: where they may go, how they are signed, and delivery with bounded retries.

A webhook URL comes from the caller, so the server would otherwise send requests to any host
it can reach (SSRF): a target must match the operator's allow-list (``host:port``), is checked
when the run is started and again before every attempt, and redirects are never followed.
Deliveries are signed as Standard Webhooks specifies (https://www.standardwebhooks.com), with
its reference library: ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``<webhook-id>.<webhook-timestamp>.<body>`` under ``ROUNDTABLE_WEBHOOK_SECRET`` (its UTF-8
bytes). The id is the delivery's, the same across retries so a receiver can drop a repeat; the
timestamp is each attempt's, so a receiver refuses a captured delivery replayed later (the
library allows 5 minutes). A signature over the body alone, as before, verified for ever.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from standardwebhooks import Webhook, WebhookVerificationError

from roundtable.common.errors import ConfigError
from roundtable.common.secrets import error_text

log = logging.getLogger("roundtable.api.webhooks")

SIGNATURE_HEADER = "webhook-signature"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
DELIVERY_HEADER = "X-Roundtable-Delivery"
EVENT_HEADER = "X-Roundtable-Event"
RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULT_PORTS = {"http": 80, "https": 443}


class WebhookRefused(ConfigError):
    """A webhook URL the server will not call (answered 403: the caller cannot fix it by
    rephrasing; the operator decides where webhooks may go)."""


class Delivery(BaseModel):
    """What became of a run's webhook."""

    url: str
    delivery_id: str
    attempts: int = 0
    delivered: bool = False
    status: int | None = None
    """The receiver's last HTTP status (None: it was not reached)."""
    error: str | None = None


def check_target(url: str, allow: Sequence[str]) -> str:
    """``url`` if it is http(s) and its ``host:port`` is allowed; otherwise a ConfigError."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError as exc:
        raise WebhookRefused(f"webhook URL {url!r}: {exc}") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port is None:
        raise WebhookRefused(f"webhook URL {url!r}: must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise WebhookRefused(f"webhook URL {url!r}: credentials in the URL are not allowed")
    target = f"{parts.hostname.lower()}:{port}"
    if target not in allow:
        allowed = ", ".join(allow) or "nothing (ROUNDTABLE_WEBHOOK_ALLOW is empty)"
        raise WebhookRefused(
            f"webhook target {target} is not on the allow-list; allowed: {allowed}"
        )
    return url


def signed_headers(body: bytes, secret: str, delivery_id: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt to deliver ``body``."""
    stamp = at.astimezone(UTC)
    return {
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(int(stamp.timestamp())),
        SIGNATURE_HEADER: Webhook(secret.encode()).sign(delivery_id, stamp, body),
    }


def verify(body: bytes, secret: str, headers: Mapping[str, str]) -> bool:
    """Whether a delivery's headers sign ``body`` under ``secret`` within the last 5 minutes
    (what a receiver checks; used by the tests)."""
    try:
        Webhook(secret.encode()).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def new_delivery(url: str) -> Delivery:
    return Delivery(url=url, delivery_id=uuid.uuid4().hex)


async def deliver(
    delivery: Delivery,
    body: bytes,
    *,
    secret: str,
    allow: Sequence[str],
    attempts: int,
    backoff_s: float,
    timeout_s: float,
) -> Delivery:
    """POST ``body`` until a 2xx, a permanent refusal, or ``attempts`` run out.

    ``delivery`` is updated in place (the run's status shows it while retries go on).
    """
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery.delivery_id,
        EVENT_HEADER: "run.finished",
    }
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            check_target(delivery.url, allow)
            delivery.attempts = attempt
            signed = signed_headers(body, secret, delivery.delivery_id, datetime.now(UTC))
            retry = await _attempt(client, delivery, body, {**headers, **signed})
            if not retry or attempt == attempts:
                break
            wait = backoff_s * 2 ** (attempt - 1)
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
    log.info(
        "webhook_done",
        extra={"delivered": delivery.delivered, "attempts": delivery.attempts},
    )
    return delivery


async def _attempt(
    client: httpx.AsyncClient, delivery: Delivery, body: bytes, headers: dict[str, str]
) -> bool:
    """One POST; True when it is worth trying again."""
    try:
        response = await client.post(delivery.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        delivery.status, delivery.error = None, error_text(f"{type(exc).__name__}: {exc}")
        return True
    delivery.status = response.status_code
    if response.is_success:
        delivery.delivered, delivery.error = True, None
        return False
    delivery.error = f"the receiver answered {response.status_code}"
    return response.status_code in RETRYABLE
