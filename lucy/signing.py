"""Signed claims from the ingress: an approval decision or a cancel, and who made it.

A click reaches a task as a Temporal update. Anyone who can reach Temporal could send that
update too, so the update carries proof that it came through Lucy's ingress, which verified
Slack's signature (or Slack's WebSocket) and read the clicker's id from Slack's payload: an
HMAC-SHA256 over every field the decision depends on, under a key that only the ingress and
the worker hold. The worker checks the proof and its age in an activity before the workflow
counts the click, and reads the clicker's role from Slack itself: the claim says *who*
clicked, never what they may do.

The key is derived (HKDF) from ``LUCY_ENCRYPTION_KEYS``, every key of the ring, so a rotation
keeps decisions signed with the previous primary valid. Without keys a fixed, public
development key is used in development and tests only; elsewhere there is no signer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lucy.crypto import CryptoError, KeyRing

if TYPE_CHECKING:
    from lucy.settings import Settings

PURPOSE = b"lucy signed claims v1"
DEVELOPMENT_KEY = hashlib.sha256(b"lucy development signing key (not for production)").digest()
MAX_AGE = timedelta(minutes=5)
MAX_SKEW = timedelta(seconds=30)  # a claim from slightly in the future (clock skew) still counts


@dataclass(frozen=True)
class Claim:
    """What the ingress asserts: ``kind`` (``decision`` or ``cancel``) of ``workflow_id`` by
    ``slack_user_id`` of ``slack_team_id``; ``subject`` is the approval id (decisions),
    ``verdict`` the decision (``approved``/``rejected``) or ``cancel``."""

    kind: str
    workflow_id: str
    subject: str
    verdict: str
    slack_user_id: str
    slack_team_id: str
    issued_at: str  # ISO 8601, the ingress's clock

    def message(self) -> bytes:
        fields = (
            "v1",
            self.kind,
            self.workflow_id,
            self.subject,
            self.verdict,
            self.slack_user_id,
            self.slack_team_id,
            self.issued_at,
        )
        if any("\n" in f for f in fields):
            raise ValueError("a signed claim field may not contain a newline")
        return "\n".join(fields).encode()


class ClaimSigner:
    """Signs (ingress) and verifies (worker) claims."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise CryptoError("no signing key")
        self._keys = keys

    @classmethod
    def from_encryption_keys(cls, raw: str | None, *, development: bool = False) -> ClaimSigner:
        """From ``LUCY_ENCRYPTION_KEYS``. ``None`` or empty: the public development key when
        ``development``, otherwise ``CryptoError`` (anyone could forge clicks with it)."""
        if not raw or not raw.strip():
            if not development:
                raise CryptoError(
                    "LUCY_ENCRYPTION_KEYS is not set: clicks are signed with it outside development "
                    "(generate a key with `lucy db new-key`)"
                )
            return cls([DEVELOPMENT_KEY])
        return cls(KeyRing.parse(raw).derive(PURPOSE))

    def sign(self, claim: Claim) -> str:
        return hmac.new(self._keys[0], claim.message(), hashlib.sha256).hexdigest()

    def verify(self, claim: Claim, signature: str, *, now: datetime) -> str | None:
        """None when ``signature`` is valid for ``claim`` and the claim is fresh; otherwise a
        short reason (for logs and the person who clicked; never key material)."""
        try:
            message = claim.message()
        except ValueError:
            return "malformed claim"
        if not any(
            hmac.compare_digest(hmac.new(k, message, hashlib.sha256).hexdigest(), signature or "")
            for k in self._keys
        ):
            return "the click's signature is not valid"
        try:
            issued = datetime.fromisoformat(claim.issued_at)
        except ValueError:
            return "malformed claim time"
        if issued.tzinfo is None:
            issued = issued.replace(tzinfo=UTC)
        if issued > now + MAX_SKEW or now - issued > MAX_AGE:
            return "the click is too old; click again"
        return None


def claim_signer(settings: Settings) -> ClaimSigner:
    """The signer of the ingress and the worker (keys derived from LUCY_ENCRYPTION_KEYS)."""
    keys = settings.security.encryption_keys
    return ClaimSigner.from_encryption_keys(
        keys.get_secret_value() if keys else None, development=settings.core.is_development
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
