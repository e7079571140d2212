"""Issue 3: HTTP mode verifies Slack's signature, answers url_verification, reports health."""

from __future__ import annotations

import json
import time

import aiohttp

from bot.process.http_server import build_web_app, start_site
from sandbox.model_server import Reply
from sandbox.slack_delivery import sign
from storage.db import create_engine
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts


def event_body(text: str) -> bytes:
    return json.dumps({
        "type": "event_callback", "team_id": "T0OURTEAM", "api_app_id": "A0APP",
        "event_id": "Ev0FORGED", "event_time": int(time.time()),
        "event": {"type": "message", "channel": CUSTOMERS, "user": CUSTOMER, "text": text,
                  "ts": "1700000000.000100", "channel_type": "channel"},
    }).encode()


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers={"Content-Type": "application/json", **headers}) as response:
        return response.status, await response.text()


async def test_bad_or_stale_signature_gets_401_and_does_nothing(bot, slack, model):
    model.script(Reply("must not be posted"))
    url = f"http://127.0.0.1:{bot.http_port}/slack/events"
    body = event_body("forged")
    now = str(int(time.time()))

    bad = await post(url, body, {"X-Slack-Request-Timestamp": now,
                                 "X-Slack-Signature": "v0=" + "0" * 64})
    stale_ts = str(int(time.time()) - 600)
    stale = await post(url, body, {"X-Slack-Request-Timestamp": stale_ts,
                                   "X-Slack-Signature": sign("test-secret", stale_ts, body)})
    missing = await post(url, body, {})

    assert [bad[0], stale[0], missing[0]] == [401, 401, 401]
    await bot.services.idle()
    assert model.requests == []
    assert not bot_posts(slack, CUSTOMERS)


async def test_correctly_signed_request_is_accepted(bot, slack, model):
    model.script(Reply("signed and answered"))
    url = f"http://127.0.0.1:{bot.http_port}/slack/events"
    body = event_body("a signed question")
    now = str(int(time.time()))
    slack.ws.store(slack.ws.channel(CUSTOMERS), {
        "type": "message", "user": CUSTOMER, "text": "a signed question",
        "ts": "1700000000.000100"})
    status, _ = await post(url, body, {"X-Slack-Request-Timestamp": now,
                                       "X-Slack-Signature": sign("test-secret", now, body)})
    assert status == 200
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts="1700000000.000100")
    assert reply["text"] == "signed and answered"


async def test_url_verification_is_answered(bot, slack):
    result = await slack.url_verification()
    assert result.status == 200
    assert result.json()["challenge"] == result.payload["challenge"]


async def test_healthz_reports_database_reachability(bot):
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{bot.http_port}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["database"] == "reachable"


async def test_healthz_answers_503_when_the_database_is_unreachable(bot):
    unreachable = create_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    web_app = build_web_app(bot.app, unreachable, path="/slack/events")
    runner, port = await start_site(web_app, host="127.0.0.1", port=0)
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["database"] == "unreachable"
    finally:
        await runner.cleanup()
        await unreachable.dispose()
