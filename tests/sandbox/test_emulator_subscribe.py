"""`SlackEmulator.subscribe`: watchers hear about changes, not about reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emulator import SlackEmulator


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator()
    emu.add_user("U0SAM", "sam")
    emu.add_channel("C0SUPPORT", "support", members=["U0SAM"])
    await emu.start()
    yield emu
    await emu.stop()


async def test_watchers_hear_changes_and_deliveries(emu: SlackEmulator) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = emu.subscribe(lambda kind, detail: heard.append((kind, detail)))
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)

    await client.users_info(user="U0SAM")
    await client.conversations_history(channel="C0SUPPORT")
    assert heard == []  # reads change nothing

    await client.chat_postMessage(channel="C0SUPPORT", text="hello")
    assert heard == [("api", {"method": "chat.postMessage"})]

    async def ack(_request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_post("/", ack)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    emu.connect_http(f"http://127.0.0.1:{runner.addresses[0][1]}/")
    await emu.user_posts("C0SUPPORT", "U0SAM", "hi")
    await emu.settle()
    await runner.cleanup()
    assert ("delivery", {"kind": "events_api", "payload_type": "event_callback"}) in heard

    unsubscribe()
    heard.clear()
    await client.chat_postMessage(channel="C0SUPPORT", text="again")
    assert heard == []
