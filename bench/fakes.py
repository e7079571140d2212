"""The sandbox fakes in their own process: the Slack emulator, the model server answering
`Reply("ok")` (or `BENCH_ANSWER_WORDS` words), and a small control server the benchmark
driver talks to.

    python -m bench.fakes      # prints `READY {json}` with the URLs, then serves until SIGTERM

Control routes (JSON in, JSON out):
- `POST /events {"n": K}`: K new top-level customer messages, stored in the emulator (so the
  bot can answer in their threads) but not delivered; answers their signed-ready
  `event_callback` payloads. The driver sends them itself, to time each request.
- `POST /connect {"url": U}`: deliver the emulator's echoes of the bot's own posts to U.
- `POST /replies {"roots": [ts...], "timeout": s}`: when (wall-clock seconds, `time.time()`)
  the emulator received the app's first `chat.postMessage` into each root's thread, waiting for
  it up to `timeout` (null when none came). Recorded as the call arrives, before the emulator
  stores the message, so the figure is "event sent -> answer's post received".
- `POST /calls {}`: Web API calls received since the last `/forget`, by method, and the
  number of model requests.
- `POST /forget {}`: drop the emulator's call log and the model's request log (earlier
  phases), so a long run does not slow the fakes down and `/calls` counts one phase.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from aiohttp import web

from sandbox import slack_payloads
from sandbox.model_server import ModelServer, Reply
from sandbox.slack_emulator import SlackEmulator

SUPPORT, CUSTOMERS, CUSTOMER, STAFF = "C0SUPPORT", "C0ACME", "U0CUSTOMER", "U0STAFF"


def seeded_emulator() -> SlackEmulator:
    emulator = SlackEmulator(team_id="T0OURTEAM")
    emulator.add_user(CUSTOMER, "carol", real_name="Carol Customer", team_id="T0ACME")
    emulator.add_user(STAFF, "sam", real_name="Sam Staff")
    emulator.add_channel(SUPPORT, "support", members=[STAFF])
    emulator.add_channel(CUSTOMERS, "acme-shared", is_ext_shared=True, members=[CUSTOMER, STAFF])
    return emulator


def new_customer_message(emulator: SlackEmulator, text: str) -> dict[str, Any]:
    """Store a customer's top-level message; return the event Slack would send for it."""
    ws, channel = emulator.ws, emulator.ws.channel(CUSTOMERS)
    message = {"client_msg_id": str(uuid.uuid4()), "type": "message", "text": text,
               "user": CUSTOMER, "ts": ws.next_ts(), "team": ws.team_of(CUSTOMER),
               "blocks": slack_payloads.rich_text_blocks(text)}
    ws.store(channel, message)
    event = slack_payloads.message_event(ws, channel, message)
    return slack_payloads.event_callback(ws, event, event_id="Ev" + ws.new_id("", 10),
                                         channel=channel)


def record_thread_posts(emulator: SlackEmulator) -> dict[str, float]:
    """Wrap the emulator's `chat.postMessage`: remember when the first post into each customer
    thread arrived (keyed by the thread's root ts)."""
    first: dict[str, float] = {}
    post = emulator.api.methods["chat.postMessage"]

    def recording_post(params: dict[str, Any]) -> dict[str, Any]:
        at = time.time()
        root = params.get("thread_ts")
        if root and params.get("channel") == CUSTOMERS and root not in first:
            first[str(root)] = at
        return post(params)

    emulator.api.methods["chat.postMessage"] = recording_post
    return first


def control_app(emulator: SlackEmulator, model: ModelServer) -> web.Application:
    first_posts = record_thread_posts(emulator)

    async def events(request: web.Request) -> web.Response:
        count = int((await request.json())["n"])
        payloads = [new_customer_message(emulator, f"Question {uuid.uuid4().hex[:8]}?")
                    for _ in range(count)]
        return web.json_response({"events": payloads})

    async def connect(request: web.Request) -> web.Response:
        emulator.connect_http((await request.json())["url"])
        return web.json_response({"ok": True})

    async def replies(request: web.Request) -> web.Response:
        body = await request.json()
        roots, deadline = [str(r) for r in body["roots"]], time.monotonic() + float(body["timeout"])
        while any(r not in first_posts for r in roots) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return web.json_response({"replies": {r: first_posts.get(r) for r in roots}})

    async def calls(_request: web.Request) -> web.Response:
        counts: dict[str, int] = {}
        for call in emulator.calls:
            counts[call.method] = counts.get(call.method, 0) + 1
        return web.json_response({"calls": counts, "model": len(model.requests)})

    async def forget(_request: web.Request) -> web.Response:
        emulator.calls.clear()
        emulator.deliveries.clear()
        model.requests.clear()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/events", events)
    app.router.add_post("/connect", connect)
    app.router.add_post("/replies", replies)
    app.router.add_post("/forget", forget)
    app.router.add_post("/calls", calls)
    return app


def model_answer() -> str:
    """The answer to every question: "ok", or `BENCH_ANSWER_WORDS` words (streamed one word
    per chunk, as a real model streams about a token per chunk)."""
    words = int(os.environ.get("BENCH_ANSWER_WORDS") or 0)
    return " ".join(["word"] * words) if words > 1 else "ok"


async def main() -> None:
    answer = model_answer()
    emulator, model = seeded_emulator(), ModelServer(default=lambda _request: Reply(answer))
    await emulator.start()
    await model.start()
    runner = web.AppRunner(control_app(emulator, model), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    info = {"control": f"http://127.0.0.1:{runner.addresses[0][1]}",
            "slack_api": emulator.api_url, "model": model.base_url,
            "bot_token": emulator.bot_token, "signing_secret": emulator.signing_secret,
            "support": SUPPORT, "customers": CUSTOMERS}
    print("READY", json.dumps(info), flush=True)
    await stop.wait()
    await runner.cleanup()
    await model.stop()
    await emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
