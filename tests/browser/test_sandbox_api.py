"""Issue 7: the sandbox page's HTTP API without a browser: people act through it, the real bot
answers through the emulator, reset starts from nothing, each person sees only their own
ephemeral messages and modals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from sandbox.demo_workspace import ACME, CAROL, SAM, SKY, SUPPORT
from storage.models import Conversation
from tests.browser.conftest import RunningSandbox

State = dict[str, Any]


@pytest.fixture
async def http(sandbox_site: RunningSandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox_site.url) as session:
        yield session


async def act(http: aiohttp.ClientSession, path: str, status: int = 200, **body: Any
              ) -> dict[str, Any]:
    async with http.post(path, json=body) as response:
        answer = await response.json(content_type=None) if response.status != 400 else {}
        assert response.status == status, (path, response.status, answer)
        return answer


async def state(http: aiohttp.ClientSession, viewer: str) -> State:
    async with http.get("/api/state", params={"as": viewer}) as response:
        assert response.status == 200
        return await response.json()


async def until(http: aiohttp.ClientSession, viewer: str, check: Callable[[State], Any],
                timeout: float = 10.0) -> Any:
    """Poll the page's state until `check` returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = check(await state(http, viewer))
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last state: {await state(http, viewer)}")
        await asyncio.sleep(0.05)


def channel(s: State, channel_id: str) -> dict[str, Any]:
    return next(c for c in s["channels"] if c["id"] == channel_id)


def thread(s: State, channel_id: str, ts: str) -> list[dict[str, Any]]:
    return [m for m in channel(s, channel_id)["messages"] if m.get("thread_ts") == ts
            and m["ts"] != ts]


def bot_reply(channel_id: str, ts: str, text: str) -> Callable[[State], Any]:
    """The bot's reply containing `text` once final (a streamed answer has stopped)."""
    return lambda s: next((m for m in thread(s, channel_id, ts)
                           if m.get("bot_id") and text in m.get("text", "")
                           and not m.get("streaming")), None)


async def history(http: aiohttp.ClientSession, channel_id: str, ts: str) -> dict[str, Any] | None:
    async with http.get("/api/history", params={"channel": channel_id, "thread_ts": ts}) as r:
        return (await r.json())["conversation"]


async def test_customer_posts_and_the_bot_answers(http: aiohttp.ClientSession) -> None:
    page = await state(http, CAROL)
    assert page["model"]["offline"] and page["model"]["name"] == "sandbox-offline"
    assert [c["member"] for c in page["channels"]] == [True, False, False]

    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "What are your opening hours?"})
    answer = await until(http, CAROL, bot_reply(ACME, posted["ts"], "Monday to Friday"))
    assert answer["thread_ts"] == posted["ts"]

    stored = await history(http, ACME, posted["ts"])
    # Answered by the bot alone: staff never saw it, so it has no case number.
    assert stored is not None and stored["case_number"] is None
    assert [(m["role"], m["text"]) for m in stored["messages"]] == [
        ("user", "What are your opening hours?"), ("assistant", answer["text"])]


async def test_reset_clears_workspace_and_database(http: aiohttp.ClientSession,
                                                   sandbox_site: RunningSandbox) -> None:
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "How much does Pro cost?"})
    await until(http, CAROL, bot_reply(ACME, posted["ts"], "$25"))
    old_bot = sandbox_site.sandbox.bot

    answer = await act(http, "/api/reset", **{"as": CAROL})
    assert answer == {"ok": True, "database_cleared": True}

    page = await state(http, CAROL)
    assert page["ready"] and all(not c["messages"] for c in page["channels"])
    assert page["ephemerals"] == [] and page["views"] == []
    assert sandbox_site.sandbox.bot is not old_bot
    assert await history(http, ACME, posted["ts"]) is None
    async with sandbox_site.sandbox.bot.services.sessions() as session:
        assert (await session.execute(select(func.count(Conversation.id)))).scalar_one() == 0

    again = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                               "text": "Do you ship to Mars?"})
    case = await until(http, SAM, lambda s: next(
        (m for m in channel(s, SUPPORT)["messages"] if "Case #1" in json.dumps(m)), None))
    assert "Do you ship to Mars?" in json.dumps(case["blocks"])
    assert (await history(http, ACME, again["ts"]))["case_number"] == 1


