"""Issue 12: the answer's post is claimed in the transaction that records the answer, so the
worker sends it without a transaction of its own for the claim; the claim still guards the post
against every other sender (a replica, the sweep), and a claim this process kept too long is not
trusted."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import event, update

from bot.toolkit.posts import post_ref
from sandbox.model_server import Reply
from storage import outbox_posts
from storage.models import OutboxPost, utcnow
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts
from tests.e2e.helpers import all_rows


class Transactions:
    """The statements of each committed transaction of an engine, in order."""

    def __init__(self, engine: Any) -> None:
        self.committed: list[list[str]] = []
        self._open: dict[int, list[str]] = defaultdict(list)
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", lambda conn: self.committed.append(
            self._open.pop(id(conn), [])))
        event.listen(sync, "rollback", lambda conn: self._open.pop(id(conn), None))

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._open[id(conn)].append(" ".join(statement.split())[:80])


def is_answer(statement: str) -> bool:
    return statement.startswith("UPDATE messages SET") and "text=" in statement


def is_post_claim(statement: str) -> bool:
    return statement.startswith("UPDATE outbox SET attempts=")


async def answered_once(start: Any, slack: Any, model: Any) -> tuple[Any, str]:
    bot = await start(slack={"holding_reaction_after": "1h"})
    model.script(Reply("First answer."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "First question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    return bot, ts


async def queue_and_claim_early(bot: Any, ts: str, text: str) -> Any:
    """Queue a post in the customer's thread and claim it in the same transaction, as a step
    does with its answer; the claim is kept once that transaction committed."""
    async with bot.services.sessions() as session:
        await outbox_posts.add_post(
            session, key=f"early:{text}", method="chat.postMessage", conversation_id=1,
            args={"channel": CUSTOMERS, "thread_ts": ts, "text": text})
        claim = await bot.services.outbox.claim_first_in(session, 1)
        await session.commit()
    assert claim is not None
    return claim


def texts_in(slack: Any, ts: str) -> list[str]:
    return [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)]


async def post_row(bot: Any, text: str) -> OutboxPost:
    return next(r for r in await all_rows(bot, OutboxPost) if r.key == f"early:{text}")


async def test_the_answers_post_is_claimed_with_the_answer_and_sent_once(start, slack, model):
    bot, _ = await answered_once(start, slack, model)
    transactions = Transactions(bot.services.engine)
    model.script(Reply("It is under Settings."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    [with_answer] = [t for t in transactions.committed if any(map(is_answer, t))]
    assert any(map(is_post_claim, with_answer)), with_answer
    claims = [s for t in transactions.committed for s in t if is_post_claim(s)]
    assert len(claims) == 1, claims  # the send did not claim it again
    assert texts_in(slack, ts) == ["It is under Settings."]
    [row] = [r for r in await all_rows(bot, OutboxPost) if r.key.startswith("answer:")
             and r.args.get("thread_ts") == ts]
    assert (row.status, row.attempts, row.slack_ts) == ("sent", 1, bot_posts(
        slack, CUSTOMERS, ts)[0]["ts"])


async def test_another_replica_leaves_a_post_claimed_early_to_its_claimer(start, slack, model):
    first, ts = await answered_once(start, slack, model)
    second = await start(slack={"holding_reaction_after": "1h"})
    claim = await queue_and_claim_early(first, ts, "claimed by the first replica")
    first.services.outbox.keep_early_claim(claim)

    assert await second.services.outbox.send_pending(1) is False  # held by the claim
    assert "claimed by the first replica" not in texts_in(slack, ts)
    assert await first.services.outbox.send_pending(1) is True

    assert texts_in(slack, ts).count("claimed by the first replica") == 1
    row = await post_row(first, "claimed by the first replica")
    assert (row.status, row.attempts) == ("sent", 1)


async def test_an_early_claim_kept_too_long_is_not_trusted(start, slack, model):
    bot, ts = await answered_once(start, slack, model)
    outbox = bot.services.outbox
    claim = await queue_and_claim_early(bot, ts, "claimed long ago")
    outbox.keep_early_claim(replace(claim, claimed_at=claim.claimed_at - 3600))

    # Its hold may have lapsed and another sender may be at it: the post waits for its hold.
    assert await outbox.send_pending(1) is False
    assert "claimed long ago" not in texts_in(slack, ts)

    # The hold passes (the sweep's retry): the attempt looks in Slack first, then posts once.
    async with bot.services.sessions() as session:
        await session.execute(update(OutboxPost).where(OutboxPost.key == "early:claimed long ago")
                              .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    looks = len(slack.calls_to("conversations.replies"))
    assert await outbox.send_pending(1) is True
    assert len(slack.calls_to("conversations.replies")) == looks + 1
    assert texts_in(slack, ts).count("claimed long ago") == 1
    row = await post_row(bot, "claimed long ago")
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_post_that_must_wait_for_another_is_not_claimed_early(start, slack, model):
    bot, _ = await answered_once(start, slack, model)
    async with bot.services.sessions() as session:
        await outbox_posts.add_post(
            session, key="early:update", method="chat.update", conversation_id=1,
            args={"channel": CUSTOMERS, "ts": post_ref("never-sent"), "text": "edited"})
        assert await bot.services.outbox.claim_first_in(session, 1) is None
        await session.commit()
    row = next(r for r in await all_rows(bot, OutboxPost) if r.key == "early:update")
    assert (row.attempts, row.next_attempt_at) == (0, None)
