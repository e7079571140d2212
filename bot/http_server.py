"""HTTP mode: Slack's events, commands and interactivity on one path, and `GET /healthz`."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import ping


def build_web_app(bolt: AsyncApp, engine: AsyncEngine, *, path: str,
                  workers_reach_database: Callable[[], bool] = lambda: True
                  ) -> web.Application:
    """Slack's endpoint and `/healthz`: 200 when the database answers and the workers reach it
    (their last sweep did), 503 otherwise, so a load balancer sees a short outage too."""

    async def slack_endpoint(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        if await ping(engine) and workers_reach_database():
            return web.json_response({"status": "ok", "database": "reachable"})
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)

    web_app = web.Application()
    web_app.router.add_post(path, slack_endpoint)
    web_app.router.add_get("/healthz", healthz)
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
