"""Issue 13: customer satisfaction. A resolved case asks its customer for a one-click rating in
their thread (sampled, at most once per customer per cooldown); the customer's click is stored,
thanked, shown in the case's support thread and counted in the report. Played through the real
app (signed HTTP from the Slack emulator, the model server) on both databases."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.errors import RatingRefused
from bot.process.report import as_csv, as_table, figures
from bot.toolkit import texts
from bot.toolkit.ids import RatingAction
from sandbox.model_server import ToolCalls
from storage.models import Rating, RatingCooldown, utcnow
from storage.reports import build_report
from tests.conftest import CUSTOMER, CUSTOMERS, GUEST, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows, conversation, ephemerals_for

RATINGS = {"enabled": True, "sample": 1, "cooldown": "1h"}


async def command(slack, text, user=STAFF):
    result = await slack.slash_command("/handoff", text, user=user, channel=SUPPORT)
    assert result.status == 200, result.body
    return result.json()["text"]


async def a_case(bot, slack, model, *, text="Do you have it in XL?", thread_ts=None):
    """The customer asks; the model asks staff. Returns the customer's thread ts and the
    question's post in #support."""
    model.script(ToolCalls([("askHuman", {"question": "Which size?"})]))
    asked_before = {m["ts"] for m in slack.messages(SUPPORT) if "Which size" in str(m)}
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text, thread_ts=thread_ts)
    # This question's post, not an earlier case's (they ask the same).
    post = await slack.wait_for_message(
        SUPPORT, predicate=lambda m: "Which size" in str(m) and m["ts"] not in asked_before)
    await bot.services.idle()
    return thread_ts or ts, post


def prompts(slack, thread_ts):
    """The rating prompts in the customer's thread (buttons or, once answered, the thanks)."""
    return [m for m in bot_posts(slack, CUSTOMERS, thread_ts)
            if "rating-" in str(m.get("blocks")) or "Thank you for your feedback" in m["text"]]


def rating_action_ids(message):
    return [element["action_id"] for block in message.get("blocks") or []
            for element in block.get("elements") or [] if "action_id" in element]


async def test_resolve_asks_the_customer_and_their_click_is_stored_and_shown(start, slack,
                                                                             model):
    bot = await start(ratings=RATINGS)
    ts, post = await a_case(bot, slack, model)
    assert "Done" in await command(slack, "resolve 1")
    prompt = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: texts.rating_prompt() in m["text"])
    assert rating_action_ids(prompt) == [RatingAction.good, RatingAction.ok, RatingAction.bad]
    [rating] = await all_rows(bot, Rating)
    assert (rating.conversation_id, rating.customer_user_id, rating.score) == (1, CUSTOMER, None)

    # Someone else in the shared channel cannot rate for the customer.
    await slack.click_button(user=GUEST, channel=CUSTOMERS, message_ts=prompt["ts"],
                             action_id=RatingAction.bad)
    refused = await slack.wait_for_call("chat.postEphemeral",
                                        lambda c: c.params["user"] == GUEST)
    assert refused.params["text"] == texts.rating_not_yours()
    assert (await all_rows(bot, Rating))[0].score is None

    # The customer's click: stored, the buttons become a thank-you, staff see it.
    await slack.click_button(user=CUSTOMER, channel=CUSTOMERS, message_ts=prompt["ts"],
                             action_id=RatingAction.good)
    await bot.services.idle()
    [rating] = await all_rows(bot, Rating)
    assert rating.score == 3 and rating.rated_at is not None
    thanked = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["ts"] == prompt["ts"]
        and m["text"] == texts.rating_thanks(3))
    assert rating_action_ids(thanked) == []
    note = await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                        predicate=lambda m: "rated" in m["text"])
    assert note["text"] == texts.rating_note(1, 3)

    # The first click counts: a later one (a stale client, another replica) changes nothing.
    with pytest.raises(RatingRefused):
        await bot.services.ratings.rate(rating_id=rating.id, score=1, user_id=CUSTOMER)
    assert (await all_rows(bot, Rating))[0].score == 3
    assert not ephemerals_for(slack, CUSTOMER)


async def test_the_check_mark_reaction_asks_too(start, slack, model):
    bot = await start(ratings=RATINGS)
    ts, _ = await a_case(bot, slack, model)
    await slack.add_reaction(CUSTOMERS, ts, "white_check_mark", STAFF)
    await bot.services.idle()
    assert (await conversation(bot)).status == "resolved"
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: texts.rating_prompt() in m["text"])
    assert len(await all_rows(bot, Rating)) == 1


