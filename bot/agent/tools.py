"""Tools offered to the model. None has a handler in code: people or the handoff flow answer."""

from __future__ import annotations

import json
from typing import Any

from bot.agent.model import RAW_ARGUMENTS
from bot.toolkit import texts

ASK_HUMAN = "askHuman"
TRANSFER_TO_HUMAN = "transferToHuman"

ASK_HUMAN_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": ASK_HUMAN,
        "description": (
            "Ask a human support agent a question you cannot answer yourself: a fact, a "
            "confirmation, or a decision. A person on the support team will answer; the "
            "conversation continues with their answer."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "The question for the human."},
                "suggested_answer": {
                    "type": "string",
                    "description": (
                        "The reply you would send the customer if your best guess is right. "
                        "Staff can send it with one click or edit it; leave it out when you "
                        "have no guess."),
                },
            },
            "required": ["question"],
        },
    },
}

TRANSFER_TO_HUMAN_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TRANSFER_TO_HUMAN,
        "description": (
            "Hand the whole conversation to the human support team, for example when the "
            "customer asks for a person or the matter needs one. A person will reply."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why a human should take over."},
            },
            "required": ["reason"],
        },
    },
}


def tools_for(router: str) -> list[dict[str, Any]]:
    """askHuman always; transferToHuman when the `tool` router is chosen."""
    if router == "tool":
        return [ASK_HUMAN_TOOL, TRANSFER_TO_HUMAN_TOOL]
    return [ASK_HUMAN_TOOL]


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools]


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


SUGGESTION_LIMIT = 2800  # fits a Block Kit section with its label


def suggested_answer(arguments: dict[str, Any]) -> str | None:
    """The askHuman call's suggested reply, when it gave a usable one."""
    value = arguments.get("suggested_answer")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:SUGGESTION_LIMIT]


def readable_question(arguments: dict[str, Any]) -> str:
    """The askHuman question a person can read: the `question` string, or plain-text arguments
    as they came; anything else is shown as raw text under a note, never as if it were one."""
    question = arguments.get("question")
    raw = arguments.get(RAW_ARGUMENTS)
    if isinstance(question, str) and question.strip() and raw is None:
        text = question.strip()
        if not isinstance(_json_value(text), dict | list):
            return text
        return texts.unreadable_question(text)
    if raw is None:
        return texts.unreadable_question(json.dumps(arguments, ensure_ascii=False))
    text = str(raw).strip()
    decoded = _json_value(text)
    if isinstance(decoded, str) and decoded.strip():
        return decoded.strip()  # a bare JSON string: the question itself
    if decoded is None and text and text[0] not in "{[\"'":
        return text  # plain text sent instead of JSON
    return texts.unreadable_question(text)
