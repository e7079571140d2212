"""The schema exists only through alembic: upgrading to head matches the models exactly."""

from __future__ import annotations

import asyncio

from alembic import command

from storage.migrate import alembic_config, upgrade_async


async def test_upgrade_to_head_matches_the_models(database_url):
    await upgrade_async(database_url)
    await upgrade_async(database_url)  # idempotent: a second start-up changes nothing
    await asyncio.to_thread(command.check, alembic_config(database_url))
