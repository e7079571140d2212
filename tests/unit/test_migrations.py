"""The schema exists only through alembic: upgrading to head matches the models exactly."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from storage.db import create_engine
from storage.migrate import alembic_config, upgrade_async


async def test_upgrade_to_head_matches_the_models(database_url):
    await upgrade_async(database_url)
    await upgrade_async(database_url)  # idempotent: a second start-up changes nothing
    await asyncio.to_thread(command.check, alembic_config(database_url))


async def test_upgrade_renumbers_positions_the_old_race_left_duplicated(database_url):
    """Before the position lock, two messages could share a position; the migration that makes
    positions unique renumbers them inside their turn, keeping their order."""
    config = alembic_config(database_url)
    await asyncio.to_thread(command.upgrade, config, "7de53237e04a")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO conversations (id, team_id, channel_id, thread_ts, assignee, status,"
                " created_at, updated_at) VALUES (1, 'T', 'C', '1.0', 'bot', 'open',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            for message_id, order, step, words in [(1, 0, 0, "first"), (2, 0, 0, "second"),
                                                   (3, 0, 1, "answer"), (4, 1, 0, "later")]:
                await connection.execute(text(
                    'INSERT INTO messages (id, conversation_id, "order", step_order, role, text,'
                    " status, created_at) VALUES (:id, 1, :order, :step, 'user', :words,"
                    " 'success', CURRENT_TIMESTAMP)"),
                    {"id": message_id, "order": order, "step": step, "words": words})
        await upgrade_async(database_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                'SELECT text, "order", step_order FROM messages ORDER BY "order", step_order'
            ))).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("first", 0, 0), ("second", 0, 1), ("answer", 0, 2), ("later", 1, 0)]
