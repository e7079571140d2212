"""Tools offered to the model. None has a handler in code: people or the handoff flow answer."""

from __future__ import annotations

from typing import Any

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
