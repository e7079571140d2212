"""RSS growth of the real bot's process over many conversations, against a bare Bolt app's.

    .venv/bin/python -m bench.bench_memory [--conversations 500] [--batch 100]
                                           [--database postgresql://postgres@127.0.0.1:5432]

Each app runs in its own process (the bot as `python -m bot run`, the bare Bolt + litellm app
as `python -m bench.bare_app`); its VmRSS is read from /proc/<pid>/status
right after start-up and after every batch of new customer threads; its CPU time (user +
system, /proc/<pid>/stat) over all batches is reported per conversation too. The bot's batches
are complete only when every thread has its answer posted (the bare app's too), so the turns
are inside the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
from dataclasses import dataclass, field

from bench.harness import drive, stack, table

REPLY_TIMEOUT = 120.0


@dataclass
class MemoryRun:
    kind: str
    start: float  # MiB, after start-up
    samples: list[float] = field(default_factory=list)  # MiB, after each batch
    cpu: float = 0.0  # CPU seconds the process spent on all the batches
    missing: int = 0

    @property
    def growth(self) -> float:
        return self.samples[-1] - self.start


async def run_one(kind: str, args: argparse.Namespace) -> MemoryRun:
    async with stack(kind, args.database) as target:
        run, cpu_before = MemoryRun(kind, target.rss_mib()), target.cpu_seconds()
        for done in range(0, args.conversations, args.batch):
            events = await target.new_events(min(args.batch, args.conversations - done))
            await drive(target, events, args.concurrency)
            replies = await target.reply_times([e["event"]["ts"] for e in events],
                                               REPLY_TIMEOUT)
            run.missing += sum(at is None for at in replies.values())
            run.samples.append(target.rss_mib())
        run.cpu = target.cpu_seconds() - cpu_before
        return run


def report(bare: MemoryRun, bot: MemoryRun, conversations: int) -> dict[str, float]:
    """Print the table; return the headline figures."""
    rows = [[run.kind, run.start, run.samples[-1], run.growth, run.samples[-1] / run.start,
             run.growth * 1024 / conversations, run.cpu * 1000 / conversations,
             " ".join(f"{s:.1f}" for s in run.samples)]
            for run in (bare, bot)]
    print(table(["RSS MiB", "start", "end", "growth", "end/start", "KiB/conv", "CPU ms/conv",
                 "after batches"], rows))
    ratio = bot.growth / bare.growth if bare.growth > 0 else float("inf")
    print(f"\nRSS growth bot/bare: {ratio:#.3g}")
    if bot.missing:
        print(f"{bot.missing} threads got no reply within {REPLY_TIMEOUT:.0f}s")
    return {"bot RSS end/start": rows[1][4], "bot RSS growth MiB": bot.growth,
            "bare RSS growth MiB": bare.growth, "RSS growth bot/bare": ratio,
            "bot KiB/conversation": rows[1][5], "CPU/conversation bot/bare": bot.cpu / bare.cpu}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a temp file) or a PostgreSQL server URL")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    bare = await run_one("bare", args)
    bot = await run_one("bot", args)
    print(f"memory: {args.conversations} conversations, database {args.database}\n")
    return report(bare, bot, args.conversations)


if __name__ == "__main__":
    asyncio.run(main())
