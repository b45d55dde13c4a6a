"""Embeddings from an OpenAI-compatible ``POST {base}/embeddings`` (``LUCY_MEMORY_EMBEDDINGS_*``).

Retrieval is hybrid only when this is configured; any failure (unreachable, an error status, a
malformed body) gives None, and retrieval falls back to full-text search: a memory is never
lost or refused because the embeddings service is away."""

from __future__ import annotations

from typing import Any

import httpx

from lucy.logging import get_logger
from lucy.settings import LlmSettings

log = get_logger(__name__)

EMBEDDINGS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_INPUT_CHARS = 8000


def _vectors(body: Any, expected: int) -> list[list[float]] | None:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != expected:
        return None
    ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
    vectors = [d.get("embedding") if isinstance(d, dict) else None for d in ordered]
    if not all(isinstance(v, list) and v and all(isinstance(x, int | float) for x in v) for v in vectors):
        return None
    return [[float(x) for x in v] for v in vectors if isinstance(v, list)]


async def embed(http: httpx.AsyncClient, settings: LlmSettings, texts: list[str]) -> list[list[float]] | None:
    """One vector per text, or None when embeddings are not configured or not answering."""
    if not settings.memory_embeddings_base_url or not texts:
        return None
    headers = {"Content-Type": "application/json"}
    if settings.memory_embeddings_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.memory_embeddings_api_key.get_secret_value()}"
    url = settings.memory_embeddings_base_url.rstrip("/") + "/embeddings"
    payload = {"model": settings.memory_embeddings_model, "input": [t[:MAX_INPUT_CHARS] for t in texts]}
    try:
        response = await http.post(url, json=payload, headers=headers, timeout=EMBEDDINGS_TIMEOUT)
    except httpx.HTTPError as exc:
        log.warning("embeddings unreachable: full-text only", error=exc.__class__.__name__)
        return None
    if response.status_code != 200:
        log.warning("embeddings refused: full-text only", status=response.status_code)
        return None
    try:
        return _vectors(response.json(), len(texts))
    except ValueError:
        return None
