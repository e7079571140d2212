"""Logging set-up of every entry point.

Two formats (`logging.format` in app.yaml): `text`, readable lines for a terminal, and `json`,
one JSON object per line for a log collector. Every line names the conversation (case) and the
Slack event it is about when known (`bot.toolkit.log_context`). Secrets of the configuration
(tokens, signing secret, model API key, database password) are replaced by `***` in every line,
whatever logged them; libraries that would log request details are kept quieter.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from bot.toolkit import log_context

REDACTED = "***"
_NOISY = ("slack_sdk", "slack_bolt", "litellm", "httpx", "aiosqlite", "asyncio",
          "aiohttp.access", "apscheduler")


def _context(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    conversation = log_context.conversation_id.get()
    if conversation is not None:
        found["conversation_id"] = conversation
    event = log_context.slack_event_id.get()
    if event:
        found["event_id"] = event
    return found


class _Redacting(logging.Formatter):
    """Formats a record, then hides every known secret in the finished line."""

    def __init__(self, secrets: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = secrets

    def redact(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return line


class TextFormatter(_Redacting):
    """`2026-11-30 20:41:07,123 INFO bot.agent.loop: message [case=3 event=Ev123]`"""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets, "%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            tags = " ".join(f"{'case' if key == 'conversation_id' else 'event'}={value}"
                            for key, value in context.items())
            first, newline, rest = line.partition("\n")
            line = f"{first} [{tags}]{newline}{rest}"
        return self.redact(line)


class JsonFormatter(_Redacting):
    """One JSON object per line: time, level, logger, message, conversation_id, event_id, and
    the traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return self.redact(json.dumps(entry, ensure_ascii=False, default=str))


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs (replaced, not stacked, when configured again)."""


# litellm gives these loggers a stderr handler of its own when it is imported (which happens
# after logging is configured): its lines would escape the format and the redaction, and show
# twice. They keep only the root handler.
_OWN_HANDLER_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def _adopt(name: str) -> None:
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.addHandler = lambda handler: None  # type: ignore[method-assign]


def configure_logging(level: str, *, format: Literal["text", "json"] = "text",
                      secrets: list[str] | tuple[str, ...] = ()) -> None:
    """Send every log line to stderr in `format`, hiding `secrets` (values shorter than 6
    characters are not secrets worth hiding and would mangle ordinary words)."""
    hidden = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(hidden) if format == "json" else TextFormatter(hidden))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _OWN_HANDLER_LOGGERS:
        _adopt(name)
        # a line per model call at INFO ("completion() model= ..."): only its warnings
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    logging.getLogger("alembic").setLevel(logging.WARNING)


def config_secrets(config: Any) -> list[str]:
    """The secret values of an AppConfig: tokens, signing secret, model key, database
    password (also percent-encoded, as it may appear in a URL)."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    values = [config.slack.bot_token.get_secret_value(), config.slack.app_token.get_secret_value(),
              config.slack.signing_secret.get_secret_value(),
              config.llm.api_key.get_secret_value()]
    try:
        password = make_url(config.database.url).password
    except Exception:  # noqa: BLE001 - an unreadable URL is reported elsewhere
        password = None
    if password:
        values += [str(password), quote(str(password), safe="")]
    return [v for v in values if v]


def configure_from(config: Any) -> None:
    """`configure_logging` with the level, format and secrets of an AppConfig."""
    configure_logging(config.log_level, format=config.logging.format,
                      secrets=config_secrets(config))