async def test_a_customer_is_asked_once_per_cooldown(start, slack, model):
    bot = await start(ratings=RATINGS)
    ts, _ = await a_case(bot, slack, model)
    await command(slack, "resolve 1")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: texts.rating_prompt() in m["text"])

    # The customer writes again in the thread (the case reopens), is helped, resolved again.
    await a_case(bot, slack, model, text="And in XXL?", thread_ts=ts)
    assert (await conversation(bot)).status == "open"
    await command(slack, "resolve 1")
    # A new case of the same customer, resolved within the cooldown: no prompt either.
    other, _ = await a_case(bot, slack, model, text="Another question")
    case = await conversation(bot, 2)
    await command(slack, f"resolve {case.case_number}")
    await bot.services.idle()
    assert (await conversation(bot, 2)).status == "resolved"
    assert len(prompts(slack, ts)) == 1 and prompts(slack, other) == []
    assert len(await all_rows(bot, Rating)) == 1
    [cooldown] = await cooldowns(bot)
    assert cooldown.customer_user_id == CUSTOMER


async def cooldowns(bot):
    async with bot.services.sessions() as session:
        return list((await session.execute(select(RatingCooldown))).scalars())


async def test_once_the_cooldown_has_passed_the_customer_is_asked_again(start, slack, model):
    bot = await start(ratings={**RATINGS, "cooldown": "0s"})
    ts, _ = await a_case(bot, slack, model)
    await command(slack, "resolve 1")
    await a_case(bot, slack, model, text="And in XXL?", thread_ts=ts)
    await command(slack, "resolve 1")
    await bot.services.idle()
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: len(prompts(slack, ts)) == 2)
    assert len(await all_rows(bot, Rating)) == 2


@pytest.mark.parametrize("ratings", [{**RATINGS, "sample": 0}, {**RATINGS, "enabled": False}])
async def test_sample_zero_or_disabled_never_asks(start, slack, model, ratings):
    bot = await start(ratings=ratings)
    ts, post = await a_case(bot, slack, model)
    await command(slack, "resolve 1")
    await bot.services.idle()
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "resolved by" in m["text"])
    assert prompts(slack, ts) == [] and await all_rows(bot, Rating) == []
    assert await cooldowns(bot) == []


async def test_the_report_counts_ratings(start, slack, model):
    bot = await start(ratings={**RATINGS, "cooldown": "0s"})
    ts, _ = await a_case(bot, slack, model)
    await command(slack, "resolve 1")
    first = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: texts.rating_prompt() in m["text"])
    await slack.click_button(user=CUSTOMER, channel=CUSTOMERS, message_ts=first["ts"],
                             action_id=RatingAction.bad)
    other, _ = await a_case(bot, slack, model, text="Another question")
    await command(slack, f"resolve {(await conversation(bot, 2)).case_number}")
    second = await slack.wait_for_message(
        CUSTOMERS, thread_ts=other, predicate=lambda m: texts.rating_prompt() in m["text"])
    await slack.click_button(user=CUSTOMER, channel=CUSTOMERS, message_ts=second["ts"],
                             action_id=RatingAction.good)
    await a_case(bot, slack, model, text="A third one")
    await command(slack, f"resolve {(await conversation(bot, 3)).case_number}")
    await bot.services.idle()
    assert [r.score for r in await all_rows(bot, Rating)] == [1, 3, None]

    async with bot.services.sessions() as session:
        report = await build_report(session, since=utcnow().replace(year=2000))
    numbers = figures(report)
    assert (numbers["ratings_asked"], numbers["ratings_given"], numbers["ratings_good"],
            numbers["ratings_ok"], numbers["ratings_bad"]) == (3, 2, 1, 0, 1)
    assert numbers["ratings_average"] == 2.0
    assert "1 / 0 / 1, average 2.00 of 3 (2 of 3 asked)" in as_table(report)
    assert "ratings_average,2.0" in as_csv(report)


async def test_replicas_resolving_at_once_ask_a_customer_once(start, slack, model):
    """Two replicas on one database resolve two cases of the same customer at the same time:
    the cooldown row lets one prompt through."""
    first = await start(ratings=RATINGS)
    second = await start(ratings=RATINGS)
    one, _ = await a_case(first, slack, model)
    two, _ = await a_case(first, slack, model, text="Another question")
    numbers = [(await conversation(first, n)).case_number for n in (1, 2)]
    await asyncio.gather(first.services.handoff.resolve(case_number=numbers[0], by=STAFF),
                         second.services.handoff.resolve(case_number=numbers[1], by=STAFF))
    await first.services.idle()
    await second.services.idle()
    assert len(await all_rows(first, Rating)) == 1
    await slack.wait_for_message(
        CUSTOMERS, predicate=lambda m: texts.rating_prompt() in m["text"])
    assert len(prompts(slack, one)) + len(prompts(slack, two)) == 1
