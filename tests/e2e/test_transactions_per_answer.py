"""Issue 12: an answered question costs a bounded number of database transactions and statements.

The worker folds its bookkeeping into the transactions it needs anyway (lease and first item
in one, an item's outcome with its last post's result and the next item's claim or the lease's
release; the step's read with its pending row; the answer with its post's claim), so a plain
answer is seven commits from the customer's message to the answer's recorded ts: five, and the
two of the stored delivery (its
INSERT before the ack, a worker's claim; it is deleted with the message's record). This
counts real commits on both databases; a change that adds a transaction to the hot path fails
here first. Statements are counted too (each one a round trip and ~0.2-0.5 ms of CPU): those
of committed transactions, so the sweep's read-only looks are left out.

What comes and goes with timing is kept out of the count, so that a loaded machine cannot fail
it: the bot under test sweeps once an hour (a sweep that looks while the answer is under way
kicks the conversation or the deliveries again: an empty claim or two), and the transactions of
background work are recognised and left out: a lease heartbeat (one lease claim, every
`HEARTBEAT_SECONDS` of a slow answer) and the Home refresher's look for changes (two reads,
every second, committed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.pipeline.worker import HEARTBEAT_SECONDS
from sandbox.model_server import Delay, Reply
from tests.conftest import CUSTOMER, CUSTOMERS

# delivery stored 1 · delivery claimed 1 · intake (+ delivery deleted) 1 · lease + item 1 ·
# step read + pending row 1 · result + posts + the first post's claim 1 ·
# post result + item outcome + lease release 1
COMMITS_PER_ANSWER = 7
QUIET_SWEEPS = 3600.0  # seconds: no sweep races the answer being counted


async def warm_bot(start: Any, slack: Any, model: Any) -> Any:
    """A bot that has answered once (its caches warm), with no ⏳ and no timers to count."""
    bot = await start(sweep_seconds=QUIET_SWEEPS, slack={"holding_reaction_after": "1h"},
                      timers={"check_every": "1h"})
    model.script(Reply("Warm."), Reply("It is under Settings."))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "Warm-up question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=first)
    await bot.services.idle()
    return bot


async def answer_one_question(bot: Any, slack: Any) -> None:
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()


async def test_an_answer_takes_seven_commits(start, slack, model):
    bot = await warm_bot(start, slack, model)
    counted = CommittedStatements(bot.services.engine)
    await answer_one_question(bot, slack)

    assert len(counted.transactions) <= COMMITS_PER_ANSWER, counted.transactions
    assert len(counted.transactions) >= 4  # the count is real: intake, claim, result, post


# delivery stored 1 · claimed 1 · intake 5 · lease + item 2 · step read + pending row 3 ·
# result + posts 5 + the first post's claim 2 · post result 2 + item outcome 1 + lease released
# (nothing due) 1
STATEMENTS_PER_ANSWER = 23


def is_heartbeat(transaction: list[str]) -> bool:
    """A worker's lease heartbeat: a transaction of one lease claim (a lease taken to work is
    taken with its item; a release has no `lease_until IS NULL` test)."""
    return (len(transaction) == 1 and transaction[0].startswith("UPDATE conversations SET "
                                                                 "lease_owner")
            and "lease_until IS NULL" in transaction[0])


def is_home_look(transaction: list[str]) -> bool:
    """The Home refresher's look for case changes and due views (bot/usecases/home.py): it
    touches only the Home tables."""
    return bool(transaction) and all(" home_changes" in statement or " home_viewers" in statement
                                     for statement in transaction)


class CommittedStatements:
    """The engine's committed transactions, each as its statements, with the background work's
    (`is_heartbeat`, `is_home_look`) counted apart; rolled-back ones are not counted."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.transactions: list[list[str]] = []
        self.heartbeats = 0
        self.home_looks = 0
        self._open: dict[int, list[str]] = defaultdict(list)
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._commit)
        event.listen(sync, "rollback", self._rollback)

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE, ours
            self._open[id(conn)].append(" ".join(statement.split()))

    def _commit(self, conn: Any) -> None:
        transaction = self._open.pop(id(conn), [])
        if is_heartbeat(transaction):
            self.heartbeats += 1
        elif is_home_look(transaction):
            self.home_looks += 1
        else:
            self.transactions.append(transaction)

    @property
    def committed(self) -> list[str]:
        """Every counted statement, in commit order, as its first 80 characters."""
        return [statement[:80] for transaction in self.transactions for statement in transaction]

    def _rollback(self, conn: Any) -> None:
        self._open.pop(id(conn), None)


async def test_an_answer_takes_twenty_three_statements(start, slack, model):
    bot = await warm_bot(start, slack, model)
    counted = CommittedStatements(bot.services.engine)
    await answer_one_question(bot, slack)

    assert len(counted.committed) <= STATEMENTS_PER_ANSWER, "\n".join(counted.committed)
    assert len(counted.committed) >= 12  # the count is real


# ... and a slow one: + the ⏳ queued and claimed 1 · its result 1 · its removal's claim 1 (which
# commits the answer's result; the removal's own goes with the item's outcome)
COMMITS_PER_SLOW_ANSWER = COMMITS_PER_ANSWER + 3
# Slack's events about the ⏳ may wake the worker while it drains: one more (empty) claim.
RACING_WAKE_UP = 1


async def test_a_slow_answer_and_its_hourglass_take_eleven_commits(start, slack, model):
    """The answer outlasts a lease heartbeat and the Home refresher's looks, which are
    recognised and not counted."""
    bot = await start(sweep_seconds=QUIET_SWEEPS, slack={"holding_reaction_after": "0s"},
                      timers={"check_every": "1h"})
    model.script(Reply("Warm."), Delay(HEARTBEAT_SECONDS + 0.5, Reply("It is under Settings.")))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "Warm-up question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=first)
    await slack.wait_for_call("reactions.remove")
    await bot.services.idle()

    counted = CommittedStatements(bot.services.engine)
    since = len(slack.calls)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await slack.wait_for_call("reactions.remove", since=since)
    await bot.services.idle()

    assert [c.method for c in slack.calls[since:] if c.method.startswith("reactions.")] == [
        "reactions.add", "reactions.remove"]
    assert counted.heartbeats >= 1
    assert counted.home_looks >= 1  # the refresher looks every second: recognised too
    assert len(counted.transactions) <= COMMITS_PER_SLOW_ANSWER + RACING_WAKE_UP, (
        counted.transactions)
