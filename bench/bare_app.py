"""The baseline the bot is measured against: a bare Bolt `AsyncApp` + `litellm.acompletion` that
answers every customer message in its thread, with no storage, as a new user would write it.

    python -m bench.bare_app --config app.yaml

It reads the keys of the bot's own app.yaml it needs (slack.bot_token, slack.signing_secret,
slack.api_url, slack.http, llm.model, llm.api_base, llm.api_key; literal values, no `${VAR}`),
serves HTTP mode on slack.http (events on its path, `GET /healthz`), acks each event at once
(Bolt's default: the listener runs after the ack), calls the model and posts the answer with
`chat.postMessage` in the message's thread. It never imports the bot, so its CPU and RSS are
Bolt's, litellm's and aiohttp's alone. Stops on SIGTERM.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import logging
import signal
from typing import Any

import litellm
import yaml
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("bench.bare_app")


def build_app(config: dict[str, Any]) -> AsyncApp:
    slack, llm = config["slack"], config["llm"]
    client = AsyncWebClient(token=slack["bot_token"], base_url=slack["api_url"])
    app = AsyncApp(client=client, signing_secret=slack["signing_secret"])

    @app.event("message")
    async def answer(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("subtype") or event.get("bot_id"):
            return  # edits, joins, other bots' posts
        response = await litellm.acompletion(
            model=llm["model"], api_base=llm.get("api_base"), api_key=llm.get("api_key"),
            messages=[{"role": "system", "content": "You are a support agent."},
                      {"role": "user", "content": event.get("text", "")}])
        text = response.choices[0].message.content or "…"
        await client.chat_postMessage(channel=event["channel"], text=text,
                                      thread_ts=event.get("thread_ts") or event["ts"])

    return app


async def serve(config: dict[str, Any]) -> None:
    app, http = build_app(config), config["slack"].get("http") or {}

    async def slack_endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    web_app = web.Application()
    web_app.router.add_post(http.get("path", "/slack/events"), slack_endpoint)
    web_app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, http.get("host", "127.0.0.1"), int(http.get("port", 3000))).start()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="app.yaml")
    config = yaml.safe_load(open(parser.parse_args().config, encoding="utf-8"))
    logging.basicConfig(level=str(config.get("log_level", "WARNING")).upper())
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
