"""Issue 3: Socket Mode, through the emulator's apps.connections.open and WebSocket."""

from __future__ import annotations

from bot.process.lifecycle import start_bot
from sandbox.model_server import Reply
from tests.conftest import CUSTOMER, CUSTOMERS, make_config


async def test_socket_mode_receives_events_and_answers(database_url, slack, model):
    config = make_config(database_url=database_url, emulator=slack, model=model,
                         slack={"mode": "socket", "app_token": slack.app_token,
                                "signing_secret": ""})
    bot = await start_bot(config, sweep_seconds=0.5)
    try:
        await slack.wait_connected()
        model.script(Reply("answered over Socket Mode"))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello over a socket")
        reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
        assert reply["text"] == "answered over Socket Mode"
        assert slack.calls_to("apps.connections.open")
        assert all(d.kind != "http" for d in slack.deliveries)
    finally:
        await bot.stop()
