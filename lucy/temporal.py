"""Temporal client factory: address, namespace, API key and TLS from settings."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import TLSConfig

from lucy.settings import TemporalSettings


def _tls(settings: TemporalSettings) -> TLSConfig | bool:
    if not settings.uses_tls:
        return False
    paths = (
        settings.temporal_tls_client_cert_path,
        settings.temporal_tls_client_key_path,
        settings.temporal_tls_server_ca_cert_path,
    )
    if not any(paths):
        return True  # TLS with the system roots (Temporal Cloud with an API key)
    cert, key, ca = (p.read_bytes() if p else None for p in paths)
    return TLSConfig(client_cert=cert, client_private_key=key, server_root_ca_cert=ca)


async def connect(settings: TemporalSettings) -> Client:
    """Connect to the configured Temporal frontend."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=_tls(settings),
    )
