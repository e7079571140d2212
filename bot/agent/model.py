"""One call to the model through litellm, with retries; results as plain data."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

from bot.agent.model_setup import run_model_set_up_on_loop
from bot.config import LlmSettings
from bot.toolkit import metrics

log = logging.getLogger(__name__)
litellm.suppress_debug_info = True
# litellm fails a stream whose chunks repeat 100 times ("word word word ..."); the answer is
# bounded by `llm.max_output_tokens` already, and the same answer unstreamed would pass.
litellm.REPEATED_STREAMING_CHUNK_LIMIT = 1_000_000  # type: ignore[misc]


class ModelError(Exception):
    """The model could not be reached or answered unusably after retries."""


RAW_ARGUMENTS = "_raw"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def malformed(self) -> str | None:
        """The raw argument text when it was not a JSON object, else None."""
        raw = self.arguments.get(RAW_ARGUMENTS)
        return None if raw is None else str(raw)


@dataclass(frozen=True)
class ModelResult:
    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # USD from litellm's cost table; 0.0 for a model the table does not know.
    cost_usd: float | None = None

    @property
    def usable(self) -> bool:
        """Something to act on: a tool call, or text that is not blank."""
        return bool(self.tool_calls) or bool(self.text and self.text.strip())


def _parse_arguments(raw: Any) -> dict[str, Any]:
    """Arguments as a dict; anything but a JSON object is kept as `{"_raw": text}`."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, json.JSONDecodeError):
        return {RAW_ARGUMENTS: raw}
    return value if isinstance(value, dict) else {RAW_ARGUMENTS: raw}


class ModelClient:
    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings

    def _common(self) -> dict[str, Any]:
        settings = self._settings
        args: dict[str, Any] = {"model": settings.model, "timeout": settings.timeout_seconds}
        if settings.api_base:
            args["api_base"] = settings.api_base
        if settings.api_key.get_secret_value():
            args["api_key"] = settings.api_key.get_secret_value()
        return args

    async def complete(self, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None = None,
                       *, model: str | None = None, **extra: Any) -> ModelResult:
        args = {**self._common(), "messages": messages,
                "temperature": self._settings.temperature,
                "max_tokens": self._settings.max_output_tokens,
                "num_retries": self._settings.retries, **extra}
        if model:
            args["model"] = model
        if tools:
            args["tools"] = tools
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**args)
        except Exception as error:
            metrics.model_failed("completion", started, error)
            raise ModelError(f"{type(error).__name__}: {str(error)[:300]}") from error
        usage = getattr(response, "usage", None)
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:  # no choice at all: as unusable as an empty answer
            metrics.model_answered("completion", started, None, None, usable=False)
            return ModelResult(text=None, model=getattr(response, "model", None))
        calls = [ToolCall(id=call.id, name=call.function.name or "",
                          arguments=_parse_arguments(call.function.arguments))
                 for call in (message.tool_calls or [])]
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        result = ModelResult(
            text=message.content or None, tool_calls=calls, model=response.model,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost_usd=call_cost(args["model"], response.model, prompt_tokens, completion_tokens),
        )
        metrics.model_answered("completion", started, prompt_tokens, completion_tokens,
                               usable=result.usable)
        return result

    async def complete_streaming(self, messages: list[dict[str, Any]],
                                 tools: list[dict[str, Any]] | None,
                                 on_text: Callable[[str], Awaitable[None]],
                                 **extra: Any) -> ModelResult:
        """As `complete`, with litellm `stream=True`: each piece of answer text is handed to
        `on_text` as it arrives, until the first tool call shows up (then nothing more: a
        tool-call step is not streamed). The result is the whole answer, as `complete` gives."""
        args = {**self._common(), "messages": messages,
                "temperature": self._settings.temperature,
                "max_tokens": self._settings.max_output_tokens,
                "num_retries": self._settings.retries, "stream": True,
                "stream_options": {"include_usage": True}, **extra}
        if tools:
            args["tools"] = tools
        started = time.perf_counter()
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: Any = None
        answered: str | None = None
        try:
            response = await litellm.acompletion(**args)
            async for chunk in response:
                answered = getattr(chunk, "model", None) or answered
                usage = getattr(chunk, "usage", None) or usage
                choices = getattr(chunk, "choices", None) or []
                delta = getattr(choices[0], "delta", None) if choices else None
                if delta is None:
                    continue
                for call in getattr(delta, "tool_calls", None) or []:
                    entry = calls.setdefault(call.index or 0,
                                             {"id": None, "name": "", "arguments": ""})
                    entry["id"] = call.id or entry["id"]
                    function = call.function
                    if function is not None:
                        entry["name"] += function.name or ""
                        entry["arguments"] += function.arguments or ""
                piece = getattr(delta, "content", None)
                if piece:
                    text.append(piece)
                    if not calls:
                        await on_text(piece)
        except Exception as error:
            metrics.model_failed("completion", started, error)
            raise ModelError(f"{type(error).__name__}: {str(error)[:300]}") from error
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        tool_calls = [ToolCall(id=c["id"] or f"call_{index}", name=c["name"],
                               arguments=_parse_arguments(c["arguments"]))
                      for index, c in sorted(calls.items())]
        result = ModelResult(
            text="".join(text) or None, tool_calls=tool_calls, model=answered,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost_usd=call_cost(args["model"], answered, prompt_tokens, completion_tokens))
        metrics.model_answered("completion", started, prompt_tokens, completion_tokens,
                               usable=result.usable)
        return result

    async def embed(self, texts: list[str], *, model: str) -> list[list[float]]:
        vectors, _ = await self.embed_measured(texts, model=model)
        return vectors

    async def embed_measured(self, texts: list[str], *, model: str
                             ) -> tuple[list[list[float]], ModelResult]:
        """The vectors, and the call's tokens and cost (as a ModelResult without text)."""
        started = time.perf_counter()
        try:
            response = await litellm.aembedding(model=model, input=texts, **self._common_no_model())
        except Exception as error:
            metrics.model_failed("embedding", started, error)
            raise ModelError(f"{type(error).__name__}: {str(error)[:300]}") from error
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        metrics.model_answered("embedding", started, prompt_tokens, 0)
        answered = getattr(response, "model", None)
        usage_result = ModelResult(
            text=None, model=answered or model, prompt_tokens=prompt_tokens,
            completion_tokens=0, cost_usd=call_cost(model, answered, prompt_tokens, 0))
        return [item["embedding"] for item in response.data], usage_result

    def _common_no_model(self) -> dict[str, Any]:
        args = self._common()
        args.pop("model")
        return args


