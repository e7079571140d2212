"""Issue 12: the statements of an answer are compiled once per process, not once per message.

SQLAlchemy compiles a statement into SQL once and caches it by the statement's structure, but
only statements that have a cache key; one without (its dialect inserts with ON CONFLICT, say)
is compiled anew on every execution, which made a third of the Slack front's time per ack.
After a warm-up answer, a second answer's statements must all come from the cache.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats

from sandbox.model_server import Reply
from tests.conftest import CUSTOMER, CUSTOMERS


async def test_a_second_answer_compiles_no_statement(start, slack, model):
    bot = await start(slack={"holding_reaction_after": "1h"}, timers={"check_every": "1h"})
    model.script(Reply("Warm."), Reply("It is under Settings."))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "Warm-up question?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=first)
    await bot.services.idle()

    uncached: list[str] = []
    executed: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
             _many: bool) -> None:
        executed.append(statement)
        if context.compiled is not None and context.cache_hit is not CacheStats.CACHE_HIT:
            uncached.append(f"{context.cache_hit.name}: {statement[:150]}")

    event.listen(bot.services.engine.sync_engine, "before_cursor_execute", note)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    assert len(executed) >= 5  # the answer did run statements
    assert uncached == []
