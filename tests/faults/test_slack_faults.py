"""Slack fails on purpose: rate limits, 5xx, an HTML outage page, a lost answer, and a restart
in the middle of it. Every answer still reaches the customer exactly once."""

from __future__ import annotations

from typing import Any

from storage.models import OutboxPost
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows
from tests.faults.helpers import echo, wait_until


async def ask_many(slack: Any, count: int) -> list[str]:
    return [await slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}") for n in range(count)]


async def wait_answered(slack: Any, roots: list[str], timeout: float = 60) -> None:
    for n, ts in enumerate(roots):
        wanted = f"answer to question {n}"
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=timeout,
                                     predicate=lambda m, w=wanted: m["text"] == w)


def answers_per_thread(slack: Any, roots: list[str]) -> list[int]:
    return [sum(1 for m in bot_posts(slack, CUSTOMERS, ts) if m["text"].startswith("answer to"))
            for ts in roots]


async def test_twenty_rate_limits_in_a_row_lose_no_answer(bot, slack, model):
    model.default = echo
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=1, times=20)

    roots = await ask_many(slack, 5)
    await wait_answered(slack, roots)

    assert answers_per_thread(slack, roots) == [1] * 5
    limited = [c for c in slack.calls_to("chat.postMessage") if c.status == 429]
    assert len(limited) == 20


async def test_server_errors_and_an_html_outage_page_are_retried(bot, slack, model):
    model.default = echo
    slack.fail_next("chat.postMessage", error="internal_error", status=500, times=2)
    slack.fail_next("chat.postMessage", error="service_unavailable", status=503, html=True,
                    times=2)

    roots = await ask_many(slack, 3)
    await wait_answered(slack, roots)

    assert answers_per_thread(slack, roots) == [1] * 3


async def test_a_post_slack_accepted_but_whose_answer_was_lost_is_not_sent_again(
        bot, slack, model):
    model.default = echo
    slack.fail_next("chat.postMessage", error="internal_error", status=500, after_accept=True)

    [root] = await ask_many(slack, 1)
    await wait_answered(slack, [root])

    async def answer_row() -> OutboxPost:
        return next(r for r in await all_rows(bot, OutboxPost) if r.key.startswith("answer:"))
    await wait_until(lambda: answer_row(), lambda row: row.status == "sent")

    answer = await answer_row()
    assert answers_per_thread(slack, [root]) == [1]
    assert answer.attempts == 2 and answer.slack_ts == bot_posts(slack, CUSTOMERS, root)[0]["ts"]
    assert slack.calls_to("conversations.replies"), "the retry looked for its own post first"


async def test_posts_waiting_for_slack_are_sent_by_a_restarted_bot(start, slack, model):
    model.default = echo
    first = await start()
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=2, times=1000)
    roots = await ask_many(slack, 3)
    await first.services.idle()
    await first.stop()
    pending = [r for r in await all_rows(first, OutboxPost) if r.status == "pending"]
    assert len([r for r in pending if r.key.startswith("answer:")]) == 3

    slack.clear_faults("chat.postMessage")  # Slack recovers while the bot is down
    await start()
    await wait_answered(slack, roots)

    assert answers_per_thread(slack, roots) == [1] * 3


async def test_a_post_refused_for_longer_than_the_retry_window_is_given_up_and_staff_told(
        start, slack, model):
    model.default = echo
    bot = await start(slack={"retry_posts_for": "2s"})
    # Enough refusals to outlast the answer's window, but not its notice to staff.
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=1, times=4)

    [root] = await ask_many(slack, 1)
    notice = await slack.wait_for_message(
        SUPPORT, timeout=30, predicate=lambda m: "could not be delivered" in m["text"])

    assert "Case #1" in notice["text"] and "ratelimited" in notice["text"]
    [answer] = [r for r in await all_rows(bot, OutboxPost) if r.key.startswith("answer:")]
    assert answer.status == "failed"
    # The conversation is not blocked: the next message is answered.
    await slack.user_posts(CUSTOMERS, CUSTOMER, "question again", thread_ts=root)
    await slack.wait_for_message(CUSTOMERS, thread_ts=root, timeout=30,
                                 predicate=lambda m: m["text"] == "answer to question again")
