"""Bounds on the model steps of one customer message, read from the stored rows of its turn.

Counting stored rows, not a counter in memory, makes the bounds survive restarts and replicas.
Every model call leaves one assistant row in the turn (answered, failed or unusable); a tool
result the bot wrote for an unknown tool or unreadable arguments is marked as a tool error; the
row where the bot gave up is marked too, and only rows after it count, so a case handed back to
the bot gets a fresh allowance for the same message.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import LlmSettings
from bot.toolkit import texts
from storage.models import Message

TOOL_ERROR = "toolError"
GAVE_UP = "gaveUp"
UNUSABLE = "unusable"


@dataclass(frozen=True)
class Limit:
    """A bound that was reached, with the reason shown to staff."""

    reason: str


def is_marked(message: Message, mark: str) -> bool:
    return bool(message.meta and message.meta.get(mark))


def mark(message: Message, key: str, value: object = True) -> None:
    message.meta = {**(message.meta or {}), key: value}


def _steps(rows: list[Message]) -> list[Message]:
    """The assistant rows (model steps) after the last give-up of the turn."""
    steps = [row for row in rows if row.role == "assistant"
             and (row.meta or {}).get("provider") != "human"]
    for index in range(len(steps) - 1, -1, -1):
        if is_marked(steps[index], GAVE_UP):
            return steps[index + 1:]
    return steps


def _tool_error_steps(rows: list[Message]) -> tuple[int, str]:
    """How many answered steps in a row, counting back from the last, hit a tool error; and
    the last error's description."""
    errors = {row.tool_call_id: str(row.meta.get(TOOL_ERROR)) for row in rows
              if row.role == "tool" and row.meta and row.meta.get(TOOL_ERROR)}
    count, last = 0, ""
    for step in reversed(_steps(rows)):
        if step.status != "success":
            continue  # failed or unusable calls neither break nor extend the run
        found = [errors[c["id"]] for c in step.tool_calls or [] if c.get("id") in errors]
        if not found:
            break
        count += 1
        last = last or found[-1]
    return count, last


def reached(rows: list[Message], settings: LlmSettings) -> Limit | None:
    """The bound the turn has reached, if any: too many steps, or tool errors in a row."""
    errors, last = _tool_error_steps(rows)
    if errors >= settings.max_tool_errors:
        return Limit(texts.model_tool_errors(errors, last))
    steps = len(_steps(rows))
    if steps >= settings.max_steps_per_message:
        return Limit(texts.model_step_limit(steps))
    return None
