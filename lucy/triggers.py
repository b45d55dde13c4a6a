"""Signed webhook triggers: the secret of a trigger and the signature a POST to it carries.

A trigger's secret is never stored: it is derived from ``LUCY_ENCRYPTION_KEYS`` (HKDF, purpose
``lucy webhook triggers v1``) and the trigger id, so the database holds nothing that could sign
a request. A request is signed as ``X-Lucy-Signature: v1=<hex HMAC-SHA256(secret,
"<X-Lucy-Timestamp>." + body)>`` with ``X-Lucy-Timestamp`` in Unix seconds, at most 5 minutes
off. After a key rotation, secrets derived from the older keys still verify until those keys are
removed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from lucy.crypto import KeyRing

PURPOSE = b"lucy webhook triggers v1"
TOLERANCE_S = 300
TRIGGER_ID = re.compile(r"^wh_[0-9a-f]{24}$")


def new_trigger_id() -> str:
    return "wh_" + secrets.token_hex(12)


def trigger_secrets(encryption_keys: str, trigger_id: str) -> list[str]:
    """The trigger's secret under each key (the primary key's first)."""
    return [
        "whk_" + hmac.new(k, trigger_id.encode(), hashlib.sha256).hexdigest()
        for k in KeyRing.parse(encryption_keys).derive(PURPOSE)
    ]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    encryption_keys: str, trigger_id: str, *, timestamp: str, signature: str, body: bytes, now: float
) -> str | None:
    """None when the request is signed for this trigger and fresh; otherwise why not (no secrets)."""
    if not TRIGGER_ID.match(trigger_id):
        return "unknown trigger"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 12):
        return "missing or malformed X-Lucy-Timestamp"
    if abs(now - int(timestamp)) > TOLERANCE_S:
        return "stale timestamp"
    if not any(
        hmac.compare_digest(sign(s, timestamp, body), signature)
        for s in trigger_secrets(encryption_keys, trigger_id)
    ):
        return "bad signature"
    return None
