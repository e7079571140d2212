"""Issue 15: every bot answer carries 👍/👎 feedback buttons (a `context_actions` block). The
customer's click is stored with the answer (the first per person counts); a 👎 puts the case in
front of staff with the question and the answer; someone else's click records nothing; the
report counts 👍/👎 per week. Played through the real app on both databases."""

from __future__ import annotations

from bot.process.report import as_table, figures
from bot.toolkit import texts
from bot.toolkit.ids import FEEDBACK_ACTION
from sandbox.model_server import Reply
from storage.models import AnswerFeedback, Message, utcnow
from storage.reports import build_report
from tests.conftest import CUSTOMER, CUSTOMERS, GUEST, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows

ANSWER = "Restart the router, then sign in again."


def buttons(message):
    [block] = [b for b in message.get("blocks") or [] if b["type"] == "context_actions"]
    [element] = block["elements"]
    assert element["type"] == "feedback_buttons" and element["action_id"] == FEEDBACK_ACTION
    return element


async def an_answer(bot, slack, model, question="My internet is down, what do I do?"):
    model.script(Reply(ANSWER))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, question)
    answer = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    return ts, answer


async def click(slack, answer, *, user, positive):
    element = buttons(answer)
    side = "positive_button" if positive else "negative_button"
    return await slack.click_button(user=user, channel=CUSTOMERS, message_ts=answer["ts"],
                                    action_id=FEEDBACK_ACTION, value=element[side]["value"])


async def test_thumbs_down_is_stored_and_shown_to_staff_with_question_and_answer(bot, slack,
                                                                                model):
    _, answer = await an_answer(bot, slack, model)
    assert answer["text"] == ANSWER
    element = buttons(answer)
    assert element["positive_button"]["text"]["text"] == "👍"
    assert element["negative_button"]["text"]["text"] == "👎"

    result = await click(slack, answer, user=CUSTOMER, positive=False)
    assert result.status == 200
    note = await slack.wait_for_message(SUPPORT, predicate=lambda m: "unhelpful" in m["text"])
    await bot.services.idle()
    assert "My internet is down, what do I do?" in note["text"]
    assert ANSWER in note["text"]
    [row] = await all_rows(bot, AnswerFeedback)
    [stored] = [m for m in await all_rows(bot, Message) if m.role == "assistant"]
    assert (row.message_id, row.user_id, row.positive) == (stored.id, CUSTOMER, False)
    assert row.created_at is not None

    # A second click (a change of mind, a double delivery) records nothing and posts nothing.
    await click(slack, answer, user=CUSTOMER, positive=True)
    told = await slack.wait_for_call("chat.postEphemeral",
                                     lambda c: c.params["user"] == CUSTOMER)
    assert told.params["text"] == texts.feedback_already_given()
    await bot.services.idle()
    assert [(r.positive) for r in await all_rows(bot, AnswerFeedback)] == [False]
    assert len([m for m in bot_posts(slack, SUPPORT) if "unhelpful" in m["text"]]) == 1


async def test_thumbs_up_is_stored_without_a_staff_post(bot, slack, model):
    _, answer = await an_answer(bot, slack, model)
    await click(slack, answer, user=CUSTOMER, positive=True)
    await bot.services.idle()
    [row] = await all_rows(bot, AnswerFeedback)
    assert row.positive is True
    assert not [m for m in bot_posts(slack, SUPPORT) if "unhelpful" in m["text"]]


async def test_thumbs_down_from_someone_else_records_nothing(bot, slack, model):
    _, answer = await an_answer(bot, slack, model)
    for user in (GUEST, STAFF):
        await click(slack, answer, user=user, positive=False)
        told = await slack.wait_for_call("chat.postEphemeral",
                                         lambda c, u=user: c.params["user"] == u)
        assert told.params["text"] == texts.feedback_not_yours()
    await bot.services.idle()
    assert await all_rows(bot, AnswerFeedback) == []
    assert not [m for m in bot_posts(slack, SUPPORT) if "unhelpful" in m["text"]]


async def test_a_forged_value_records_nothing(bot, slack, model):
    _, answer = await an_answer(bot, slack, model)
    for value in ("down:999999", "sideways:1", "down:abc"):
        answer["blocks"][-1]["elements"][0]["negative_button"]["value"] = value
        stored = slack.ws.message(slack.ws.channel(CUSTOMERS), answer["ts"])
        stored["blocks"] = answer["blocks"]
        result = await click(slack, answer, user=CUSTOMER, positive=False)
        assert result.status == 200
    await bot.services.idle()
    assert await all_rows(bot, AnswerFeedback) == []


async def test_duplicate_delivery_of_a_click_counts_once(bot, slack, model):
    _, answer = await an_answer(bot, slack, model)
    await click(slack, answer, user=CUSTOMER, positive=False)
    await click(slack, answer, user=CUSTOMER, positive=False)
    await bot.services.idle()
    assert len(await all_rows(bot, AnswerFeedback)) == 1
    assert len([m for m in bot_posts(slack, SUPPORT) if "unhelpful" in m["text"]]) == 1


async def test_the_report_counts_thumbs_per_week(start, slack, model):
    bot = await start()
    _, first = await an_answer(bot, slack, model, "Question one?")
    await click(slack, first, user=CUSTOMER, positive=True)
    model.script(Reply("Second answer."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Question two?")
    second = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    await click(slack, second, user=CUSTOMER, positive=False)
    await bot.services.idle()

    async with bot.services.sessions() as session:
        report = await build_report(session, since=utcnow().replace(year=2020))
    numbers = figures(report)
    assert (numbers["feedback_up"], numbers["feedback_down"]) == (1, 1)
    [week] = report.feedback_weeks
    assert (week.up, week.down) == (1, 1) and week.week_of.weekday() == 0
    assert numbers[f"feedback_week_of_{week.week_of.isoformat()}_down"] == 1
    [line] = [x for x in as_table(report).splitlines() if x.startswith("Answer feedback")]
    assert line.endswith("1 / 1")
