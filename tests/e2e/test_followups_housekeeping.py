"""Issue 6: housekeeping prunes old de-duplication keys and finished work and outbox rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from sandbox.model_server import Reply
from storage import events, work_items
from storage.models import OutboxPost, ReceivedEvent, WorkItem, utcnow
from tests.conftest import CUSTOMER, CUSTOMERS
from tests.e2e.followup_helpers import timers
from tests.e2e.helpers import all_rows, stored_messages


async def test_old_finished_rows_are_pruned_and_the_rest_kept(start, slack, model):
    bot = await start(timers=timers(retention="7d"))
    model.script(Reply("Hello!"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hi")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    eight_days_ago = utcnow() - timedelta(days=8)
    async with bot.services.sessions() as session:
        await session.execute(update(ReceivedEvent).values(received_at=eight_days_ago))
        await session.execute(update(WorkItem).values(created_at=eight_days_ago))
        await session.execute(update(OutboxPost).values(created_at=eight_days_ago))
        # Kept: a recent key, and old work that is still open (due later).
        await events.accept_once(session, "recent-event")
        await work_items.add_work(session, conversation_id=1, kind="flush",
                            not_before=utcnow() + timedelta(days=1))
        await session.execute(update(WorkItem).where(WorkItem.status == "open")
                              .values(created_at=eight_days_ago))
        await session.commit()
    finished = [w for w in await all_rows(bot, WorkItem) if w.status != "open"]
    assert finished and await all_rows(bot, OutboxPost)

    assert await bot.followups.housekeeping() > 0

    async with bot.services.sessions() as session:
        keys = (await session.execute(select(ReceivedEvent.key))).scalars().all()
    assert keys == ["recent-event"]
    assert [(w.kind, w.status) for w in await all_rows(bot, WorkItem)] == [("flush", "open")]
    assert await all_rows(bot, OutboxPost) == []
    assert [m.text for m in await stored_messages(bot)] == ["hi", "Hello!"]  # history stays
    assert await bot.followups.housekeeping() == 0
