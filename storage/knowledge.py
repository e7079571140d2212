"""Knowledge learnt from staff: entries (proposed, saved, discarded, retired), their uses, and
the searches that find the entries close to a customer's question.

Similarity is scored in Python on both databases: cosine of stored embeddings (a plain scan is
enough at a support team's scale), or, without an embedding model, the database's full-text
search (SQLite FTS5, PostgreSQL `to_tsvector`/`to_tsquery`) finds the candidates and
`lexical_score` scores them on one scale with embeddings (a cosine of word sets).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Conversation,
    EmbeddingCache,
    KnowledgeEntry,
    KnowledgeUse,
    utcnow,
)
from storage.upserts import insert_new

_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by can could do does for from have how i if in is it its me "
    "my of on or please so that the this to was we what when where which who why will with "
    "would you your our us there any get".split())
_VOWELS = set("aeiou")


def stem(word: str) -> str:
    """A crude English stem, enough to match plurals and verb forms: invoices, invoice and
    invoiced, shipping and ships, arrives and arrive become one word."""
    if len(word) <= 3:
        return word
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _VOWELS | {"l", "s"}:
                word = word[:-1]
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def raw_words(value: str) -> list[str]:
    """The content words of a text, lower-cased (the databases' search stems them)."""
    return [w for w in _WORD.findall(value.lower()) if w not in STOP_WORDS]


def words(value: str) -> list[str]:
    """The content words of a text, lower-cased and crudely stemmed."""
    return [stem(w) for w in raw_words(value)]


def lexical_score(query: str, candidate: str) -> float:
    """Cosine of the two texts' word sets (0..1): on the same scale as an embedding's cosine."""
    a, b = set(words(query)), set(words(candidate))
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class Match:
    entry: KnowledgeEntry
    score: float


async def propose(session: AsyncSession, *, conversation_id: int, source_key: str,
                  question: str, answer: str) -> KnowledgeEntry | None:
    """A proposed entry; None when this resolution already proposed one (a retry, a replica)."""
    now = utcnow()
    inserted = await insert_new(session, KnowledgeEntry.__table__, [dict(
        question=question, answer=answer, status="proposed", conversation_id=conversation_id,
        source_key=source_key, created_at=now, updated_at=now)], conflict=("source_key",),
        returning="id")
    entry_id = inserted.scalar_one_or_none()
    return None if entry_id is None else await session.get(KnowledgeEntry, entry_id)


async def get_entry(session: AsyncSession, entry_id: int) -> KnowledgeEntry | None:
    return await session.get(KnowledgeEntry, entry_id)


async def change_status(session: AsyncSession, entry_id: int, *, from_statuses: tuple[str, ...],
                        to: str, by: str, by_name: str | None = None, **values: Any) -> bool:
    """Move an entry from one of `from_statuses` to `to`; False when another click, command or
    replica changed it first (exactly one wins)."""
    changes: dict[str, Any] = {"status": to, "updated_at": utcnow(), **values}
    if to == "saved":
        changes.update(saved_by=by, saved_by_name=by_name, saved_at=utcnow())
    else:
        changes["closed_by"] = by
    result = await session.execute(
        update(KnowledgeEntry)
        .where(KnowledgeEntry.id == entry_id, KnowledgeEntry.status.in_(from_statuses))
        .values(**changes).execution_options(synchronize_session=False))
    return result.rowcount == 1


async def edit(session: AsyncSession, entry_id: int, *, question: str, answer: str) -> bool:
    """New words for an entry; its embedding is cleared until recomputed."""
    result = await session.execute(
        update(KnowledgeEntry)
        .where(KnowledgeEntry.id == entry_id,
               KnowledgeEntry.status.in_(("proposed", "saved")))
        .values(question=question, answer=answer, embedding=None, embedding_model=None,
                updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def set_expiry(session: AsyncSession, entry_id: int, expires_at: datetime | None) -> bool:
    result = await session.execute(
        update(KnowledgeEntry).where(KnowledgeEntry.id == entry_id)
        .values(expires_at=expires_at, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def set_embedding(session: AsyncSession, entry_id: int, *, question: str,
                        vector: list[float], model: str) -> bool:
    """Store the embedding of `question`; nothing when the entry was edited meanwhile."""
    result = await session.execute(
        update(KnowledgeEntry)
        .where(KnowledgeEntry.id == entry_id, KnowledgeEntry.question == question)
        .values(embedding=vector, embedding_model=model)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def _usable(now: datetime) -> Any:
    return (KnowledgeEntry.status == "saved") & or_(KnowledgeEntry.expires_at.is_(None),
                                                    KnowledgeEntry.expires_at > now)


async def has_usable(session: AsyncSession, now: datetime | None = None) -> bool:
    found = await session.execute(select(KnowledgeEntry.id).where(_usable(now or utcnow()))
                                  .limit(1))
    return found.first() is not None


async def closest_by_embedding(session: AsyncSession, vector: list[float], *, model: str,
                               threshold: float, limit: int,
                               now: datetime | None = None) -> list[Match]:
    """Saved, unexpired entries embedded by `model` whose cosine reaches `threshold`, best
    first (a plain scan)."""
    rows = (await session.execute(
        select(KnowledgeEntry).where(_usable(now or utcnow()),
                                     KnowledgeEntry.embedding_model == model))).scalars()
    matches = [Match(e, cosine(vector, e.embedding or [])) for e in rows]
    return sorted((m for m in matches if m.score >= threshold),
                  key=lambda m: (-m.score, m.entry.id))[:limit]


async def closest_by_words(session: AsyncSession, query: str, *, threshold: float, limit: int,
                           now: datetime | None = None, candidates: int = 20) -> list[Match]:
    """Full-text search for candidates (any content word of the query), scored by
    `lexical_score` against their questions."""
    terms = sorted(set(raw_words(query)))
    if not terms:
        return []
    if session.bind.dialect.name == "postgresql":
        ids = (await session.execute(text(
            "SELECT id FROM knowledge_entries WHERE to_tsvector('english', question || ' ' || "
            "answer) @@ to_tsquery('english', :q) ORDER BY ts_rank(to_tsvector('english', "
            "question || ' ' || answer), to_tsquery('english', :q)) DESC LIMIT :n"),
            {"q": " | ".join(terms), "n": candidates * 5})).scalars().all()
    else:
        match = " OR ".join(f'"{term}"' for term in terms)
        ids = (await session.execute(text(
            "SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH :q "
            "ORDER BY bm25(knowledge_fts) LIMIT :n"),
            {"q": match, "n": candidates * 5})).scalars().all()
    if not ids:
        return []
    rows = (await session.execute(
        select(KnowledgeEntry).where(KnowledgeEntry.id.in_(list(ids)),
                                     _usable(now or utcnow())))).scalars()
    matches = [Match(e, lexical_score(query, e.question)) for e in rows]
    return sorted((m for m in matches if m.score >= threshold),
                  key=lambda m: (-m.score, m.entry.id))[:limit]


async def record_use(session: AsyncSession, *, entry_id: int, conversation_id: int,
                     message_id: int) -> None:
    await insert_new(session, KnowledgeUse.__table__, [dict(
        entry_id=entry_id, conversation_id=conversation_id, message_id=message_id,
        created_at=utcnow())], conflict=("entry_id", "message_id"))


async def list_entries(session: AsyncSession, *, statuses: tuple[str, ...] = ("saved",),
                       limit: int = 50) -> list[KnowledgeEntry]:
    return list((await session.execute(
        select(KnowledgeEntry).where(KnowledgeEntry.status.in_(statuses))
        .order_by(KnowledgeEntry.id).limit(limit))).scalars())


async def use_counts(session: AsyncSession, entry_ids: list[int]) -> dict[int, int]:
    if not entry_ids:
        return {}
    rows = await session.execute(
        select(KnowledgeUse.entry_id, func.count()).where(KnowledgeUse.entry_id.in_(entry_ids))
        .group_by(KnowledgeUse.entry_id))
    return {entry_id: count for entry_id, count in rows}


async def case_number_of(session: AsyncSession, entry: KnowledgeEntry) -> int | None:
    if entry.conversation_id is None:
        return None
    return (await session.execute(select(Conversation.case_number).where(
        Conversation.id == entry.conversation_id))).scalar_one_or_none()


async def top_used(session: AsyncSession, *, since: datetime, until: datetime,
                   limit: int = 5) -> list[tuple[int, str, int]]:
    """(entry id, question, uses) of the entries cited most in the period."""
    count = func.count(KnowledgeUse.id)
    rows = await session.execute(
        select(KnowledgeEntry.id, KnowledgeEntry.question, count)
        .join(KnowledgeUse, KnowledgeUse.entry_id == KnowledgeEntry.id)
        .where(KnowledgeUse.created_at >= since, KnowledgeUse.created_at <= until)
        .group_by(KnowledgeEntry.id, KnowledgeEntry.question)
        .order_by(count.desc(), KnowledgeEntry.id).limit(limit))
    return [(entry_id, question, uses) for entry_id, question, uses in rows]


def text_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def cached_embeddings(session: AsyncSession, model: str,
                            values: list[str]) -> dict[str, list[float]]:
    """The stored embeddings of `values` by `model`, by text (missing ones left out)."""
    hashes = {text_hash(v): v for v in values}
    rows = await session.execute(
        select(EmbeddingCache.text_hash, EmbeddingCache.vector)
        .where(EmbeddingCache.model == model, EmbeddingCache.text_hash.in_(list(hashes))))
    return {hashes[h]: list(vector) for h, vector in rows}


async def cache_embeddings(session: AsyncSession, model: str,
                           vectors: dict[str, list[float]]) -> None:
    for value, vector in vectors.items():
        await insert_new(session, EmbeddingCache.__table__, [dict(
            model=model, text_hash=text_hash(value), vector=vector, created_at=utcnow())],
            conflict=("model", "text_hash"))
