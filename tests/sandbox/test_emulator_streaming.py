"""Issue 15: the emulator's streaming methods (chat.startStream / appendStream / stopStream),
the assistant thinking status and `feedback_buttons` in a `context_actions` block, against the
real slack_sdk client over loopback, with Slack's shapes and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emulator import SlackEmulator
from tests.sandbox.test_slack_emulator import Receiver

CUSTOMER, STAFF = "U0CUST", "U0STAFF"
SHARED, DM = "C0SHARED", "D0CUST"
FEEDBACK = {"type": "context_actions", "elements": [{
    "type": "feedback_buttons", "action_id": "fb",
    "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "up:1"},
    "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "down:1"}}]}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(SlackEmulator().signing_secret)
    await rec.start()
    yield rec
    assert rec.runner is not None
    await rec.runner.cleanup()


@pytest.fixture
async def emu(receiver: Receiver) -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator()
    emu.add_user(CUSTOMER, "carol", team_id="T0CUSTOMER")
    emu.add_user(STAFF, "sam")
    emu.add_channel(SHARED, "acme-support", members=[CUSTOMER, STAFF])
    emu.add_channel(DM, "carol-dm", members=[CUSTOMER])
    await emu.start()
    emu.connect_http(receiver.url)
    yield emu
    await emu.stop()


@pytest.fixture
async def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url, retry_handlers=[])


async def question(client: AsyncWebClient, emu: SlackEmulator) -> str:
    del client
    return await emu.user_posts(SHARED, CUSTOMER, "How?")


async def test_a_stream_grows_then_is_final(emu: SlackEmulator, client: AsyncWebClient) -> None:
    root = await question(client, emu)
    started = await client.chat_startStream(
        channel=SHARED, thread_ts=root, markdown_text="Hello ", recipient_user_id=CUSTOMER,
        recipient_team_id="T0CUSTOMER")
    ts = started["ts"]
    assert started["ok"] and started["channel"] == SHARED
    [live] = [m for m in emu.messages(SHARED, thread_ts=root) if m.get("bot_id")]
    assert live["text"] == "Hello " and live["streaming"]

    await client.chat_appendStream(channel=SHARED, ts=ts, markdown_text="world")
    assert emu.messages(SHARED, thread_ts=root)[-1]["text"] == "Hello world"
    stopped = await client.chat_stopStream(channel=SHARED, ts=ts, markdown_text="!",
                                           blocks=[FEEDBACK])
    final = stopped["message"]
    assert final["text"] == "Hello world!" and "streaming" not in final
    assert final["blocks"][0]["type"] == "context_actions"

    for call in (client.chat_appendStream(channel=SHARED, ts=ts, markdown_text="more"),
                 client.chat_stopStream(channel=SHARED, ts=ts)):
        with pytest.raises(SlackApiError, match="message_not_in_streaming_state"):
            await call


async def test_stream_errors(emu: SlackEmulator, client: AsyncWebClient) -> None:
    root = await question(client, emu)
    # In a channel Slack needs the recipient; in a DM it does not.
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.chat_startStream(channel=SHARED, thread_ts=root, markdown_text="x")
    dm_root = await emu.user_posts(DM, CUSTOMER, "Hi")
    assert (await client.chat_startStream(channel=DM, thread_ts=dm_root))["ok"]
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await client.chat_startStream(channel=DM, thread_ts=dm_root, markdown_text="x" * 12_001)
    started = await client.chat_startStream(channel=DM, thread_ts=dm_root)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.chat_appendStream(channel=DM, ts=started["ts"])
    # A channel refusing streaming (an older workspace) refuses the start.
    emu.refuse_streaming(SHARED)
    with pytest.raises(SlackApiError, match="channel_type_not_supported"):
        await client.chat_startStream(channel=SHARED, thread_ts=root,
                                      recipient_user_id=CUSTOMER, recipient_team_id="T0C")
    # Rate limits through the fault book, with Retry-After.
    emu.refuse_streaming(SHARED, False)
    emu.fail_next("chat.appendStream", retry_after=3)
    started = await client.chat_startStream(channel=SHARED, thread_ts=root,
                                            recipient_user_id=CUSTOMER, recipient_team_id="T")
    with pytest.raises(SlackApiError) as limited:
        await client.chat_appendStream(channel=SHARED, ts=started["ts"], markdown_text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "3"


async def test_thinking_status_cleared_by_a_reply(emu: SlackEmulator,
                                                  client: AsyncWebClient) -> None:
    root = await question(client, emu)
    await client.assistant_threads_setStatus(channel_id=SHARED, thread_ts=root,
                                             status="is thinking…",
                                             loading_messages=["Reading…", "Writing…"])
    assert emu.assistant_status[(SHARED, root)] == "is thinking…"
    assert emu.ws.assistant_loading[(SHARED, root)] == ["Reading…", "Writing…"]
    await client.chat_postMessage(channel=SHARED, thread_ts=root, text="Answer")
    assert (SHARED, root) not in emu.assistant_status


async def test_feedback_buttons_validated_and_clicked_like_slack(
        emu: SlackEmulator, client: AsyncWebClient, receiver: Receiver) -> None:
    root = await question(client, emu)
    bad = {"type": "context_actions", "elements": [{"type": "button", "action_id": "x",
                                                    "text": {"type": "plain_text", "text": "x"}}]}
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_postMessage(channel=SHARED, thread_ts=root, text="a", blocks=[bad])
    missing = {"type": "context_actions", "elements": [
        {"type": "feedback_buttons", "positive_button": FEEDBACK["elements"][0][
            "positive_button"]}]}
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_postMessage(channel=SHARED, thread_ts=root, text="a", blocks=[missing])
    posted = await client.chat_postMessage(channel=SHARED, thread_ts=root, text="Answer",
                                           blocks=[FEEDBACK])

    await emu.click_button(user=CUSTOMER, channel=SHARED, message_ts=posted["ts"],
                           action_id="fb", value="down:1")
    payload = json.loads(parse_qs(receiver.requests[-1][1].decode())["payload"][0])
    [action] = payload["actions"]
    assert payload["type"] == "block_actions"
    assert action["type"] == "feedback_buttons" and action["value"] == "down:1"
    assert action["text"] == {"type": "plain_text", "text": "👎"}
    assert payload["container"]["thread_ts"] == root
    with pytest.raises(ValueError, match="no feedback button"):
        await emu.click_button(user=CUSTOMER, channel=SHARED, message_ts=posted["ts"],
                               action_id="fb", value="sideways")
