"""Runs alembic to head programmatically (the CLI's `migrate` and start-up use this)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    """Upgrade the schema; blocking, call it before the event loop or through `upgrade_async`."""
    command.upgrade(alembic_config(database_url), "head")


async def upgrade_async(database_url: str) -> None:
    """Upgrade from inside a running event loop (alembic's env starts a loop of its own)."""
    await asyncio.to_thread(upgrade_to_head, database_url)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The latest migration(s) this version of the code knows (read from disk once)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    """The migration(s) the database is at (empty before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as connection:
        return frozenset(await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_heads()))
