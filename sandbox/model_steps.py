"""Scripted steps of the sandbox model server: what one chat completion request gets back.

A step is `Reply(text)`, `ToolCalls([(name, args), ...])`, `Empty()`, `Error(status=...)`,
`Delay(seconds, then=step)`, `Forever(step)`, or a callable `(request_json) -> step` (sync or
async). Faults on demand: `Empty()` (null content, no tool calls), `Empty(content="")`,
`ToolCalls([("askHuman", '{"question": "Is it')])` (arguments sent verbatim when a string),
`Error(500)`, `Error(429, retry_after=1)`, `Forever(ToolCalls([("noSuchTool", {})]))`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Reply:
    """The assistant answers with text (`finish_reason: stop`)."""

    text: str


@dataclass(frozen=True)
class ToolCalls:
    """The assistant calls tools (`finish_reason: tool_calls`), optionally with some text."""

    calls: Sequence[tuple[str, Mapping[str, Any] | str]]
    text: str | None = None


@dataclass(frozen=True)
class Empty:
    """An unusable answer: no tool calls and `content` null (default) or the given string."""

    content: str | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error in OpenAI's error shape; `retry_after` sets the `Retry-After` header."""

    status: int = 500
    retry_after: float | None = None
    message: str = "The server had an error while processing your request."
    code: str | None = None


@dataclass(frozen=True)
class Delay:
    """Wait `seconds`, then answer with `then`."""

    seconds: float
    then: Step = field(default_factory=lambda: Reply("OK"))


@dataclass(frozen=True)
class Forever:
    """Answer every request of its queue with `step`; it is never used up (`clear_script`)."""

    step: Step


Step: TypeAlias = ("Reply | ToolCalls | Empty | Error | Delay | Forever"
                   " | Callable[[dict[str, Any]], Any]")
Responder: TypeAlias = Callable[[dict[str, Any]], Any]

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
               404: "invalid_request_error", 429: "requests"}
ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


async def resolve(step: Step, request: dict[str, Any]) -> Reply | ToolCalls | Empty | Error:
    """Follow callables, delays and `Forever` until a final Reply, ToolCalls, Empty or Error."""
    for _ in range(50):
        if isinstance(step, Reply | ToolCalls | Empty | Error):
            return step
        if isinstance(step, Forever):
            step = step.step
        elif isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            step = step.then
        elif callable(step):
            step = step(request)
            if inspect.isawaitable(step):
                step = await step
        else:
            raise TypeError(f"not a model step: {step!r}")
    raise RuntimeError("model step did not resolve (callables returning callables?)")


def error_body(error: Error) -> dict[str, Any]:
    return {"error": {"message": error.message,
                      "type": ERROR_TYPES.get(error.status, "server_error"),
                      "param": None,
                      "code": error.code or ERROR_CODES.get(error.status)}}
