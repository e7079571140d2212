"""Ack latency and throughput of the real bot's HTTP endpoint against a bare Bolt app.

    .venv/bin/python -m bench.bench_ack [--events 300] [--concurrency 10]
                                        [--database postgresql://postgres@127.0.0.1:5432]

Each app runs in its own process with its own sandbox fakes (`bench.fakes`): the bot as
`python -m bot run --config <generated app.yaml>`, the bare app as `python -m bench.bare_app`
(Bolt + litellm answering in the thread, no storage). Both get the same signed
`event_callback` message events, each a new customer thread, and the time to the HTTP response
(the ack) is measured per request. Both answer with the model (the fakes' model server answers
"ok" at once), so their background turns run while they ack; end-to-end reply latency (event
sent -> the answer's chat.postMessage received by the emulator) is reported under that load and
one event at a time. For answered/s and CPU per answer see `bench.bench_load`.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
from dataclasses import dataclass, field

from bench.harness import Drive, drive, pct, reply_latencies, stack, table

REPLY_TIMEOUT = 60.0


@dataclass
class AckRun:
    kind: str
    load: Drive
    idle_acks: list[float] = field(default_factory=list)  # seconds, one event at a time
    replies_loaded: list[float] = field(default_factory=list)  # seconds
    replies_idle: list[float] = field(default_factory=list)
    missing: int = 0


async def run_one(kind: str, args: argparse.Namespace) -> AckRun:
    async with stack(kind, args.database) as target:
        warm = await target.new_events(args.warmup)
        await drive(target, warm, args.concurrency)
        # let the warm-up turns finish before measuring
        await target.reply_times([e["event"]["ts"] for e in warm], REPLY_TIMEOUT)
        events = await target.new_events(args.events)
        run = AckRun(kind, await drive(target, events, args.concurrency))
        replies = await target.reply_times([e["event"]["ts"] for e in events], REPLY_TIMEOUT)
        run.replies_loaded, run.missing = reply_latencies(run.load, replies)
        for event in await target.new_events(args.sequential):
            one = await drive(target, [event], 1)
            run.idle_acks += one.latencies
            # the next event only once this one is answered
            idle, missing = reply_latencies(one, await target.reply_times(
                [event["event"]["ts"]], REPLY_TIMEOUT))
            run.replies_idle += idle
            run.missing += missing
        return run


def ms(values: list[float]) -> list[float]:
    return [x * 1000 for x in values]


def report(bare: AckRun, bot: AckRun) -> dict[str, float]:
    """Print the tables; return the headline figures (ratios are bot/bare)."""
    rows = [[run.kind, *(pct(ms(run.load.latencies), q) for q in (50, 95, 99)), run.load.rps,
             pct(ms(run.idle_acks), 50),
             sum(run.load.errors.values())] for run in (bare, bot)]
    ratio = ["bot/bare", *(b / a for a, b in zip(rows[0][1:6], rows[1][1:6], strict=True)), ""]
    print(table(["ack", "p50 ms", "p95 ms", "p99 ms", "req/s", "idle p50 ms", "errors"],
                [*rows, ratio]))
    print()
    reply_rows = []
    for run in (bare, bot):
        loaded, idle = ms(run.replies_loaded), ms(run.replies_idle)
        reply_rows += [[f"{run.kind}, under the load above", len(loaded), pct(loaded, 50),
                        pct(loaded, 95)],
                       [f"{run.kind}, one event at a time", len(idle), pct(idle, 50),
                        pct(idle, 95)]]
    print(table(["reply (sent -> posted)", "n", "p50 ms", "p95 ms"], reply_rows))
    loaded, idle = ms(bot.replies_loaded), ms(bot.replies_idle)
    for run in (bare, bot):
        if run.load.errors:
            print(f"{run.kind}: non-200 answers by status: {run.load.errors}")
    for run in (bare, bot):
        if run.missing:
            print(f"{run.kind}: {run.missing} threads got no reply within {REPLY_TIMEOUT:.0f}s")
    return {"ack p50 bot/bare": ratio[1], "ack p95 bot/bare": ratio[2],
            "ack p99 bot/bare": ratio[3], "req/s bot/bare": ratio[4],
            "idle ack p50 bot/bare": ratio[5], "bot ack p50 ms": rows[1][1],
            "bot req/s": rows[1][4], "bare req/s": rows[0][4],
            "bot reply p50 ms (load)": pct(loaded, 50),
            "bot reply p95 ms (load)": pct(loaded, 95),
            "bot reply p50 ms (idle)": pct(idle, 50), "bot reply p95 ms (idle)": pct(idle, 95)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sequential", type=int, default=20,
                        help="events sent one at a time (the bot's: each after its reply)")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a temp file) or a PostgreSQL server URL")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    bare = await run_one("bare", args)
    bot = await run_one("bot", args)
    print(f"ack: {args.events} events, concurrency {args.concurrency}, database "
          f"{args.database}\n")
    return report(bare, bot)


if __name__ == "__main__":
    asyncio.run(main())
