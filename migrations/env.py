"""Alembic environment: async engine, models' metadata, empty autogenerate revisions dropped."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _drop_empty_revisions(context_: Any, _revision: Any, directives: list[Any]) -> None:
    if config.cmd_opts and getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []


def _not_full_text(obj: Any, name: str | None, type_: str, reflected: bool,
                   compare_to: Any) -> bool:
    """The full-text search objects (an FTS5 table, a GIN expression index) live outside the
    models: autogenerate leaves them alone."""
    return not (name or "").startswith("knowledge_fts")


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        process_revision_directives=_drop_empty_revisions,
        compare_type=True,
        include_object=_not_full_text,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine: AsyncEngine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
