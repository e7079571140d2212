"""The real bot with one or more performance levers simulated, to measure what a lever would
buy before anyone builds it. Benchmarks only: nothing here changes bot/ or storage/; the levers
are applied by patching at start-up, then `python -m bot run` runs as usual.
Worker processes (`workers.processes`, PostgreSQL's default) are started as plain
`python -m bot worker` and run without the levers: compare variants on SQLite, or with
`workers.processes: 0`.

    python -m bench.variants no-pre-ping,no-reaction run --config app.yaml
    python -m bench.bench_load --variant no-pre-ping --variant no-pre-ping,no-reaction

Variants:
- `no-pre-ping`: the PostgreSQL pool without `pool_pre_ping` (today every checkout costs a
  BEGIN, a `;` and a ROLLBACK round trip before the session's own statements).
- `no-reaction`: no holding reaction on the customer's message (today: queued when the
  answer is slow, `slack.holding_reaction_after`, and removed after the answer).
- `sqlite-one-writer`: SQLite on a single pooled connection, so transactions queue in the
  process instead of racing for the file lock (busy_timeout sleep-polling).
- `no-streaming`: `slack.streaming: false` by default (the model is called without
  `stream=True`; the answer is posted whole), to price streaming (issue 15).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import sys
from typing import Any

VARIANTS = ("no-pre-ping", "no-reaction", "sqlite-one-writer", "no-streaming")


def apply(names: list[str]) -> None:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    import storage.db as db

    original = db.create_engine

    def create_engine(url: str, **options: Any) -> Any:
        target = db.async_url(url)
        if target.get_backend_name() == "sqlite" and "sqlite-one-writer" in names:
            engine = create_async_engine(target, connect_args={"timeout": 30}, pool_size=1,
                                         max_overflow=0, pool_timeout=120)
            event.listen(engine.sync_engine, "connect", db._enable_sqlite_pragmas)
            return engine
        if target.get_backend_name() == "postgresql" and "no-pre-ping" in names:
            return create_async_engine(target, pool_size=10, max_overflow=10)
        return original(url, **options)

    db.create_engine = create_engine  # before bot.process.wiring imports it

    if "no-streaming" in names:
        from bot.config import SlackSettings

        SlackSettings.model_fields["streaming"].default = False
        SlackSettings.model_rebuild(force=True)

    if "no-reaction" in names:
        from bot.agent.loop import Agent
        from bot.toolkit.slack_api import SlackGateway
        from bot.usecases.holding import HoldingReaction

        def no_schedule(self: Any, **_kwargs: Any) -> None:
            return None

        HoldingReaction.schedule = no_schedule  # type: ignore[method-assign]

        async def no_reaction(self: Any, **_kwargs: Any) -> None:
            return None

        async def no_clear(self: Any, *_args: Any) -> None:
            return None

        SlackGateway.add_reaction = no_reaction  # type: ignore[method-assign]
        Agent._clear_holding_reaction = no_clear  # type: ignore[method-assign]


def main() -> int:
    names = [n for n in sys.argv[1].split(",") if n]
    apply(names)
    from bot.__main__ import main as bot_main

    return bot_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