async def test_modal_answer_reaches_the_customer(http: aiohttp.ClientSession) -> None:
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "Can I pay by bank transfer?"})
    case = await until(http, SAM, lambda s: next(
        (m for m in channel(s, SUPPORT)["messages"] if "Case #1" in json.dumps(m)), None))
    button = next(e for b in case["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if e["text"]["text"] == "Answer")

    await act(http, "/api/click", **{"as": SAM, "channel": SUPPORT, "ts": case["ts"],
                                     "action_id": button["action_id"], "value": button["value"]})
    view = await until(http, SAM, lambda s: s["views"][-1] if s["views"] else None)
    assert (await state(http, SKY))["views"] == []  # a modal is only on its opener's screen
    field = next(b for b in view["blocks"] if b["type"] == "input")

    refused = await act(http, "/api/view", **{"as": SAM, "view_id": view["id"], "values": {
        field["block_id"]: {field["element"]["action_id"]: "  "}}})
    assert refused["errors"] == {field["block_id"]: "Write an answer first."}
    await act(http, "/api/view", **{"as": SAM, "view_id": view["id"], "values": {
        field["block_id"]: {field["element"]["action_id"]: "Yes, IBAN on the invoice."}}})

    await until(http, CAROL, bot_reply(ACME, posted["ts"], "Yes, IBAN on the invoice."))
    assert (await state(http, SAM))["views"] == []
    stored = await history(http, SUPPORT, case["ts"])  # found from the support thread too
    assert stored["human_requests"][0]["answered_by"] == "Sam"


async def test_commands_whisper_only_to_their_caller(http: aiohttp.ClientSession) -> None:
    await act(http, "/api/message", **{"as": SAM, "channel": SUPPORT, "text": "/handoff help"})
    whispers = (await state(http, SAM))["ephemerals"]
    assert len(whispers) == 1 and "/handoff take 42" in whispers[0]["text"]
    assert (await state(http, SKY))["ephemerals"] == []

    await act(http, "/api/message", **{"as": SAM, "channel": SUPPORT, "text": "/nope"})
    assert "not a valid command" in (await state(http, SAM))["ephemerals"][-1]["text"]
    await act(http, "/api/ephemeral/dismiss", **{"as": SAM, "ts": whispers[0]["ts"]})
    assert len((await state(http, SAM))["ephemerals"]) == 1


async def test_shortcut_and_reactions_act_on_the_case(http: aiohttp.ClientSession) -> None:
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "I want to talk to a person"})
    await until(http, CAROL, lambda s: thread(s, ACME, posted["ts"]))
    await act(http, "/api/shortcut", **{"as": SAM, "channel": ACME, "ts": posted["ts"],
                                        "callback_id": "case-take-shortcut"})
    stored = await history(http, ACME, posted["ts"])
    for _ in range(100):
        if stored["assignee"] == SAM:
            break
        await asyncio.sleep(0.05)
        stored = await history(http, ACME, posted["ts"])
    assert stored["assignee"] == SAM

    await act(http, "/api/reaction", **{"as": SAM, "channel": ACME, "ts": posted["ts"],
                                        "name": "white_check_mark"})
    message = next(m for m in channel(await state(http, SAM), ACME)["messages"]
                   if m["ts"] == posted["ts"])
    assert {"name": "white_check_mark", "users": [SAM], "count": 1} in message["reactions"]
    for _ in range(100):
        if (await history(http, ACME, posted["ts"]))["status"] == "resolved":
            break
        await asyncio.sleep(0.05)
    assert (await history(http, ACME, posted["ts"]))["status"] == "resolved"

    await act(http, "/api/reaction", **{"as": SAM, "channel": ACME, "ts": posted["ts"],
                                        "name": "white_check_mark"})  # the same again: undo
    message = next(m for m in channel(await state(http, SAM), ACME)["messages"]
                   if m["ts"] == posted["ts"])
    assert "white_check_mark" not in json.dumps(message.get("reactions"))


async def test_refusals(http: aiohttp.ClientSession) -> None:
    await act(http, "/api/message", 400, **{"as": "U0NOBODY", "channel": ACME, "text": "hi"})
    refused = await act(http, "/api/message", 409, **{"as": CAROL, "channel": SUPPORT,
                                                      "text": "let me in"})
    assert "not a member" in refused["error"]
    assert channel(await state(http, SAM), SUPPORT)["messages"] == []


