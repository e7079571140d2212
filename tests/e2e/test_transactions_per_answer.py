"""Issue 12: an answered question costs a bounded number of database transactions.

The worker folds its bookkeeping into the transactions it needs anyway (lease and first item
in one, an item's outcome with the next item's claim or the lease's release; the step's read
with its pending row), so a plain answer is nine commits from the customer's message to the
answer's recorded ts: seven, and the two of the stored delivery (its INSERT before the ack, a
worker's claim; it is deleted with the message's record). This counts real commits on both
databases; a change that adds a transaction to the hot path fails here first.
"""

from __future__ import annotations

from sqlalchemy import event

from sandbox.model_server import Delay, Reply
from tests.conftest import CUSTOMER, CUSTOMERS

# delivery stored 1 · delivery claimed 1 · intake (+ delivery deleted) 1 · lease + item 1 ·
# step read + pending row 1 · result + posts 1 · post claim 1 · post result 1 ·
# item outcome + lease release 1
COMMITS_PER_ANSWER = 9


async def test_an_answer_takes_nine_commits(start, slack, model):
    bot = await start(slack={"holding_reaction_after": "1h"},
                      timers={"check_every": "1h"})
    model.script(Reply("Warm."), Reply("It is under Settings."))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "Warm-up question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=first)
    await bot.services.idle()

    commits: list[str] = []
    event.listen(bot.services.engine.sync_engine, "commit", lambda _conn: commits.append("c"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    assert len(commits) <= COMMITS_PER_ANSWER, commits
    assert len(commits) >= 4  # the count is real: intake, claim, result, post


# ... and a slow one: + the ⏳ queued and claimed 1 · its result 1 · its removal's claim 1 and
# result 1
COMMITS_PER_SLOW_ANSWER = COMMITS_PER_ANSWER + 4
# Slack's events about the ⏳ may wake the worker while it drains: one more (empty) claim.
RACING_WAKE_UP = 1


async def test_a_slow_answer_and_its_hourglass_take_thirteen_commits(start, slack, model):
    bot = await start(slack={"holding_reaction_after": "0s"}, timers={"check_every": "1h"})
    model.script(Reply("Warm."), Delay(0.5, Reply("It is under Settings.")))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "Warm-up question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=first)
    await slack.wait_for_call("reactions.remove")
    await bot.services.idle()

    commits: list[str] = []
    event.listen(bot.services.engine.sync_engine, "commit", lambda _conn: commits.append("c"))
    since = len(slack.calls)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await slack.wait_for_call("reactions.remove", since=since)
    await bot.services.idle()

    assert [c.method for c in slack.calls[since:] if c.method.startswith("reactions.")] == [
        "reactions.add", "reactions.remove"]
    assert len(commits) <= COMMITS_PER_SLOW_ANSWER + RACING_WAKE_UP, commits
