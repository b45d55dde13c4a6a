"""The exact arguments of an approval, kept in its record encrypted with the store's credential
encryption (``LUCY_ENCRYPTION_KEYS``, :class:`lucy.crypto.KeyRing`), next to their SHA-256.

The channel and the record's readable ``arguments`` show secrets masked; what will actually run
is kept here, sealed: AES-256-GCM bound to the workspace and the approval (associated data), so
a sealed value cannot be moved to another record. Without keys (local development without
``LUCY_ENCRYPTION_KEYS``) only the digest is kept.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from capabilities.task.views.blocks import canonical_arguments
from lucy.crypto import KeyRing
from lucy.settings import Settings


def arguments_keyring(settings: Settings) -> KeyRing | None:
    """The key ring that seals approvals' exact arguments, or None without keys."""
    keys = settings.security.encryption_keys
    if keys is None or not keys.get_secret_value().strip():
        return None
    return KeyRing.parse(keys.get_secret_value())


def _aad(workspace_id: uuid.UUID, approval_id: str) -> bytes:
    return f"approval-arguments:{workspace_id}:{approval_id}".encode()


def seal_arguments(
    keyring: KeyRing, *, workspace_id: uuid.UUID, approval_id: str, arguments: dict[str, Any]
) -> dict[str, str]:
    """``{"key_id", "ciphertext"}`` of the canonical JSON the digest is computed over."""
    key_id, blob = keyring.encrypt(canonical_arguments(arguments), aad=_aad(workspace_id, approval_id))
    return {"key_id": key_id, "ciphertext": base64.b64encode(blob).decode()}


def sealed_arguments(
    keyring: KeyRing | None, workspace_id: uuid.UUID, approval_id: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The record's ``arguments_exact`` entry, or nothing without keys."""
    if keyring is None:
        return {}
    sealed = seal_arguments(keyring, workspace_id=workspace_id, approval_id=approval_id, arguments=arguments)
    return {"arguments_exact": sealed}


def open_arguments(
    keyring: KeyRing, *, workspace_id: uuid.UUID, approval_id: str, sealed: dict[str, str]
) -> str:
    """The canonical JSON of the exact arguments (raises ``CryptoError`` on a wrong key or
    altered data)."""
    blob = base64.b64decode(sealed["ciphertext"])
    return keyring.decrypt_bytes(
        sealed["key_id"], blob, aad=_aad(workspace_id, approval_id), what="approval arguments"
    ).decode()
