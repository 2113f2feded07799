"""Webhook signatures (Standard Webhooks): bound to the delivery id and the time of sending,
so a captured delivery cannot be replayed later, altered, or moved to another delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from roundtable.api.webhooks import SIGNATURE_HEADER, signed_headers, verify

SECRET = "a-webhook-secret-0123456789"
BODY = b'{"id": "20261204-1", "status": "finished"}'


def test_a_fresh_delivery_verifies_with_the_reference_library() -> None:
    headers = signed_headers(BODY, SECRET, "d1", datetime.now(UTC))
    assert verify(BODY, SECRET, headers)
    assert Webhook(SECRET.encode()).verify(BODY, headers, json_parse=False) is None
    assert headers[SIGNATURE_HEADER].startswith("v1,")


def test_a_replayed_altered_or_moved_delivery_is_refused() -> None:
    now = datetime.now(UTC)
    old = signed_headers(BODY, SECRET, "d1", now - timedelta(minutes=6))
    assert not verify(BODY, SECRET, old)  # replayed six minutes later
    fresh = signed_headers(BODY, SECRET, "d1", now)
    assert not verify(BODY.replace(b"finished", b"failed"), SECRET, fresh)  # altered body
    assert not verify(BODY, SECRET, {**fresh, "webhook-id": "d2"})  # another delivery's id
    later = str(int(fresh["webhook-timestamp"]) + 30)
    assert not verify(BODY, SECRET, {**fresh, "webhook-timestamp": later})  # a new time
    assert not verify(BODY, "another-secret-0123456789", fresh)
    assert not verify(BODY, SECRET, {"webhook-id": "d1"})  # headers missing
