"""HTTP mode: Slack's events, commands and interactivity on one path, `GET /healthz` (alive),
`GET /readyz` (ready for traffic) and `GET /metrics` (Prometheus); in Socket Mode the last three
on a server of their own (`metrics.port`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.process.ops import MetricsExporter, Readiness, add_routes
from storage.db import ping

log = logging.getLogger(__name__)

_EVENT_ID = re.compile(r'"event_id"\s*:\s*"([A-Za-z0-9]{1,64})"')


def body_problem(raw: bytes, content_type: str | None) -> str | None:
    """Why Bolt could not read this request body (not UTF-8, not JSON, not an object), or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        body = parse_body(text, content_type)
    except ValueError:  # json.JSONDecodeError is one
        return "the body is not valid JSON"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    return None


def build_web_app(bolt: AsyncApp, engine: AsyncEngine, *, path: str,
                  signing_secret: str | None = None,
                  workers_reach_database: Callable[[], bool] = lambda: True,
                  readiness: Readiness | None = None, exporter: MetricsExporter | None = None
                  ) -> web.Application:
    """The aiohttp app. With `signing_secret`, a body Bolt cannot read gets 401 when its
    signature is wrong and 400 otherwise (Bolt itself checks the signature of readable ones).
    `/healthz`: 200 when the database answers and the workers reach it (their last sweep did),
    503 otherwise, so a load balancer sees a short outage too. `/readyz` and `/metrics`: see
    bot/process/ops.py."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_endpoint(request: web.Request) -> web.Response:
        raw = await request.read()
        problem = body_problem(raw, request.content_type)
        if problem is not None:
            return refuse_unreadable(raw, request, problem)
        bolt_request = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    def refuse_unreadable(raw: bytes, request: web.Request, problem: str) -> web.Response:
        if verifier is not None and not verifier.is_valid(
                raw, request.headers.get("X-Slack-Request-Timestamp", ""),
                request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401, text="invalid request signature")
        event_id = _EVENT_ID.search(raw.decode("utf-8", "replace"))
        log.warning("refused a malformed Slack request (event %s): %s",
                    event_id[1] if event_id else "id unknown", problem)
        # Sent again, the same body would fail the same way: ask Slack not to retry.
        return web.json_response({"ok": False, "error": "malformed_body", "detail": problem},
                                 status=400, headers={"X-Slack-No-Retry": "1"})

    web_app = build_ops_app(engine, workers_reach_database=workers_reach_database,
                            readiness=readiness, exporter=exporter)
    web_app.router.add_post(path, slack_endpoint)
    return web_app


def build_ops_app(engine: AsyncEngine, *,
                  workers_reach_database: Callable[[], bool] = lambda: True,
                  readiness: Readiness | None = None, exporter: MetricsExporter | None = None
                  ) -> web.Application:
    """`/healthz`, `/readyz` and (with an exporter) `/metrics`: the whole app of the Socket
    Mode metrics server, and part of the HTTP mode app."""

    async def healthz(_request: web.Request) -> web.Response:
        if await ping(engine) and workers_reach_database():
            return web.json_response({"status": "ok", "database": "reachable"})
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    add_routes(web_app, readiness=readiness or Readiness(engine), exporter=exporter)
    return web_app


async def start_site(web_app: web.Application, *, host: str, port: int
                     ) -> tuple[web.AppRunner, int]:
    """Serve the app; returns the runner and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(bound)
