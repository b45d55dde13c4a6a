"""Encrypted Temporal payloads (opt-in: ``LUCY_TEMPORAL_ENCRYPT_PAYLOADS=true``).

Workflow and activity inputs and results hold request texts, tool outputs and model answers.
With encryption on, every payload is sealed with AES-256-GCM under the first key of
``LUCY_ENCRYPTION_KEYS`` before it leaves the process, so the Temporal server (and its
database, and anyone with read access to the namespace) only sees ciphertext. Payloads that
are not encrypted pass through untouched: runs started before encryption was turned on keep
working, and so do their histories.

The Temporal UI shows the ciphertext unless it is pointed at a codec server; the ingress
serves one at ``/codec`` (see ``app.ingress.app``), and ``lucy dev`` wires its UI to it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import temporalio.converter
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload

from lucy.crypto import KeyRing

if TYPE_CHECKING:
    from lucy.settings import Settings

ENCODING = b"binary/encrypted"
_KEY_ID = "encryption-key-id"
_AAD = b"lucy-temporal-payload-v1"


class UnencryptedPayload(ValueError):
    """A payload that should have been encrypted was not (strict mode, production)."""


class EncryptionCodec(temporalio.converter.PayloadCodec):
    """AES-256-GCM over each whole payload. ``strict``: a payload that is not encrypted is
    refused instead of passed through (production: someone who can reach Temporal cannot slip
    a plaintext input or update into a task)."""

    def __init__(self, keyring: KeyRing, *, strict: bool = False) -> None:
        self._keyring = keyring
        self._strict = strict

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            key_id, blob = self._keyring.encrypt_bytes(p.SerializeToString(), aad=_AAD)
            out.append(Payload(metadata={"encoding": ENCODING, _KEY_ID: key_id.encode()}, data=blob))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                if self._strict:
                    raise UnencryptedPayload(
                        "refusing an unencrypted payload (payload encryption is required)"
                    )
                out.append(p)  # written before encryption was turned on
                continue
            key_id = p.metadata.get(_KEY_ID, b"").decode()
            opened = self._keyring.decrypt_bytes(key_id, p.data, aad=_AAD, what="payload")
            try:
                out.append(Payload.FromString(opened))
            except DecodeError:
                raise ValueError("a sealed payload holds no Temporal payload") from None
        return out


def payload_keyring(settings: Settings) -> KeyRing | None:
    """The key ring that seals payloads, or None when payload encryption is off. Raises
    ``CryptoError`` (naming the variable, never a key) when it is on without usable keys."""
    if not settings.temporal.temporal_encrypt_payloads:
        return None
    keys = settings.security.encryption_keys
    return KeyRing.parse(keys.get_secret_value() if keys else None)


def data_converter(keyring: KeyRing | None, *, strict: bool = False) -> temporalio.converter.DataConverter:
    """Temporal's default converter, with the encryption codec when a key ring is given. Then
    failure messages and stack traces are encoded too (moved into an encrypted payload), so an
    error text never sits readable in the history. ``strict`` refuses unencrypted payloads."""
    default = temporalio.converter.DataConverter.default
    if keyring is None:
        return default
    return dataclasses.replace(
        default,
        payload_codec=EncryptionCodec(keyring, strict=strict),
        failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
    )


# The codec-server wire format (what the Temporal UI and CLI send to a codec endpoint):
# {"payloads": [{"metadata": {"encoding": "<base64>"...}, "data": "<base64>"}]}
CODEC_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                    },
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
}


def payloads_from_json(body: Any) -> list[Payload]:
    """Payloads from a codec-server request body (parsed JSON).

    Raises:
        ValueError: the body is not of the protocol's shape, or a value is not strict base64.
    """
    if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
        raise ValueError('the body must be {"payloads": [...]}')
    payloads = []
    for index, item in enumerate(body["payloads"]):
        metadata, data = (
            (item.get("metadata") or {}, item.get("data") or "") if isinstance(item, dict) else (0, 0)
        )
        if not isinstance(metadata, dict) or not isinstance(data, str):
            raise ValueError(f'payloads[{index}] must be {{"metadata": {{name: base64}}, "data": base64}}')
        if not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError(f"payloads[{index}].metadata values must be base64 strings")
        payloads.append(
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in metadata.items()},
                data=base64.b64decode(data, validate=True),
            )
        )
    return payloads


def payloads_to_json(payloads: Sequence[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }
