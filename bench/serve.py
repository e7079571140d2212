"""The app under test in its own process, so its RSS is its own and its event loop serves only it.

    python -m bench.serve bot  '{"fakes": {...}, "database": "sqlite:///..."}'
    python -m bench.serve bare '{"fakes": {...}}'

`bot` is the real bot (`bot.bot_process.start_bot`, HTTP mode, migrations, worker, scheduler);
`bare` is a bare Bolt `AsyncApp` with a no-op `message` listener, served the same way (the Bolt
aiohttp adapter on an aiohttp site set up as `bot.http_server` does) without importing the bot.
Both print `READY <port>` and stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

PATH = "/slack/events"
Stop = Callable[[], Awaitable[None]]


async def start_real_bot(fakes: dict[str, Any], database: str) -> tuple[int, Stop]:
    from bot.bot_process import start_bot  # only here: the bare app's RSS must not carry it
    from bot.config import parse_config

    config = parse_config({
        "slack": {"mode": "http", "bot_token": fakes["bot_token"],
                  "signing_secret": fakes["signing_secret"], "api_url": fakes["slack_api"],
                  "http": {"host": "127.0.0.1", "port": 0, "path": PATH}},
        "channels": {"support": fakes["support"], "customer": [fakes["customers"]]},
        "llm": {"model": "openai/bench-model", "api_base": fakes["model"],
                "api_key": "sk-bench"},
        "database": {"url": database},
        "log_level": "WARNING",
    }, source="bench config")
    bot = await start_bot(config, http_port=0)
    assert bot.http_port is not None
    return bot.http_port, bot.stop


async def start_bare_bolt(fakes: dict[str, Any]) -> tuple[int, Stop]:
    client = AsyncWebClient(token=fakes["bot_token"], base_url=fakes["slack_api"])
    # The bot's own AsyncApp flags, so the difference measured is the bot's work, not Bolt's.
    app = AsyncApp(client=client, signing_secret=fakes["signing_secret"],
                   process_before_response=True, ignoring_self_events_enabled=True)

    @app.event("message")
    async def on_message() -> None:
        return None

    async def slack_endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post(PATH, slack_endpoint)
    runner = web.AppRunner(web_app, access_log=None)  # as bot.http_server.start_site does
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner.addresses[0][1], runner.cleanup


async def main(kind: str, settings: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.WARNING)
    if kind == "bot":
        port, stop_app = await start_real_bot(settings["fakes"], settings["database"])
    else:
        port, stop_app = await start_bare_bolt(settings["fakes"])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", port, flush=True)
    await stop.wait()
    await stop_app()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
