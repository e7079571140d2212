"""Bolt middleware that runs on every payload, whatever its kind, after Slack's signature check."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.toolkit import log_context
from bot.toolkit.payloads import clean_payload

log = logging.getLogger(__name__)


async def clean_strings(req: AsyncBoltRequest, resp: BoltResponse,
                        next: Callable[[], Awaitable[BoltResponse | None]]
                        ) -> BoltResponse | None:
    """Drop NUL characters and replace lone surrogates in every string of the payload, once,
    so that no listener meets text a database refuses (nothing is lost, nothing crashes)."""
    req.body, changed = clean_payload(req.body)
    if changed:
        what = req.body.get("event_id") or req.body.get("type") or "unknown"
        log.warning("Slack payload %s carried characters no database can store (NUL or a lone "
                    "surrogate); stored without them", what)
    return await next()


async def log_event_id(req: AsyncBoltRequest, resp: BoltResponse,
                       next: Callable[[], Awaitable[BoltResponse | None]]
                       ) -> BoltResponse | None:
    """Every log line written while a Slack payload is handled names its event id (or, for
    commands and interactions, their trigger id), and the work it kicks off inherits it."""
    body = req.body if isinstance(req.body, dict) else {}
    event_id = body.get("event_id") or body.get("trigger_id")
    log_context.slack_event_id.set(str(event_id) if event_id else None)
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    log.debug("Slack %s %s", body.get("type") or ("command" if body.get("command") else "?"),
              event.get("type") or body.get("command") or "")
    return await next()
