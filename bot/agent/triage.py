"""Routers: small strategies that decide whether a new customer message needs a human.

`classifier` asks a cheap, fast model; `embeddings` compares the message with labelled example
questions (embeddings cached per process); `structured` reads a `needs_human` field from the
model's own JSON answer; `tool` offers the model a `transferToHuman` tool. Explicit assignment
always wins: routers only run while the bot owns a case.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.model import ModelClient, ModelError, ModelResult
from bot.config import AppConfig, ConfigError
from storage import knowledge

log = logging.getLogger(__name__)

CLASSIFIER_PROMPT = (
    "You route customer support messages. Reply with JSON only: "
    '{"needs_human": true|false, "reason": "<short reason>"}. needs_human is true when the '
    "customer asks for a person, is angry, or the matter needs account access, refunds beyond "
    "policy, legal or security decisions."
)

STRUCTURED_INSTRUCTIONS = (
    "Reply with JSON only: {\"answer\": \"<your answer to the customer>\", "
    "\"needs_human\": true|false, \"reason\": \"<why a human is needed, or empty>\"}. "
    "Set needs_human when a person on the support team should take over the conversation."
)


@dataclass(frozen=True)
class RouteDecision:
    needs_human: bool
    reason: str
    # The router's model call on this message (tokens, cost), stored with the message.
    usage: ModelResult | None = None


class Router(Protocol):
    name: str

    async def decide(self, text: str) -> RouteDecision: ...


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    start, end = text.find("{"), text.rfind("}")
    try:
        value = json.loads(text[start:end + 1]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def parse_structured_answer(text: str | None) -> tuple[str | None, RouteDecision]:
    """(answer for the customer, decision) from the model's JSON; plain text passes through."""
    data = _json_object(text)
    if not data:
        return text, RouteDecision(False, "")
    answer = data.get("answer")
    return (str(answer) if answer else None,
            RouteDecision(bool(data.get("needs_human")), str(data.get("reason") or "")))


class ClassifierRouter:
    name = "classifier"

    def __init__(self, model: ModelClient, model_name: str | None) -> None:
        self._model = model
        self._model_name = model_name

    async def decide(self, text: str) -> RouteDecision:
        try:
            result = await self._model.complete(
                [{"role": "system", "content": CLASSIFIER_PROMPT},
                 {"role": "user", "content": text}], model=self._model_name)
        except ModelError as error:
            log.warning("classifier router failed, the bot keeps the case: %s", error)
            return RouteDecision(False, "")
        data = _json_object(result.text)
        return RouteDecision(bool(data.get("needs_human")), str(data.get("reason") or ""),
                             usage=result)


def load_examples(path: str | Path) -> list[tuple[str, str]]:
    """Labelled examples: a YAML list of `{text: ..., route: human|bot}`."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    examples = []
    for index, item in enumerate(raw):
        route = str(item.get("route", "")).lower()
        if route not in ("human", "bot") or not item.get("text"):
            raise ValueError(f"{path}: example {index + 1} needs text and route: human|bot")
        examples.append((str(item["text"]), route))
    return examples


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class EmbeddingsRouter:
    name = "embeddings"

    def __init__(self, model: ModelClient, *, embedding_model: str, examples_file: str,
                 threshold: float,
                 sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self._model = model
        self._sessions = sessions
        self._embedding_model = embedding_model
        self._examples = load_examples(examples_file)
        self._threshold = threshold
        self._vectors: list[list[float]] | None = None

    async def _example_vectors(self) -> list[list[float]]:
        """The examples' embeddings: from the database's embedding store (the one knowledge
        entries use), computed and stored once for every process when missing."""
        if self._vectors is None:
            texts = [t for t, _ in self._examples]
            stored = await self._stored(texts)
            missing = [t for t in dict.fromkeys(texts) if t not in stored]
            if missing:
                computed = await self._model.embed(missing, model=self._embedding_model)
                fresh = dict(zip(missing, computed, strict=True))
                await self._store(fresh)
                stored.update(fresh)
            self._vectors = [stored[t] for t in texts]
        return self._vectors

    async def _stored(self, texts: list[str]) -> dict[str, list[float]]:
        if self._sessions is None:
            return {}
        try:
            async with self._sessions() as session:
                return await knowledge.cached_embeddings(session, self._embedding_model, texts)
        except Exception:
            log.warning("embeddings router: cannot read stored embeddings", exc_info=True)
            return {}

    async def _store(self, vectors: dict[str, list[float]]) -> None:
        if self._sessions is None:
            return
        try:
            async with self._sessions() as session:
                await knowledge.cache_embeddings(session, self._embedding_model, vectors)
                await session.commit()
        except Exception:
            log.warning("embeddings router: cannot store embeddings", exc_info=True)

    async def decide(self, text: str) -> RouteDecision:
        try:
            vectors = await self._example_vectors()
            [query], usage = await self._model.embed_measured([text],
                                                              model=self._embedding_model)
        except ModelError as error:
            log.warning("embeddings router failed, the bot keeps the case: %s", error)
            return RouteDecision(False, "")
        score, (example, route) = max(
            (cosine(query, vector), example) for vector, example in zip(
                vectors, self._examples, strict=True))
        if route == "human" and score >= self._threshold:
            return RouteDecision(True, f"similar to {example!r} ({score:.2f})", usage=usage)
        return RouteDecision(False, f"closest example {example!r} ({score:.2f}, {route})",
                             usage=usage)


def build_router(config: AppConfig, model: ModelClient,
                 sessions: async_sessionmaker[AsyncSession] | None = None) -> Router | None:
    """The pre-answer router chosen in app.yaml (`structured` and `tool` act inside the turn)."""
    routing = config.routing
    if routing.router == "classifier":
        return ClassifierRouter(model, routing.model)
    if routing.router == "embeddings":
        if not routing.examples_file:
            raise ConfigError("routing.examples_file is required for the embeddings router")
        try:
            return EmbeddingsRouter(model, embedding_model=routing.embedding_model,
                                    examples_file=routing.examples_file,
                                    threshold=routing.threshold, sessions=sessions)
        except (OSError, ValueError, yaml.YAMLError, AttributeError) as error:
            raise ConfigError(f"routing.examples_file: cannot use {routing.examples_file!r}: "
                              f"{error}") from None
    return None
