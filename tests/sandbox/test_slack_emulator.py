"""The Slack emulator against the real slack_sdk clients, over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emulator import NoAppConnected, SlackEmulator

CUSTOMER, STAFF, STRANGER = "U0CUST", "U0STAFF", "U0STRANGE"
SHARED, SUPPORT = "C0SHARED", "C0SUPPORT"


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator()
    emu.add_user(CUSTOMER, "carol", real_name="Carol Customer", team_id="T0CUSTOMER")
    emu.add_user(STAFF, "sam", real_name="Sam Staff")
    emu.add_user(STRANGER, "zed", team_id="T0OTHER", is_stranger=True)
    emu.add_channel(SHARED, "acme-support", members=[CUSTOMER, STAFF], is_ext_shared=True)
    emu.add_channel(SUPPORT, "support", members=[STAFF])
    emu.add_usergroup("S0STAFF", "support-team", [STAFF])
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=emu.bot_token, base_url=emu.api_url, retry_handlers=[])


class Receiver:
    """A tiny app endpoint: verifies Slack's signature and records what it got."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # statuses to answer with, in order; then 200
        self.answer: dict[str, Any] | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        self.requests.append((dict(request.headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        if self.answer is not None and status == 200:
            return web.json_response(self.answer)
        return web.Response(status=status)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for headers, body in self.requests
                if headers["Content-Type"] == "application/json"]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/events", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/slack/events"


@pytest.fixture
async def receiver(emu: SlackEmulator) -> AsyncIterator[Receiver]:
    rec = Receiver(emu.signing_secret)
    await rec.start()
    emu.connect_http(rec.url)
    yield rec
    assert rec.runner is not None
    await rec.runner.cleanup()


async def test_post_replies_update_delete(emu: SlackEmulator, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("U0BOT", "B0BOT", "T0OURTEAM")

    root = await client.chat_postMessage(
        channel=SHARED, text="Hello", metadata={"event_type": "outbox", "event_payload": {"k": 1}})
    assert root["channel"] == SHARED and root["message"]["bot_id"] == "B0BOT"
    reply = await client.chat_postMessage(channel=SHARED, text="In thread", thread_ts=root["ts"],
                                          username="Sam (staff)", icon_url="http://x/a.png")
    assert reply["ts"] > root["ts"]

    replies = await client.conversations_replies(channel=SHARED, ts=root["ts"],
                                                 include_all_metadata=True)
    assert [m["text"] for m in replies["messages"]] == ["Hello", "In thread"]
    assert replies["has_more"] is False
    assert replies["messages"][0]["reply_count"] == 1
    assert replies["messages"][0]["metadata"]["event_payload"] == {"k": 1}
    plain = await client.conversations_replies(channel=SHARED, ts=reply["ts"])
    assert len(plain["messages"]) == 2 and "metadata" not in plain["messages"][0]

    updated = await client.chat_update(channel=SHARED, ts=reply["ts"], text="Edited")
    assert updated["message"]["text"] == "Edited"
    assert emu.messages(SHARED, thread_ts=root["ts"])[1]["username"] == "Sam (staff)"
    history = await client.conversations_history(channel=SHARED)
    assert [m["ts"] for m in history["messages"]] == [root["ts"]]

    await client.chat_delete(channel=SHARED, ts=reply["ts"])
    assert [m["text"] for m in emu.messages(SHARED)] == ["Hello"]
    link = await client.chat_getPermalink(channel=SHARED, message_ts=root["ts"])
    assert link["permalink"].endswith(f"/archives/{SHARED}/p{root['ts'].replace('.', '')}")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(("kwargs", "error"), [
    ({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
    ({"channel": SHARED, "text": "x" * 40001}, "msg_too_long"),
    ({"channel": SHARED}, "no_text"),
    ({"channel": SHARED, "text": "x", "thread_ts": "1.000001"}, "thread_not_found"),
])
async def test_post_message_errors(client: AsyncWebClient, kwargs: dict[str, Any],
                                   error: str) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(**kwargs)
    assert info.value.response["error"] == error


async def test_auth_errors_and_unknown_method(emu: SlackEmulator) -> None:
    for token, error in [("xoxb-wrong", "invalid_auth"), (None, "not_authed"),
                         (emu.app_token, "not_allowed_token_type")]:
        with pytest.raises(SlackApiError) as info:
            await AsyncWebClient(token=token, base_url=emu.api_url).auth_test()
        assert info.value.response["error"] == error
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as info:
        await client.api_call("nothing.here")
    assert info.value.response.status_code == 404
    assert info.value.response["error"] == "unknown_method"


async def test_rate_limit_and_injected_errors(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=SHARED, text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"
    assert emu.calls_to("chat.postMessage")[-1].status == 429

    emu.fail_next("users.info", error="fatal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            await client.users_info(user=STAFF)
        assert info.value.response.status_code == 200
    staff = (await client.users_info(user=STAFF))["user"]
    assert (staff["real_name"], staff["profile"]["display_name"]) == ("Sam Staff", "")
    assert (await client.chat_postMessage(channel=SHARED, text="x"))["ok"]


async def test_directory_methods(emu: SlackEmulator, client: AsyncWebClient) -> None:
    external = (await client.users_info(user=CUSTOMER))["user"]
    assert external["team_id"] == "T0CUSTOMER" and external["profile"]["team"] == "T0CUSTOMER"
    stranger = (await client.users_info(user=STRANGER))["user"]
    assert stranger["is_stranger"] is True and "real_name" not in stranger
    emu.ws.strangers_not_found = True
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user=STRANGER)

    info = (await client.conversations_info(channel=SHARED))["channel"]
    assert info["is_ext_shared"] and "T0CUSTOMER" in info["shared_team_ids"]
    members, cursors = [], []
    async for page in await client.conversations_members(channel=SHARED, limit=2):
        members += page["members"]
        cursors.append(page["response_metadata"]["next_cursor"])
    assert members == [CUSTOMER, STAFF, "U0BOT"]
    assert cursors[0] and cursors[-1] == ""
    group = await client.usergroups_users_list(usergroup="S0STAFF")
    assert group["users"] == [STAFF]


async def test_reactions_ephemeral_status(emu: SlackEmulator, client: AsyncWebClient) -> None:
    ts = (await client.chat_postMessage(channel=SUPPORT, text="Case #1"))["ts"]
    await client.reactions_add(channel=SUPPORT, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await client.reactions_add(channel=SUPPORT, timestamp=ts, name="eyes")
    assert emu.messages(SUPPORT)[0]["reactions"] == [
        {"name": "eyes", "users": ["U0BOT"], "count": 1}]
    await client.reactions_remove(channel=SUPPORT, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="no_reaction"):
        await client.reactions_remove(channel=SUPPORT, timestamp=ts, name="eyes")

    sent = await client.chat_postEphemeral(channel=SUPPORT, user=STAFF, text="only you")
    assert emu.ephemerals[-1]["user"] == STAFF and emu.ephemerals[-1]["ts"] == sent["message_ts"]
    await client.assistant_threads_setStatus(channel_id=SHARED, thread_ts=ts, status="thinking")
    assert emu.assistant_status[(SHARED, ts)] == "thinking"


async def test_waiters_see_past_and_future(emu: SlackEmulator, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel=SHARED, text="one")
    assert (await emu.wait_for_message(SHARED))["ts"] == first["ts"]

    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=SHARED, text="two", thread_ts=first["ts"])

    task = asyncio.create_task(later())
    msg = await emu.wait_for_message(SHARED, thread_ts=first["ts"],
                                     predicate=lambda m: "two" in m["text"])
    call = await emu.wait_for_call("chat.postMessage", lambda c: c.params["text"] == "two")
    await task
    assert msg["thread_ts"] == first["ts"] and call.response["ts"] == msg["ts"]
    with pytest.raises(TimeoutError):
        await emu.wait_for_message(SHARED, since_ts=msg["ts"], timeout=0.1)


async def test_http_events_are_signed_and_shaped(emu: SlackEmulator, client: AsyncWebClient,
                                                 receiver: Receiver) -> None:
    ts = await emu.user_posts(SHARED, CUSTOMER, "Hi <@U0BOT>, can you help?")
    message, mention = receiver.events()
    assert message["event"]["type"] == "message" and mention["event"]["type"] == "app_mention"
    assert message["event_id"] != mention["event_id"]
    assert message["event_id"].startswith("Ev")
    event = message["event"]
    assert (event["ts"], event["user"], event["channel"]) == (ts, CUSTOMER, SHARED)
    assert event["user_team"] == "T0CUSTOMER" and event["channel_type"] == "channel"
    assert message["is_ext_shared_channel"] and message["authorizations"][0]["user_id"] == "U0BOT"
    assert emu.deliveries[-1].status == 200

    # the bot's own post is echoed back as a message event with bot_id
    await client.chat_postMessage(channel=SHARED, text="Sure!", thread_ts=ts)
    await emu.settle()
    echo = receiver.events()[-1]["event"]
    assert echo["bot_id"] == "B0BOT" and echo["thread_ts"] == ts and "subtype" not in echo

    await emu.user_edits(SHARED, ts, "edited", CUSTOMER)
    await emu.add_reaction(SHARED, ts, "thumbsup", STAFF)
    await emu.user_joins(SHARED, STRANGER)
    kinds = [(e["event"]["type"], e["event"].get("subtype")) for e in receiver.events()[3:]]
    assert kinds == [("message", "message_changed"), ("reaction_added", None),
                     ("message", "channel_join"), ("member_joined_channel", None)]
    assert receiver.events()[4]["event"]["item_user"] == CUSTOMER


async def test_sharing_a_channel_with_another_organisation(
        emu: SlackEmulator, client: AsyncWebClient, receiver: Receiver) -> None:
    await emu.share_channel(SUPPORT, "T0ACME", pending=True)
    info = (await client.conversations_info(channel=SUPPORT))["channel"]
    assert info["is_pending_ext_shared"] and info["pending_shared"] == ["T0ACME"]
    assert not info["is_ext_shared"] and receiver.events() == []

    await emu.share_channel(SUPPORT, "T0ACME")
    info = (await client.conversations_info(channel=SUPPORT))["channel"]
    assert info["is_ext_shared"] and info["is_shared"] and not info["is_pending_ext_shared"]
    assert info["shared_team_ids"] == [emu.ws.team_id, "T0ACME"]
    shared = receiver.events()[-1]["event"]
    assert (shared["type"], shared["channel"], shared["connected_team_id"]) == (
        "channel_shared", SUPPORT, "T0ACME")

    await emu.unshare_channel(SUPPORT, "T0ACME")
    info = (await client.conversations_info(channel=SUPPORT))["channel"]
    assert not info["is_ext_shared"] and info["shared_team_ids"] == [emu.ws.team_id]
    unshared = receiver.events()[-1]["event"]
    assert (unshared["type"], unshared["previously_connected_team_id"],
            unshared["is_ext_shared"]) == ("channel_unshared", "T0ACME", False)


async def test_http_retries_and_redeliver(emu: SlackEmulator, receiver: Receiver) -> None:
    emu.connect_http(receiver.url, retries=2)
    receiver.statuses = [500]
    await emu.user_posts(SHARED, CUSTOMER, "hello")
    (first, _), (second, body) = receiver.requests
    assert "X-Slack-Retry-Num" not in first
    assert (second["X-Slack-Retry-Num"], second["X-Slack-Retry-Reason"]) == ("1", "http_error")
    result = emu.deliveries[-1]
    assert result.ok and result.attempts == 2

    again = await emu.redeliver(result.event_id or "")
    headers, redelivered = receiver.requests[-1]
    assert again.ok and headers["X-Slack-Retry-Num"] == "1"
    assert json.loads(redelivered)["event_id"] == json.loads(body)["event_id"]


async def test_http_timeout_is_retried(emu: SlackEmulator) -> None:
    seen: list[dict[str, str]] = []

    async def slow(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:
            await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    emu.connect_http(f"http://127.0.0.1:{runner.addresses[0][1]}/", retries=1, timeout=0.2)
    result = await emu.send_event({"type": "app_home_opened", "user": STAFF})
    await runner.cleanup()
    assert result.ok and seen[1]["X-Slack-Retry-Reason"] == "http_timeout"


async def test_slash_command_and_response_url(emu: SlackEmulator, receiver: Receiver) -> None:
    receiver.answer = {"response_type": "ephemeral", "text": "Working on it"}
    result = await emu.slash_command("/handoff", "list", user=STAFF, channel=SUPPORT)
    assert result.json() == {"response_type": "ephemeral", "text": "Working on it"}
    headers, body = receiver.requests[-1]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert (form["command"], form["text"], form["user_id"]) == ("/handoff", "list", STAFF)

    async with aiohttp.ClientSession() as http:
        await http.post(form["response_url"], json={"response_type": "in_channel",
                                                    "text": "Cases: none"})
    assert emu.responses[-1].payload["text"] == "Cases: none"
    assert emu.messages(SUPPORT)[-1]["text"] == "Cases: none"

    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    opened = await client.views_open(trigger_id=form["trigger_id"], view={
        "type": "modal", "callback_id": "assign", "private_metadata": "case-1",
        "title": {"type": "plain_text", "text": "Assign"}, "blocks": []})
    receiver.answer = None
    submitted = await emu.submit_view(opened["view"]["id"], user=STAFF,
                                      values={"who": {"user": "U0STAFF"}})
    assert submitted.ok and opened["view"]["id"] not in emu.views
    payload = json.loads(parse_qs(receiver.requests[-1][1].decode())["payload"][0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["private_metadata"] == "case-1"
    assert payload["view"]["state"]["values"]["who"]["user"]["value"] == "U0STAFF"
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await client.views_open(trigger_id="nope", view={"type": "modal", "blocks": []})


async def test_button_click_and_shortcut(emu: SlackEmulator, client: AsyncWebClient,
                                         receiver: Receiver) -> None:
    posted = await client.chat_postMessage(channel=SUPPORT, text="Case #1", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "Case #1"}},
        {"type": "actions", "block_id": "case", "elements": [
            {"type": "button", "action_id": "take", "value": "1",
             "text": {"type": "plain_text", "text": "Take"}}]}])
    await emu.settle()
    await emu.click_button(user=STAFF, channel=SUPPORT, message_ts=posted["ts"], action_id="take")
    payload = json.loads(parse_qs(receiver.requests[-1][1].decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "take", "block_id": "case", "type": "button", "value": "1",
        "text": {"type": "plain_text", "text": "Take"}, "action_ts": None}
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["message"]["blocks"][1]["elements"][0]["action_id"] == "take"

    await emu.message_shortcut("handoff_take", user=STAFF, channel=SUPPORT,
                               message_ts=posted["ts"])
    shortcut = json.loads(parse_qs(receiver.requests[-1][1].decode())["payload"][0])
    assert (shortcut["type"], shortcut["callback_id"]) == ("message_action", "handoff_take")


async def test_socket_mode_delivery_and_ack(emu: SlackEmulator) -> None:
    emu.configure_socket_mode(ack_timeout=0.3, retries=1)
    web_client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    socket = SocketModeClient(app_token=emu.app_token, web_client=web_client,
                              auto_reconnect_enabled=False)
    received: list[SocketModeRequest] = []

    async def listener(client: SocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        if req.type == "events_api" and not req.retry_attempt:
            return  # the first try goes unacknowledged: the emulator must retry
        answer = {"text": "pong"} if req.type == "slash_commands" else None
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload=answer))

    socket.socket_mode_request_listeners.append(listener)
    await socket.connect()
    try:
        await emu.wait_connected()
        await emu.user_posts(SHARED, CUSTOMER, "hello over a socket")
        result = emu.deliveries[-1]
        assert result.ok and result.attempts == 2
        assert [r.retry_attempt for r in received] == [0, 1]
        assert received[0].payload["event_id"] == received[1].payload["event_id"]
        assert received[0].payload["event"]["text"] == "hello over a socket"

        command = await emu.slash_command("/handoff", "status 1", user=STAFF, channel=SUPPORT)
        assert command.json() == {"text": "pong"}
        assert received[-1].payload["command"] == "/handoff"
    finally:
        await socket.close()


async def test_no_app_connected(emu: SlackEmulator) -> None:
    with pytest.raises(NoAppConnected):
        await emu.user_posts(SHARED, CUSTOMER, "anyone?")


async def test_views_publish_and_app_home_opened(emu: SlackEmulator, client: AsyncWebClient,
                                                 receiver: Receiver) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "queue"}}
    published = await client.views_publish(user_id=STAFF, view={"type": "home",
                                                                "blocks": [section]})
    view = published["view"]
    assert view["type"] == "home" and emu.home_view(STAFF)["id"] == view["id"]
    again = await client.views_publish(user_id=STAFF, view={"type": "home", "blocks": []},
                                       hash=view["hash"])
    assert again["view"]["id"] == view["id"]  # one Home view per person, replaced

    def error(**kwargs: Any) -> Any:
        return client.views_publish(**kwargs)

    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"user_id": "U0NOBODY", "view": {"type": "home", "blocks": []}}, "user_not_found", None),
        ({"user_id": STAFF, "view": {"type": "modal", "blocks": []}}, "invalid_arguments",
         "/view/type"),
        ({"user_id": STAFF, "view": {"type": "home", "blocks": [section] * 101}},
         "invalid_arguments", "no more than 100 items"),
        ({"user_id": STAFF, "view": {"type": "home", "blocks": [
            {**section, "block_id": "a"}, {**section, "block_id": "a"}]}},
         "invalid_arguments", "duplicate block_id"),
        ({"user_id": STAFF, "view": {"type": "home", "blocks": []}, "hash": "old"},
         "hash_conflict", None),
    ]
    for kwargs, code, detail in cases:
        with pytest.raises(SlackApiError) as raised:
            await error(**kwargs)
        assert raised.value.response["error"] == code
        if detail:
            assert detail in str(raised.value.response["response_metadata"]["messages"])
    emu.fail_next("views.publish", error="ratelimited", retry_after=2)
    with pytest.raises(SlackApiError) as raised:
        await client.views_publish(user_id=STAFF, view={"type": "home", "blocks": []})
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "2"

    await emu.open_home(STAFF)
    [event] = [e["event"] for e in receiver.events() if e["event"]["type"] == "app_home_opened"]
    assert (event["user"], event["tab"], event["view"]["id"]) == (STAFF, "home", view["id"])
