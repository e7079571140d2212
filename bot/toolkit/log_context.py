"""What the current log lines are about: the conversation (case) being worked and the Slack
event being handled. Set where that work starts; `bot.process.logs` adds them to every line."""

from __future__ import annotations

from contextvars import ContextVar

conversation_id: ContextVar[int | None] = ContextVar("conversation_id", default=None)
slack_event_id: ContextVar[str | None] = ContextVar("slack_event_id", default=None)
