"""Logging set-up of every entry point: readable lines, and libraries that would log request
details (and with them tokens) kept quieter."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("slack_sdk", "slack_bolt", "httpx", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    # litellm logs an INFO line for every completion (formatted on the hot path): warnings only.
    for chatty in ("LiteLLM", "litellm", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("alembic").setLevel(logging.WARNING)
