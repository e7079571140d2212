"""Deterministic offline text embeddings: a signed, hashed bag of lower-case word tokens.

Texts sharing words get a high cosine similarity; no model, no network. Common English stop
words are dropped and a plural `s` is stripped so "refunds" and "refund" match.
"""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 256
TOKEN = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by can could do does for from have how i if in is it its me "
    "my of on or please so that the this to was we what when where which who why will with "
    "would you your".split())


def tokens(text: str) -> list[str]:
    out = []
    for token in TOKEN.findall(text.lower()):
        if token in STOP_WORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        out.append(token)
    return out


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """An L2-normalised vector (all zeros for a text without words)."""
    vector = [0.0] * dimensions
    for token in tokens(text):
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