async def test_websocket_announces_changes(http: aiohttp.ClientSession) -> None:
    async with http.ws_connect("/api/events") as socket:
        first = await socket.receive_json(timeout=5)
        await act(http, "/api/message", **{"as": CAROL, "channel": ACME, "text": "Hello"})
        later = await socket.receive_json(timeout=5)
    assert first["type"] == later["type"] == "changed"
    assert later["version"] > first["version"]


async def test_buttons_of_an_ephemeral_message(http: aiohttp.ClientSession) -> None:
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "Do you ship to Mars?"})
    case = await until(http, SAM, lambda s: next(
        (m for m in channel(s, SUPPORT)["messages"] if "Case #1" in json.dumps(m)), None))
    await act(http, "/api/message", **{"as": SAM, "channel": SUPPORT, "thread_ts": case["ts"],
                                       "text": "Yes, from next spring."})
    await until(http, CAROL, bot_reply(ACME, posted["ts"], "from next spring"))

    # A second reply, with no question pending: the bot asks Sam (only Sam) what he meant.
    await act(http, "/api/message", **{"as": SAM, "channel": SUPPORT, "thread_ts": case["ts"],
                                       "text": "Shipping there is free, by the way."})
    choice = await until(http, SAM, lambda s: next(
        (e for e in s["ephemerals"] if e.get("blocks")), None))
    assert choice["thread_ts"] == case["ts"] and (await state(http, SKY))["ephemerals"] == []
    button = next(e for b in choice["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if "once" in e["text"]["text"])
    await act(http, "/api/click", **{"as": SAM, "channel": SUPPORT, "ts": choice["ts"],
                                     "action_id": button["action_id"], "ephemeral": True})

    relayed = await until(http, CAROL, lambda s: next(
        (m for m in thread(s, ACME, posted["ts"]) if "free" in m.get("text", "")), None))
    assert relayed["username"] == "Sam"
    stored = await history(http, ACME, posted["ts"])
    assert stored["messages"][-1]["metadata"]["provider"] == "human"


async def test_the_page_links_the_report_of_its_cases(http: aiohttp.ClientSession) -> None:
    """Issue 13: the sandbox shows `python -m bot report` of its own database."""
    async with http.get("/") as response:
        assert 'href="/report"' in await response.text()
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "What are your opening hours?"})
    await until(http, CAROL, bot_reply(ACME, posted["ts"], "Monday to Friday"))
    async with http.get("/report", params={"format": "json"}) as response:
        assert response.status == 200
        figures = await response.json()
    assert figures["conversations"] == 1 and figures["needed_person"] == 0
    assert figures["model_calls"] >= 1 and figures["prompt_tokens"] > 0
    assert figures["cost_usd"] == 0  # the offline demo model has no price
    async with http.get("/report") as response:
        assert response.content_type == "text/plain"
        assert "Conversations" in await response.text()
    async with http.get("/report", params={"format": "xml"}) as response:
        assert response.status == 400


async def test_the_home_tab_through_the_page_api(http: aiohttp.ClientSession) -> None:
    """Issue 14: a person opens the app's Home tab; staff see the queue and act from it, with
    the suggestion the offline model drafted."""
    posted = await act(http, "/api/message", **{"as": CAROL, "channel": ACME,
                                                "text": "Do you ship to Mars?"})
    await until(http, SAM, lambda s: any("Case #1" in json.dumps(m)
                                         for m in channel(s, SUPPORT)["messages"]))
    await act(http, "/api/home/open", **{"as": SAM})
    home = await until(http, SAM, lambda s: s["home"] if s["home"] and "Case #1" in json.dumps(
        s["home"]["blocks"]) else None)
    assert "Questions waiting longest" in json.dumps(home["blocks"])
    assert (await state(http, SKY))["home"] is None  # Sky has not opened it

    await act(http, "/api/home/click", **{"as": SAM, "action_id": "request-use-suggestion"})
    await until(http, CAROL, bot_reply(ACME, posted["ts"], "We ship worldwide"))
    await until(http, SAM, lambda s: "Case #1" not in json.dumps(s["home"]["blocks"]))

    await act(http, "/api/home/open", **{"as": CAROL})
    carol = await until(http, CAROL, lambda s: s["home"])
    assert "for the support team" in json.dumps(carol["blocks"])
    refused = await act(http, "/api/home/click", 409, **{"as": CAROL, "action_id": "case-take"})
    assert "case-take" in refused["error"]  # her Home has no such button
