"""Encryption of integration credentials at rest: AES-256-GCM with identified keys.

``LUCY_ENCRYPTION_KEYS`` holds ``key_id:base64key`` pairs separated by commas; the first is
the primary (it encrypts), the others still decrypt, so a rotation is: put a new key first,
run ``lucy db rotate-keys``, then remove the old key. Each ciphertext is bound to its row
(workspace, integration, credential type) as associated data, so it cannot be moved to
another row. Plaintexts never appear in exceptions, logs or reprs.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class CryptoError(Exception):
    """A key is missing, malformed or wrong; the message never contains key material."""


@dataclass(frozen=True)
class _Key:
    key_id: str
    aead: AESGCM
    material: bytes = field(default=b"", repr=False)

    def __repr__(self) -> str:
        return f"_Key({self.key_id!r})"


class KeyRing:
    """The configured keys; the first one encrypts."""

    def __init__(self, keys: list[_Key]) -> None:
        if not keys:
            raise CryptoError("LUCY_ENCRYPTION_KEYS is empty: generate a key with `lucy db new-key`")
        self._keys = {k.key_id: k for k in keys}
        self.primary_id = keys[0].key_id

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary_id!r}, keys={list(self._keys)})"

    @classmethod
    def parse(cls, raw: str | None) -> KeyRing:
        """Parse ``key_id:base64key[,key_id:base64key...]``."""
        if not raw or not raw.strip():
            raise CryptoError("LUCY_ENCRYPTION_KEYS is not set: generate a key with `lucy db new-key`")
        keys = []
        for i, part in enumerate(p.strip() for p in raw.split(",") if p.strip()):
            key_id, sep, encoded = part.partition(":")
            if not sep or not key_id:
                raise CryptoError(f"LUCY_ENCRYPTION_KEYS: entry {i + 1} is not key_id:base64key")
            try:
                material = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                raise CryptoError(f"LUCY_ENCRYPTION_KEYS: key {key_id!r} is not base64") from None
            if len(material) != 32:
                raise CryptoError(
                    f"LUCY_ENCRYPTION_KEYS: key {key_id!r} must be 32 bytes, got {len(material)}"
                )
            keys.append(_Key(key_id, AESGCM(material), material))
        if len({k.key_id for k in keys}) != len(keys):
            raise CryptoError("LUCY_ENCRYPTION_KEYS: duplicate key ids")
        return cls(keys)

    @staticmethod
    def new_key(key_id: str | None = None) -> str:
        """A fresh ``key_id:base64key`` entry."""
        kid = key_id or f"k{secrets.token_hex(3)}"
        return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"

    def derive(self, purpose: bytes) -> list[bytes]:
        """One 32-byte subkey per key for ``purpose`` (HKDF-SHA256), the primary's first: a key
        ring used for something other than encryption (signing) never reuses the AES keys."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        ordered = [
            self._keys[self.primary_id],
            *(k for k in self._keys.values() if k.key_id != self.primary_id),
        ]
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lucy", info=purpose).derive(k.material)
            for k in ordered
        ]

    def encrypt(self, plaintext: str, *, aad: bytes) -> tuple[str, bytes]:
        """Returns (key id, nonce + ciphertext)."""
        return self.encrypt_bytes(plaintext.encode(), aad=aad)

    def encrypt_bytes(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Returns (key id, nonce + ciphertext) with the primary key."""
        nonce = os.urandom(_NONCE)
        return self.primary_id, nonce + self._keys[self.primary_id].aead.encrypt(nonce, plaintext, aad)

    def decrypt_bytes(self, key_id: str, blob: bytes, *, aad: bytes, what: str = "data") -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise CryptoError(f"{what} was encrypted with key {key_id!r}, which LUCY_ENCRYPTION_KEYS lacks")
        try:
            return key.aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise CryptoError(
                f"{what} does not decrypt with key {key_id!r}: wrong key or altered data"
            ) from None

    def decrypt(self, key_id: str, blob: bytes, *, aad: bytes) -> str:
        return self.decrypt_bytes(key_id, blob, aad=aad, what="credential").decode()
