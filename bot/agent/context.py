"""Turns stored history into the model's messages, within a token budget.

Tool results are stored in the turn of their call, so they directly follow it even when the
customer wrote in between (providers reject anything between a call and its results). Oldest
turns are dropped first when the thread is too long; a note tells the model that they were.
"""

from __future__ import annotations

import json
from typing import Any

from storage.models import Message

_CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(message: dict[str, Any]) -> int:
    size = len(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        size += len(call["function"]["name"]) + len(call["function"]["arguments"])
    return size // _CHARS_PER_TOKEN + _MESSAGE_OVERHEAD_TOKENS


def _answered_call_ids(history: list[Message]) -> set[str]:
    return {m.tool_call_id for m in history if m.role == "tool" and m.tool_call_id}


def to_model_message(message: Message, answered: set[str]) -> dict[str, Any] | None:
    """One stored message in OpenAI chat format; None when nothing of it may be sent."""
    if message.role == "user":
        return {"role": "user", "content": message.text or ""}
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id,
                "content": message.text or ""}
    calls = [
        {"id": call["id"], "type": "function",
         "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
        for call in (message.tool_calls or []) if call["id"] in answered
    ]
    if not calls and not message.text:
        return None
    result: dict[str, Any] = {"role": "assistant", "content": message.text or None}
    if calls:
        result["tool_calls"] = calls
    return result


def _group(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups that must stay together: an assistant tool call with its results."""
    groups: list[list[dict[str, Any]]] = []
    for message in messages:
        if message["role"] == "tool" and groups:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def _truncate(message: dict[str, Any], tokens: int) -> dict[str, Any]:
    limit = max(tokens - _MESSAGE_OVERHEAD_TOKENS, 50) * _CHARS_PER_TOKEN
    content = message.get("content") or ""
    if len(content) <= limit:
        return message
    return {**message, "content": content[:limit] + " …[truncated]"}


def build_model_messages(
    history: list[Message], *, system_prompt: str, budget_tokens: int
) -> list[dict[str, Any]]:
    answered = _answered_call_ids(history)
    converted = [m for m in (to_model_message(h, answered) for h in history) if m is not None]
    groups = _group(converted)
    system = {"role": "system", "content": system_prompt}
    remaining = budget_tokens - estimate_tokens(system)
    kept: list[list[dict[str, Any]]] = []
    for group in reversed(groups):
        cost = sum(estimate_tokens(m) for m in group)
        if cost > remaining:
            if not kept and len(group) == 1:
                kept.append([_truncate(group[0], remaining)])
            break
        kept.append(group)
        remaining -= cost
    kept.reverse()
    dropped = len(groups) - len(kept)
    messages = [system]
    if dropped:
        messages.append({"role": "system", "content": (
            f"({dropped} earlier messages of this conversation are omitted to save space.)")})
    for group in kept:
        messages.extend(group)
    return messages
