"""Deterministic embeddings for the fake ``POST /api/v1/embeddings`` (OpenAI's wire format) and
the recall benchmark: each word's character trigrams (``#deploy#`` → ``#de``, ``dep``, …)
hashed into a fixed number of signed dimensions, L2-normalised. Texts that share word pieces
(plurals, tenses, typos) land close together; this is a stand-in for a real model, not one."""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")


def vector(text: str, dims: int = DIMENSIONS) -> list[float]:
    values = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
            index = int.from_bytes(digest[:3], "big") % dims
            values[index] += 1.0 if digest[3] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
