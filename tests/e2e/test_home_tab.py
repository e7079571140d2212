"""Issue 14: the staff queue on the app's Home tab (published on `app_home_opened`, refreshed
when cases change, with the case card's buttons) and in `/handoff list`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.toolkit import texts
from bot.toolkit.ids import CaseAction, RequestAction
from sandbox.model_server import Reply, ToolCalls
from storage.models import HomeChange, HomeViewer
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, STAFF_2, SUPPORT
from tests.e2e.helpers import conversation, requests

FAST = {"home": {"refresh_every": timedelta(milliseconds=100)}}


def shown(view: dict[str, Any]) -> str:
    return str(view["blocks"])


def buttons(view: dict[str, Any]) -> dict[str, str]:
    """action id -> value of every button of a view (the last one wins)."""
    return {e["action_id"]: e.get("value") for b in view["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


async def published_for(slack: Any, user: str, predicate: Any = None, *, since: int = 0
                        ) -> dict[str, Any]:
    """The next Home view published for `user` (from call index `since`) matching `predicate`."""
    call = await slack.wait_for_call(
        "views.publish", lambda c: c.params.get("user_id") == user and c.response.get("ok")
        and (predicate is None or predicate(c.response["view"])), since=since)
    return call.response["view"]


async def home_settled(bot: Any) -> None:
    """Wait until no case change waits to be turned into a Home view and no view is due."""
    for _ in range(200):
        async with bot.services.sessions() as session:
            changes = list((await session.execute(select(HomeChange))).scalars())
            due = [v for v in (await session.execute(select(HomeViewer))).scalars()
                   if v.due_at is not None]
        if not changes and not due:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("Home views never settled")


async def viewer_when(bot: Any, user: str, predicate: Any) -> HomeViewer:
    """The person's Home row once `predicate` holds (the bot records a publish's outcome just
    after Slack answers it)."""
    for _ in range(200):
        async with bot.services.sessions() as session:
            viewer = await session.get(HomeViewer, user)
        if viewer is not None and predicate(viewer):
            return viewer
        await asyncio.sleep(0.05)
    raise AssertionError(f"Home row of {user} never matched: {viewer and vars(viewer)}")


async def handed_to_humans(bot: Any, slack: Any, model: Any) -> dict[str, Any]:
    """Case #1, given to the support team by the model (unclaimed)."""
    model.script(ToolCalls([("transferToHuman", {"reason": "customer asked for a person"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to talk to a person")
    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return card


async def test_staff_get_their_queue_and_others_a_short_note(start, slack, model):
    bot = await start(**FAST)
    await handed_to_humans(bot, slack, model)

    await slack.open_home(STAFF)
    view = await published_for(slack, STAFF)
    assert view["type"] == "home"
    text = shown(view)
    assert "Your cases" in text and "Unclaimed" in text and "Questions waiting longest" in text
    assert "Case #1" in text and "Carol Customer" in text and "Unclaimed" in text
    assert "support thread" in text  # a link to the case's support thread
    assert buttons(view)[CaseAction.take] == "1:humans"  # the card's own value: stale-checked
    assert CaseAction.resolve in buttons(view)

    await slack.open_home(CUSTOMER)
    other = await published_for(slack, CUSTOMER)
    assert shown(other).count("for the support team") == 1
    assert "Case #1" not in shown(other) and not buttons(other)

    # The Messages tab publishes nothing.
    calls = len(slack.calls_to("views.publish"))
    await slack.open_home(STAFF_2, tab="messages")
    await slack.open_home(STAFF_2)
    await published_for(slack, STAFF_2)
    assert len(slack.calls_to("views.publish")) == calls + 1


async def test_home_is_refreshed_after_a_take_and_a_resolve(start, slack, model):
    bot = await start(**FAST)
    card = await handed_to_humans(bot, slack, model)
    for user in (STAFF, STAFF_2, CUSTOMER):
        await slack.open_home(user)
        await published_for(slack, user)
    await published_for(slack, STAFF, lambda v: "Case #1" in shown(v))
    customer_views = len([c for c in slack.calls_to("views.publish")
                          if c.params["user_id"] == CUSTOMER])

    # Sky takes the case from the card in #support: it is Sky's now, no longer unclaimed.
    since = len(slack.calls)
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take)
    skys = await published_for(slack, STAFF_2, lambda v: f"Owned by <@{STAFF_2}>" in shown(v),
                               since=since)
    assert "Your cases* (1)" in shown(skys) and "No unclaimed cases" in shown(skys)
    sams = await published_for(slack, STAFF, lambda v: "Case #1" not in shown(v), since=since)
    assert "No unclaimed cases" in shown(sams)

    since = len(slack.calls)
    await slack.slash_command("/handoff", "resolve 1", user=STAFF_2, channel=SUPPORT)
    skys = await published_for(slack, STAFF_2, lambda v: "Case #1" not in shown(v), since=since)
    assert "Nothing assigned to you" in shown(skys)
    # Non-staff views are never refreshed by case changes.
    await bot.services.home.refresh_once()
    assert len([c for c in slack.calls_to("views.publish")
                if c.params["user_id"] == CUSTOMER]) == customer_views
    async with bot.services.sessions() as session:
        assert not list((await session.execute(select(HomeChange))).scalars())


async def test_buttons_on_home_work_and_a_stale_one_is_refused(start, slack, model):
    bot = await start(**FAST)
    await handed_to_humans(bot, slack, model)
    await slack.open_home(STAFF)
    await slack.open_home(STAFF_2)
    await published_for(slack, STAFF, lambda v: "Case #1" in shown(v))
    stale = await published_for(slack, STAFF_2, lambda v: "Case #1" in shown(v))
    assert buttons(stale)[CaseAction.take] == "1:humans"

    # Sam takes the case over from Home.
    since = len(slack.calls)
    result = await slack.click_home_button(user=STAFF, action_id=CaseAction.take)
    assert result.ok
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF
    mine = await published_for(slack, STAFF, lambda v: "Owned by" in shown(v), since=since)
    assert buttons(mine)[CaseAction.take] == f"1:{STAFF}"

    # Sky clicks Take over on Home as Sky's Slack still shows it (drawn for `humans`):
    # refused, the case stays Sam's, and Sky's redrawn Home says why.
    since = len(slack.calls)
    result = await slack.click_home_button(user=STAFF_2, action_id=CaseAction.take,
                                           seen=stale)
    assert result.ok
    told = await published_for(slack, STAFF_2, lambda v: "warning" in shown(v), since=since)
    assert texts.stale_button(1, STAFF, "/handoff").split("\n")[0][:40] in shown(told)
    assert (await conversation(bot)).assignee == STAFF
    # The notice is shown once: the next view is without it.
    since = len(slack.calls)
    await slack.open_home(STAFF_2)
    again = await published_for(slack, STAFF_2, since=since)
    assert "warning" not in shown(again)

    # Resolve from Home.
    since = len(slack.calls)
    await slack.click_home_button(user=STAFF, action_id=CaseAction.resolve)
    await bot.services.idle()
    assert (await conversation(bot)).status == "resolved"
    await published_for(slack, STAFF, lambda v: "Case #1" not in shown(v), since=since)


async def test_use_this_from_home_reaches_the_customer(start, slack, model):
    bot = await start(**FAST)
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?",
                                          "suggested_answer": "Yes, from next spring."})]),
                 Reply("Final answer."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    await slack.open_home(STAFF)
    view = await published_for(slack, STAFF, lambda v: "Questions waiting" in shown(v)
                               and "Can we ship to Mars?" in shown(v))
    assert "next spring" in shown(view)
    assert RequestAction.use_suggestion in buttons(view)

    await slack.click_home_button(user=STAFF, action_id=RequestAction.use_suggestion)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    [request] = await requests(bot)
    assert (request.status, request.suggestion_outcome) == ("answered", "used")


async def test_handoff_list_shows_the_same_queue(start, slack, model):
    bot = await start(**FAST)
    await handed_to_humans(bot, slack, model)
    result = await slack.slash_command("/handoff", "list", user=STAFF, channel=SUPPORT)
    answer = result.json()
    assert answer["response_type"] == "ephemeral"
    assert "#1 Carol Customer" in answer["text"]
    text = str(answer["blocks"])
    assert "Unclaimed" in text and "Case #1" in text
    values = {e["action_id"]: e["value"] for b in answer["blocks"] if b["type"] == "actions"
              for e in b["elements"]}
    assert values[CaseAction.take] == "1:humans"
    # Its buttons are the card's: a click on the ephemeral takes the case.
    slack.ephemerals.append({"channel": SUPPORT, "user": STAFF, "ts": "1.000001",
                             "thread_ts": None, "text": answer["text"],
                             "blocks": answer["blocks"]})
    await slack.click_ephemeral_button(user=STAFF, ephemeral_ts="1.000001",
                                       action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF

    refused = await slack.slash_command("/handoff", "list", user=CUSTOMER, channel=CUSTOMERS)
    assert refused.json()["text"] == texts.not_staff()
    assert not refused.json().get("blocks")


async def test_a_rate_limited_publish_loses_no_case_work_and_is_retried(start, slack, model):
    bot = await start(**FAST)
    card = await handed_to_humans(bot, slack, model)
    await slack.open_home(STAFF)
    await published_for(slack, STAFF, lambda v: "Case #1" in shown(v))
    await home_settled(bot)

    slack.fail_next("views.publish", error="ratelimited", retry_after=1)
    since = len(slack.calls)
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF_2  # the case work is done
    await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                 predicate=lambda m: f"<@{STAFF_2}>" in m["text"])
    failed = await slack.wait_for_call("views.publish", lambda c: not c.response.get("ok"),
                                       since=since)
    assert failed.status == 429
    # Retried after Retry-After, without another change.
    view = await published_for(slack, STAFF, lambda v: "Case #1" not in shown(v), since=since)
    assert "No unclaimed cases" in shown(view)
    await viewer_when(bot, STAFF, lambda v: v.failures == 0 and v.due_at is None)


async def test_a_refused_publish_waits_for_the_next_change(start, slack, model):
    bot = await start(**FAST)
    card = await handed_to_humans(bot, slack, model)
    await slack.open_home(STAFF)
    await published_for(slack, STAFF, lambda v: "Case #1" in shown(v))
    await home_settled(bot)

    slack.fail_next("views.publish", error="invalid_arguments")
    since = len(slack.calls)
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF_2
    await slack.wait_for_call("views.publish", lambda c: not c.response.get("ok"), since=since)
    await viewer_when(bot, STAFF, lambda v: (v.failures, v.last_error, v.due_at) == (
        1, "invalid_arguments", None))

    # The next change brings the view up to date.
    since = len(slack.calls)
    await slack.slash_command("/handoff", "resolve 1", user=STAFF_2, channel=SUPPORT)
    view = await published_for(slack, STAFF, since=since)
    assert "Case #1" not in shown(view)


async def test_two_replicas_publish_each_change_once_per_interval(start, slack, model):
    slow = {"home": {"refresh_every": timedelta(seconds=30)}}
    first = await start(**slow)
    second = await start(**slow)
    await handed_to_humans(first, slack, model)
    await slack.open_home(STAFF)
    await published_for(slack, STAFF)
    # Several changes within the interval: nothing more is published for Sam until it passes.
    await slack.slash_command("/handoff", "take 1", user=STAFF_2, channel=SUPPORT)
    await slack.slash_command("/handoff", "bot 1", user=STAFF_2, channel=SUPPORT)
    for replica in (first, second):
        await replica.services.idle()
        await replica.services.home.refresh_once()
    assert len([c for c in slack.calls_to("views.publish")
                if c.params["user_id"] == STAFF]) == 1
    async with first.services.sessions() as session:
        viewer = await session.get(HomeViewer, STAFF)
        assert viewer.due_at is not None  # due, held back by the interval, not lost


async def test_a_view_due_when_the_bot_stops_is_published_by_the_next_one(start, slack, model):
    """The need to publish is in the database: a bot that stops with a view due (Slack said
    wait) leaves it to the next process."""
    first = await start(**FAST)
    await handed_to_humans(first, slack, model)
    slack.fail_next("views.publish", error="ratelimited", retry_after=1)
    await slack.open_home(STAFF)
    await slack.wait_for_call("views.publish", lambda c: c.status == 429)
    await viewer_when(first, STAFF, lambda v: v.failures == 1 and v.due_at is not None)
    await first.stop()
    started = len(slack.calls)
    second = await start(**FAST)
    view = await published_for(slack, STAFF, lambda v: "Case #1" in shown(v), since=started)
    assert "Unclaimed" in shown(view)
    await viewer_when(second, STAFF, lambda v: v.failures == 0)


async def test_a_redelivered_app_home_opened_records_one_viewer(start, slack, model):
    bot = await start(**FAST)
    delivered = await slack.open_home(STAFF)
    await published_for(slack, STAFF)
    await slack.redeliver(delivered.event_id)
    async with bot.services.sessions() as session:
        assert [v.user_id for v in (await session.execute(select(HomeViewer))).scalars()] == [
            STAFF]
    await home_settled(bot)
