"""Knowledge in the model's context: the saved entries closest to the customer's question, how
the model is told to cite the one it used, and how an entry is distilled from what staff said.

Finding entries never costs a turn: an embedding model that fails, or a database error, gives
no entries and the model answers as it would have without them.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.model import ModelClient, ModelError, ModelResult
from bot.config import AppConfig
from bot.toolkit.ids import KNOWLEDGE_TAG
from storage import knowledge
from storage.models import Message

log = logging.getLogger(__name__)

CITATION = re.compile(r"\s*" + re.escape(KNOWLEDGE_TAG) + r"(\d+)\]")
CONTEXT_HEADER = (
    "Knowledge saved by the support team: answers staff gave to earlier customers. Use an "
    "entry only when it answers the customer's question, in your own words. When you use one, "
    "end your answer with its tag, for example [kb:12] (the tag is removed before the customer "
    "sees it).")
DISTILL_PROMPT = (
    "You write entries for a support team's knowledge base. From the customer's question and "
    "what the support staff answered, write one short general question and the staff's answer "
    "to it, without names, ids or details only true for this customer. Use only facts the "
    "staff stated, never facts from the customer alone. Reply with JSON only: "
    '{"question": "...", "answer": "..."}.')


@dataclass(frozen=True)
class Offered:
    entry_id: int
    question: str
    answer: str
    score: float


@dataclass(frozen=True)
class Found:
    """The entries for a question, and the embedding call that placed it (tokens, cost)."""

    offered: list[Offered]
    usage: ModelResult | None = None


def knowledge_context(offered: list[Offered]) -> str:
    """The system prompt's section listing the entries, with their ids."""
    lines = [CONTEXT_HEADER]
    for entry in offered:
        lines.append(f"[kb:{entry.entry_id}] Q: {entry.question}\nA: {entry.answer}")
    return "\n\n".join(lines)


def cited_entries(text: str, offered_ids: set[int]) -> tuple[str, list[int]]:
    """The answer without its tags, and the offered entries it cited (tags of entries that
    were not offered are removed and not counted)."""
    cited = [int(m) for m in CITATION.findall(text)]
    return (CITATION.sub("", text).strip(),
            list(dict.fromkeys(i for i in cited if i in offered_ids)))


# Below this word-overlap with a saved entry's answer, a staff answer to a question close to the
# entry's is flagged to staff as a possible contradiction.
SAME_ANSWER = 0.5


def conflict_key(conversation_id: int, entry_id: int) -> str:
    """One flag per case and entry, whether raised at the answer or at the resolve."""
    return f"kb-conflict:{conversation_id}:{entry_id}"


def contradicts(staff_answer: str, entry_answer: str) -> bool:
    return knowledge.lexical_score(staff_answer, entry_answer) < SAME_ANSWER


def staff_answers_since_customer(history: list[Message]) -> list[str]:
    """What staff answered (askHuman results by a person) after the customer's latest words."""
    answers: list[str] = []
    for message in history:
        if message.role == "user":
            answers = []
        elif (message.role == "tool" and message.text
              and (message.meta or {}).get("provider") == "human"
              and message.tool_name == "askHuman"
              and message.text not in answers):
            answers.append(message.text)
    return answers


def distill_request(customer: str, staff: list[str]) -> list[dict[str, str]]:
    said = "\n".join(f"- {line}" for line in staff)
    return [{"role": "system", "content": DISTILL_PROMPT},
            {"role": "user", "content": f"Customer asked:\n{customer}\n\nStaff answered:\n{said}"}]


def parse_distilled(text: str | None) -> tuple[str, str] | None:
    """(question, answer) from the model's JSON, or None when it is not usable."""
    if not text:
        return None
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start:end + 1]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    question, answer = data.get("question"), data.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    if not question.strip() or not answer.strip():
        return None
    return question.strip()[:500], answer.strip()[:2000]


class KnowledgeBase:
    """Finds saved entries for a question (embeddings, or full-text search without a model)."""

    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 model: ModelClient) -> None:
        self._settings = config.knowledge
        self._embedding_model = config.knowledge_embedding_model
        self._sessions = sessions
        self._model = model

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    @property
    def embedding_model(self) -> str | None:
        return self._embedding_model

    @property
    def threshold(self) -> float:
        return self._settings.threshold

    async def embed(self, text: str) -> list[float] | None:
        """The text's embedding; None in lexical mode. ModelError when the model fails."""
        if self._embedding_model is None:
            return None
        vector, _ = await self.embed_measured(text)
        return vector

    async def embed_measured(self, text: str) -> tuple[list[float] | None, ModelResult | None]:
        """The embedding and the call's tokens and cost (None, None in lexical mode)."""
        if self._embedding_model is None:
            return None, None
        [vector], usage = await self._model.embed_measured([text], model=self._embedding_model)
        return [float(x) for x in vector], usage

    async def closest(self, session: AsyncSession, question: str, *,
                      limit: int | None = None) -> list[knowledge.Match]:
        """Saved, unexpired entries above the threshold, best first (may raise)."""
        matches, _ = await self.closest_measured(session, question, limit=limit)
        return matches

    async def closest_measured(self, session: AsyncSession, question: str, *,
                               limit: int | None = None
                               ) -> tuple[list[knowledge.Match], ModelResult | None]:
        """`closest`, and the embedding call's tokens and cost when one was made."""
        limit = limit or self._settings.max_entries
        if not question.strip() or not await knowledge.has_usable(session):
            return [], None
        if self._embedding_model is None:
            return await knowledge.closest_by_words(session, question,
                                                    threshold=self.threshold,
                                                    limit=limit), None
        vector, usage = await self.embed_measured(question)
        return await knowledge.closest_by_embedding(
            session, vector or [], model=self._embedding_model, threshold=self.threshold,
            limit=limit), usage

    async def _closest_outside_transactions(
            self, question: str) -> tuple[list[knowledge.Match], ModelResult | None]:
        """`closest_measured` for the hot path: the embedding call is made with no
        transaction open (on SQLite one would hold the process's write lock meanwhile)."""
        if self._embedding_model is None:
            async with self._sessions() as session:
                return await self.closest_measured(session, question)
        async with self._sessions() as session:
            usable = bool(question.strip()) and await knowledge.has_usable(session)
        if not usable:
            return [], None
        vector, usage = await self.embed_measured(question)
        async with self._sessions() as session:
            return await knowledge.closest_by_embedding(
                session, vector or [], model=self._embedding_model, threshold=self.threshold,
                limit=self._settings.max_entries), usage

    async def relevant(self, question: str) -> Found:
        """The entries to give the model; none when disabled or anything fails."""
        if not self.enabled:
            return Found([])
        try:
            matches, usage = await self._closest_outside_transactions(question)
        except ModelError as error:
            log.warning("knowledge: the embedding model failed, answering without: %s", error)
            return Found([])
        except Exception:  # knowledge is a bonus, never the turn's failure
            log.exception("knowledge: finding entries failed, answering without")
            return Found([])
        return Found([Offered(m.entry.id, m.entry.question, m.entry.answer, m.score)
                      for m in matches], usage)
