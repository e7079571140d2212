"""Creates the Bolt AsyncApp for a configuration and registers every listener on it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, case_actions, commands, events, shortcuts, views
from bot.listeners.middleware import clean_strings, log_event_id
from bot.process.wiring import Services

log = logging.getLogger(__name__)


def build_app(services: Services) -> AsyncApp:
    config = services.config
    http = config.slack.mode == "http"
    app = AsyncApp(
        client=services.slack.client,
        signing_secret=config.slack.signing_secret.get_secret_value() if http else None,
        request_verification_enabled=http,
        # Record first, then acknowledge: the listener only writes the event down and kicks
        # the worker, which is quick; the slow work runs after the ack.
        process_before_response=True,
        ignoring_self_events_enabled=True,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        error_id = uuid.uuid4().hex[:8]
        log.error("unhandled error %s on %s", error_id, body.get("type"), exc_info=error)

    app.middleware(log_event_id)
    app.middleware(clean_strings)
    events.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    case_actions.register(app, services)
    commands.register(app, services)
    shortcuts.register(app, services)
    return app
