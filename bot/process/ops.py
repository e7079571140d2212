"""What an operator's tools ask the running bot: readiness (`/readyz`) and metrics (`/metrics`).

`/healthz` is liveness (bot/process/http_server.py). `/readyz` says whether this process should
get traffic: the database answers, its schema is at the latest migration this code knows, and
Slack is connected (Socket Mode: the socket is open; HTTP mode: the token was checked at
start-up, or the process would not be running). Each check is bounded by a timeout, so a probe
never hangs on a locked or unreachable database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.toolkit import metrics
from storage import gauges
from storage.migrate import current_revisions, head_revisions

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


async def _always() -> bool:
    return True


class Readiness:
    def __init__(self, engine: AsyncEngine, *,
                 slack_connected: Callable[[], Awaitable[bool]] = _always,
                 timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self._engine = engine
        self._slack_connected = slack_connected
        self._timeout = timeout

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready, a JSON body naming each check and what is not ready)."""
        checks: dict[str, str] = {}
        try:
            current = await asyncio.wait_for(current_revisions(self._engine), self._timeout)
        except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
            checks["database"] = f"unreachable ({type(error).__name__})"
            checks["migrations"] = "unknown (the database is unreachable)"
        else:
            checks["database"] = "ok"
            heads = head_revisions()
            if current == heads:
                checks["migrations"] = "ok"
            else:
                at = ", ".join(sorted(current)) or "no schema"
                checks["migrations"] = (f"not at head (database at {at}; "
                                        f"head {', '.join(sorted(heads))})")
        try:
            connected = await asyncio.wait_for(self._slack_connected(), self._timeout)
        except Exception:  # noqa: BLE001
            connected = False
        checks["slack"] = "ok" if connected else "not connected"
        not_ready = [name for name, state in checks.items() if state != "ok"]
        body = {"status": "ready" if not not_ready else "not ready", "not_ready": not_ready,
                "checks": checks}
        return not not_ready, body


class MetricsExporter:
    """Renders `/metrics`: the counters of every process of this bot, and the database's
    gauges (read here, at scrape time)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self._sessions = sessions
        self._timeout = timeout

    async def _figures(self) -> metrics.DatabaseFigures:
        try:
            async with self._sessions() as session:
                backlog = await asyncio.wait_for(gauges.backlog(session), self._timeout)
        except Exception as error:  # noqa: BLE001 - the scrape says the database is down
            log.debug("metrics: database figures unavailable (%s)", type(error).__name__)
            return metrics.DatabaseFigures()
        return metrics.DatabaseFigures(
            pending_human_requests=backlog.pending_human_requests,
            oldest_pending_human_request_seconds=backlog.oldest_pending_human_request_seconds,
            outbox_pending_posts=backlog.outbox_pending_posts,
            oldest_outbox_post_seconds=backlog.oldest_outbox_post_seconds)

    async def render(self) -> bytes:
        figures = await self._figures()
        return await asyncio.to_thread(metrics.render, figures)


def add_routes(web_app: web.Application, *, readiness: Readiness,
               exporter: MetricsExporter | None) -> None:
    """`GET /readyz` and, with an exporter, `GET /metrics` on `web_app`."""

    async def readyz(_request: web.Request) -> web.Response:
        ready, body = await readiness.check()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(_request: web.Request) -> web.Response:
        body = await exporter.render()  # type: ignore[union-attr]
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    web_app.router.add_get("/readyz", readyz)
    if exporter is not None:
        web_app.router.add_get("/metrics", metrics_page)