def call_cost(requested: str, answered: str | None, prompt_tokens: int | None,
              completion_tokens: int | None) -> float:
    """What a call cost in USD by litellm's cost table: the model that answered (providers name
    the dated version), else the model asked for; 0.0 when the table knows neither (a local or
    self-hosted model), so tokens are still counted."""
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    if not prompt and not completion:
        return 0.0
    for name in dict.fromkeys(n for n in (answered, requested) if n and n not in _UNPRICED):
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=name, prompt_tokens=prompt, completion_tokens=completion)
        except Exception:  # noqa: BLE001 - litellm raises plain Exceptions for unknown models
            _UNPRICED.add(name)  # the table is loaded once: asked again, it would fail again
            _price_at_zero(name)
            continue
        return float(prompt_cost) + float(completion_cost)
    return 0.0


# Model names litellm's cost table does not know (a lookup that fails costs ~0.1 ms of CPU).
_UNPRICED: set[str] = set()


def _price_at_zero(name: str) -> None:
    """Enter a model litellm's cost table does not know at zero cost, once: litellm prices
    every call for its own logging, and for an unknown model it searches its whole table for a
    look-alike each time (~1-2 ms of CPU per streamed answer). Its cost stays 0.0 here, as
    before; only a name with a provider prefix ("openai/my-model") can be entered."""
    provider, _, bare = name.partition("/")
    if not bare or provider not in litellm.provider_list:
        return
    with contextlib.suppress(Exception):  # a table litellm refuses to extend is only slower
        litellm.register_model({name: {
            "litellm_provider": provider, "input_cost_per_token": 0.0,  # chat or embedding
            "output_cost_per_token": 0.0, "cache_creation_input_token_cost": 0.0,
            "cache_read_input_token_cost": 0.0}})


async def warm_up(models: Iterable[str] = ()) -> None:
    """Make litellm ready on this process's loop, at start-up, not on customers' first
    messages: its request set-up for OpenAI-compatible models runs on the loop from now on
    (`bot.agent.model_setup`), and its one-time costs are paid: its lazy imports, its streaming
    path, and for each chat model given, its price (a model its table does not know is entered
    at zero, and litellm's first call after that costs ~0.3 s of CPU). Nothing leaves the
    process (mock answers)."""
    run_model_set_up_on_loop()
    hi = [{"role": "user", "content": "hi"}]
    await litellm.acompletion(
        model="openai/warm-up", messages=hi, mock_response="ok",
        tools=[{"type": "function", "function": {
            "name": "noop", "parameters": {"type": "object", "properties": {}}}}],
    )
    for model in dict.fromkeys(models):
        call_cost(model, None, 1, 1)
        try:
            stream = await litellm.acompletion(
                model=model, messages=hi, mock_response="ok", stream=True,
                stream_options={"include_usage": True})
            async for _chunk in stream:
                pass
        except Exception as error:  # noqa: BLE001 - a model litellm cannot route: start anyway
            log.warning("could not warm up model %s: %s", model,  # its first call fails clearly
                        str(error).splitlines()[0][:200])

