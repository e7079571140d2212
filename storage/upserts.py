"""`INSERT … ON CONFLICT (…) DO NOTHING [RETURNING …]` as statements SQLAlchemy compiles once.

SQLAlchemy never caches the compiled form of its dialect inserts (`postgresql.insert` and
`sqlite.insert` set `inherit_cache = False`), so every call of an upsert built with them was
compiled anew: in the Slack front that compiling was about a third of the time an ack took
(py-spy, issue 12). The SQL below is the same on SQLite (3.35+) and PostgreSQL; each bound
value is typed by its column, so dates and JSON are written exactly as the ORM writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, text
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import TextClause


async def insert_new(session: AsyncSession | AsyncConnection, table: Table,
                     rows: Sequence[dict[str, Any]], *, conflict: tuple[str, ...],
                     returning: str | None = None) -> Result[Any]:
    """Insert `rows` (all with the same keys), skipping any that conflicts on the unique
    `conflict` columns; the result's rowcount is the number inserted, and with `returning`
    its rows hold that column of each inserted row."""
    columns = tuple(rows[0])
    statement = _statement(table, columns, len(rows), conflict, returning)
    params = {f"{column}_{n}": row[column] for n, row in enumerate(rows) for column in columns}
    return await session.execute(statement, params)


async def insert_many_new(session: AsyncSession | AsyncConnection, table: Table,
                          rows: Sequence[dict[str, Any]], *, conflict: tuple[str, ...]) -> None:
    """As `insert_new` for many rows (all with the same keys), sent as one executemany."""
    columns = tuple(rows[0])
    statement = _statement(table, columns, 1, conflict, None)
    await session.execute(statement, [{f"{c}_0": row[c] for c in columns} for row in rows])


@lru_cache(maxsize=64)
def _statement(table: Table, columns: tuple[str, ...], count: int, conflict: tuple[str, ...],
               returning: str | None) -> TextClause:
    names = ", ".join(_quoted(c) for c in columns)
    values = ", ".join("(" + ", ".join(f":{c}_{n}" for c in columns) + ")" for n in range(count))
    sql = (f"INSERT INTO {table.name} ({names}) VALUES {values} "
           f"ON CONFLICT ({', '.join(_quoted(c) for c in conflict)}) DO NOTHING")
    if returning:
        sql += f" RETURNING {_quoted(returning)}"
    statement = text(sql).bindparams(*(bindparam(f"{c}_{n}", type_=table.c[c].type)
                                       for n in range(count) for c in columns))
    return statement.columns(table.c[returning]) if returning else statement


def _quoted(column: str) -> str:
    return f'"{column}"'
