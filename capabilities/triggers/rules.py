"""Signed webhook triggers: the secret of a trigger and the signature a POST to it carries.

A trigger's secret is never stored: it is derived from ``LUCY_ENCRYPTION_KEYS`` (HKDF, purpose
``lucy webhook triggers v1``) and the trigger id, so the database holds nothing that could sign
a request. A request is signed as ``X-Lucy-Signature: v2=<hex HMAC-SHA256(secret,
"<X-Lucy-Timestamp>\n<X-Lucy-Delivery>\n" + body)>`` with ``X-Lucy-Timestamp`` in Unix
seconds, at most 5 minutes off: the delivery id is signed, so a captured request cannot be sent
again under a new id. ``v1=<hex HMAC-SHA256(secret, "<X-Lucy-Timestamp>." + body)>`` (delivery
id not signed) is deprecated and still accepted; the ingress deduplicates it on the signature.
After a key rotation, secrets derived from the older keys still verify until those keys are
removed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from lucy.crypto import KeyRing

PURPOSE = b"lucy webhook triggers v1"
TOLERANCE_S = 300
# A v1 signature is remembered (``webhook_deliveries``, this source) to refuse its replay under
# another delivery id. Past twice the tolerance (plus margin for clocks) its timestamp no longer
# verifies, so maintenance prunes the row (``lucy_prune_v1_signatures``, migration 0017).
V1_SIGNATURE_SOURCE = "webhook_v1_signature"
V1_SIGNATURE_KEPT = timedelta(hours=1)
TRIGGER_ID = re.compile(r"^wh_[0-9a-f]{24}$")


def new_trigger_id() -> str:
    return "wh_" + secrets.token_hex(12)


def trigger_secrets(encryption_keys: str, trigger_id: str) -> list[str]:
    """The trigger's secret under each key (the primary key's first)."""
    return [
        "whk_" + hmac.new(k, trigger_id.encode(), hashlib.sha256).hexdigest()
        for k in KeyRing.parse(encryption_keys).derive(PURPOSE)
    ]


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: str, delivery: str, body: bytes) -> str:
    """The v2 signature: the timestamp, the delivery id and the body, newline-separated (neither
    the timestamp's digits nor a printable delivery id can hold a newline)."""
    return "v2=" + _hmac(secret, f"{timestamp}\n{delivery}\n".encode() + body)


def sign_v1(secret: str, timestamp: str, body: bytes) -> str:
    """The deprecated v1 signature: the delivery id is not covered."""
    return "v1=" + _hmac(secret, timestamp.encode() + b"." + body)


def is_v1(signature: str) -> bool:
    return signature.startswith("v1=")


def _signed_as(secret: str, *, timestamp: str, delivery: str, signature: str, body: bytes) -> bool:
    expected = (
        sign_v1(secret, timestamp, body) if is_v1(signature) else sign(secret, timestamp, delivery, body)
    )
    return hmac.compare_digest(expected, signature)


def verify(
    encryption_keys: str,
    trigger_id: str,
    *,
    timestamp: str,
    delivery: str,
    signature: str,
    body: bytes,
    now: float,
) -> str | None:
    """None when the request is signed (v2, or the deprecated v1) for this trigger and fresh;
    otherwise why not (no secrets)."""
    if not TRIGGER_ID.match(trigger_id):
        return "unknown trigger"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 12):
        return "missing or malformed X-Lucy-Timestamp"
    if abs(now - int(timestamp)) > TOLERANCE_S:
        return "stale timestamp"
    if not signature.isascii() or not any(
        _signed_as(s, timestamp=timestamp, delivery=delivery, signature=signature, body=body)
        for s in trigger_secrets(encryption_keys, trigger_id)
    ):
        return "bad signature"
    return None
