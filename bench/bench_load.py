"""Answered messages per second, ack and reply latency, CPU per answer: the bot (`python -m bot
run`, HTTP mode) against a bare Bolt + litellm app that answers in the thread (bench/bare_app.py).

    .venv/bin/python -m bench.bench_load [--database sqlite postgresql://postgres@127.0.0.1:5432]
        [--burst 150] [--concurrency 30] [--rate 8] [--seconds 30] [--tenx] [--replicas]
        [--profile DIR] [--variant no-pre-ping,no-reaction] [--json PATH]

Each app runs as its own process (the bot exactly as a user runs it, on a generated app.yaml)
next to its own sandbox fakes process (Slack emulator + model server answering at once), so only
the app's CPU is counted (the process and all its children, from /proc). Both are driven the
same way, with signed `event_callback` deliveries of new top-level customer messages, after one
warm-up message each:
- burst: `--burst` messages at `--concurrency` (closed loop: each sender sends its next message
  when the previous one is acked); `--tenx`: also ten times that at ten times the concurrency;
- sustained: `--rate` messages per second for `--seconds` (open loop, as Slack sends);
- replicas (PostgreSQL only): the burst split between two `python -m bot run` processes on one
  database, against one process; both set-ups run side by side and get the burst in turn
  (`--rounds` times each), and the medians are compared.
Figures: answered/s (answers posted / (last answer − first send)), ack p50/p99 (request →
HTTP response), reply p50/p99 (event sent → the answer's chat.postMessage received by the
emulator), CPU ms per answered message; ratios against the bare app measured in the same run.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import contextlib
import json
import platform
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Drive, Stack, drive, drive_rate, pct, stack, table

RESULTS = ROOT / "bench" / "results"
PYSPY = Path(os.environ.get("PYSPY", Path(sys.executable).parent / "py-spy"))


@dataclass
class Phase:
    """One measured load on one app: what was sent, what came back, what it cost."""

    app: str  # bare, bot sqlite, bot postgresql, bot postgresql x2, bot sqlite [variant]
    load: str  # burst 150@30, sustained 8/s x 30s, ...
    sent: int = 0
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    answered_per_s: float = 0.0
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0
    reply_p50_ms: float = 0.0
    reply_p99_ms: float = 0.0
    cpu_s: float = 0.0
    cpu_ms_per_answer: float = 0.0
    fakes_cpu_ms_per_answer: float = 0.0  # the emulator + model server process, for context
    driver_cpu_ms_per_answer: float = 0.0  # the load generator (this process), for context
    commits_per_answer: float | None = None  # PostgreSQL: pg_stat_database.xact_commit
    # PostgreSQL: the server backends serving the app's pool (those connected at the end;
    # a connection closed during the load is missed, so this is a lower bound)
    pg_cpu_ms_per_answer: float | None = None
    # every process on the machine (other users' too): how close to saturated the cores were
    machine_busy_cores: float = 0.0
    slack_calls_per_answer: dict[str, float] = field(default_factory=dict)  # by Web API method
    model_calls_per_answer: float = 0.0


async def settle_cpu(target: Stack, *, quiet: float = 0.02, most: float = 10.0) -> float:
    """Wait until the app's CPU time stops growing (its after-answer bookkeeping is done, or
    the backlog a late phase left, up to `most` seconds); return the CPU seconds then."""
    last, deadline = target.cpu_seconds(), time.monotonic() + most
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = target.cpu_seconds()
        if now - last <= quiet:
            return now
        last = now
    return last


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine so far, from /proc/stat; monotonic now)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def measure(target: Stack, app: str, load: str, count: int,
                  send: Callable[[list[dict[str, Any]]], Awaitable[Drive]],
                  reply_timeout: float) -> Phase:
    events = await target.new_events(count)
    await target.control("/forget", {})
    roots = [e["event"]["ts"] for e in events]
    commits_before, pg_before = await target.commits(), await target.backend_cpu()
    cpu_before, fakes_before = target.cpu_seconds(), target.fakes_cpu_seconds()
    driver_before, (busy_before, wall_before) = own_cpu_seconds(), machine_busy()
    sent = await send(events)
    replies = await target.reply_times(roots, reply_timeout)
    busy_after, wall_after = machine_busy()
    cpu = await settle_cpu(target) - cpu_before
    fakes_cpu, driver_cpu = (target.fakes_cpu_seconds() - fakes_before,
                             own_cpu_seconds() - driver_before)
    commits_after, pg_after = await target.commits(), await target.backend_cpu()
    calls = await target.control("/calls", {})
    answered = {r: at for r, at in replies.items() if at is not None}
    reply_s = [at - sent.sent_at[r] for r, at in answered.items()]
    span = (max(answered.values()) - min(sent.sent_at.values())) if answered else 0.0
    phase = Phase(app, load, sent=count, answered=len(answered),
                  errors={str(k): v for k, v in sent.errors.items()},
                  answered_per_s=len(answered) / span if span else 0.0,
                  cpu_s=cpu, cpu_ms_per_answer=cpu * 1000 / max(1, len(answered)),
                  fakes_cpu_ms_per_answer=fakes_cpu * 1000 / max(1, len(answered)),
                  driver_cpu_ms_per_answer=driver_cpu * 1000 / max(1, len(answered)))
    per = max(1, len(answered))
    phase.machine_busy_cores = (busy_after - busy_before) / max(1e-9, wall_after - wall_before)
    phase.slack_calls_per_answer = {m: n / per for m, n in sorted(calls["calls"].items())}
    phase.model_calls_per_answer = calls["model"] / per
    if commits_before is not None and commits_after is not None:
        phase.commits_per_answer = (commits_after - commits_before) / per
        phase.pg_cpu_ms_per_answer = 1000 * sum(
            cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items()) / per
    if len(answered) < count:  # a backlog: let it drain so the next load starts clean
        await settle_cpu(target, quiet=0.2, most=reply_timeout)
    if sent.latencies:
        phase.ack_p50_ms = pct(sent.latencies, 50) * 1000
        phase.ack_p99_ms = pct(sent.latencies, 99) * 1000
    if reply_s:
        phase.reply_p50_ms = pct(reply_s, 50) * 1000
        phase.reply_p99_ms = pct(reply_s, 99) * 1000
    print(f"  {app:<20} {load:<22} answered {phase.answered}/{count} at "
          f"{phase.answered_per_s:.1f}/s, ack p50/p99 {phase.ack_p50_ms:.0f}/"
          f"{phase.ack_p99_ms:.0f} ms, reply p50/p99 {phase.reply_p50_ms:.0f}/"
          f"{phase.reply_p99_ms:.0f} ms, CPU {phase.cpu_ms_per_answer:.1f} ms/answer (fakes "
          f"{phase.fakes_cpu_ms_per_answer:.1f}, driver {phase.driver_cpu_ms_per_answer:.1f})"
          + (f", {phase.commits_per_answer:.1f} commits and {phase.pg_cpu_ms_per_answer:.1f} "
             "ms PostgreSQL CPU per answer" if phase.commits_per_answer is not None else "")
          + (f", non-200: {phase.errors}" if phase.errors else "")
          + f"\n    machine busy {phase.machine_busy_cores:.2f} of {os.cpu_count()} cores;"
          f" {' '.join(f'{m} {n:.2f}' for m, n in phase.slack_calls_per_answer.items())}"
          f" model {phase.model_calls_per_answer:.2f} per answer", flush=True)
    return phase


async def warm(target: Stack) -> None:
    """One message per replica, answered, before anything is measured."""
    events = await target.new_events(len(target.urls))
    await drive(target, events, 1)
    replies = await target.reply_times([e["event"]["ts"] for e in events], 60)
    if any(at is None for at in replies.values()):
        raise RuntimeError(f"{target.kind}: the warm-up message got no answer")


def loads(args: argparse.Namespace) -> list[tuple[str, int, Any]]:
    """(label, message count, how to send them) for every load of one app."""
    burst, conc = args.burst, args.concurrency
    found: list[tuple[str, int, Any]] = [
        (f"burst {burst}@{conc}", burst, lambda t: lambda ev: drive(t, ev, conc))]
    if args.tenx:
        found.append((f"burst {burst * 10}@{conc * 10}", burst * 10,
                      lambda t: lambda ev: drive(t, ev, conc * 10)))
    if args.seconds > 0:
        count = round(args.rate * args.seconds)
        found.append((f"sustained {args.rate:g}/s x {args.seconds:g}s", count,
                      lambda t: lambda ev: drive_rate(t, ev, args.rate)))
    return found


async def run_app(kind: str, database: str, label: str, args: argparse.Namespace,
                  profile: Path | None = None) -> list[Phase]:
    phases = []
    async with stack(kind, database) as target:
        await warm(target)
        for load, count, sender in loads(args):
            phases.append(await measure(target, label, load, count, sender(target),
                                        args.reply_timeout))
        if profile is not None:
            await profile_burst(target, profile, args)
    return phases


async def run_alternating(database: str, setups: Sequence[tuple[str, int, str]],
                          args: argparse.Namespace) -> list[Phase]:
    """Start every (kind, replicas, label) set-up side by side, each on its own fresh database
    and fakes, then send the burst to each in turn, `rounds` times: all set-ups see the same
    moments of a shared machine's load."""
    phases: list[Phase] = []
    async with contextlib.AsyncExitStack() as started:
        targets = [await started.enter_async_context(stack(kind, database, replicas=n))
                   for kind, n, _ in setups]
        for target in targets:
            await warm(target)
        load, count, sender = loads(args)[0]
        for _ in range(args.rounds):
            for target, (_, _, label) in zip(targets, setups, strict=True):
                phases.append(await measure(target, label, load, count, sender(target),
                                            args.reply_timeout))
    return phases


def round_ratios(phases: Sequence[Phase], labels: Sequence[str], rounds: int
                 ) -> dict[str, float]:
    """Side by side, the first label being the bare app: each bot set-up's throughput and CPU
    ratios against the bare app's burst of the same round, and their medians over the rounds
    (a shared machine's speed drifts between rounds more than the ratio does)."""
    figures: dict[str, float] = {}
    for label in labels[1:]:
        each_round = [ratios(*(phases[n * len(labels) + labels.index(x)]
                               for x in (labels[0], label))) for n in range(rounds)]
        for name in ("throughput bare/bot", "CPU/answer bot/bare"):
            values = [r[name] for r in each_round]
            figures[f"{label}: {name}, median of {rounds} rounds"] = statistics.median(values)
            figures[f"{label}: {name}, lowest round"] = min(values)
            figures[f"{label}: {name}, highest round"] = max(values)
    return figures


def median_rate(phases: Sequence[Phase], label: str, figure: str = "answered_per_s") -> float:
    values = sorted(getattr(p, figure) for p in phases if p.app == label)
    return values[len(values) // 2] if values else 0.0


async def run_replicas(database: str, args: argparse.Namespace
                       ) -> tuple[list[Phase], dict[str, float]]:
    """One bot process against two bot processes on one database, alternating bursts."""
    name = db_name(database)
    phases = await run_alternating(database, [("bot", 1, f"bot {name} x1"),
                                              ("bot", 2, f"bot {name} x2")], args)
    x1, x2 = median_rate(phases, f"bot {name} x1"), median_rate(phases, f"bot {name} x2")
    return phases, {f"answered/s, median of {args.rounds}: one replica": x1,
                    f"answered/s, median of {args.rounds}: two replicas": x2,
                    f"two replicas / one ({phases[0].load})": x2 / x1 if x1 else 0.0}


async def profile_burst(target: Stack, out: Path, args: argparse.Namespace) -> None:
    """Sample the app's process with py-spy (non-blocking, so the app is not paused) through
    an extra burst of `--profile-burst` messages; write py-spy's collapsed stacks to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = await asyncio.create_subprocess_exec(
        str(PYSPY), "record", "--nonblocking", "--format", "raw", "--rate", "200",
        "--subprocesses", "--pid", str(target.pid), "-o", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)  # attached
    count = args.profile_burst
    events = await target.new_events(count)
    cpu_before = target.cpu_seconds()
    await drive(target, events, args.concurrency)
    await target.reply_times([e["event"]["ts"] for e in events], args.reply_timeout)
    cpu = await settle_cpu(target) - cpu_before
    spy.send_signal(signal.SIGINT)
    _, err = await spy.communicate()
    print(f"  profile: {count} messages at {args.concurrency}, {cpu:.1f} CPU s, py-spy "
          f"samples in {out} ({err.decode().strip().splitlines()[-1:] or ''})")


def db_name(database: str) -> str:
    return "sqlite" if database == "sqlite" else "postgresql"


def ratios(bare: Phase, bot: Phase) -> dict[str, float]:
    def over(a: float, b: float) -> float:
        return a / b if b else float("inf")
    return {"throughput bare/bot": over(bare.answered_per_s, bot.answered_per_s),
            "ack p50 bot/bare": over(bot.ack_p50_ms, bare.ack_p50_ms),
            "ack p99 bot/bare": over(bot.ack_p99_ms, bare.ack_p99_ms),
            "reply p50 bot/bare": over(bot.reply_p50_ms, bare.reply_p50_ms),
            "reply p99 bot/bare": over(bot.reply_p99_ms, bare.reply_p99_ms),
            "CPU/answer bot/bare": over(bot.cpu_ms_per_answer, bare.cpu_ms_per_answer)}


def report(phases: Sequence[Phase], two_vs_one: dict[str, float]) -> dict[str, Any]:
    rows = [[p.app, p.load, f"{p.answered}/{p.sent}", p.answered_per_s, p.ack_p50_ms,
             p.ack_p99_ms, p.reply_p50_ms, p.reply_p99_ms, p.cpu_ms_per_answer,
             sum(p.errors.values()), p.fakes_cpu_ms_per_answer,
             "" if p.commits_per_answer is None else p.commits_per_answer,
             "" if p.pg_cpu_ms_per_answer is None else p.pg_cpu_ms_per_answer]
            for p in phases]
    print(table(["app", "load", "answered", "answered/s", "ack p50 ms", "ack p99 ms",
                 "reply p50 ms", "reply p99 ms", "CPU ms/answer", "non-200",
                 "fakes CPU ms/ans", "PG commits/ans", "PG CPU ms/ans"], rows))
    bare = {p.load: p for p in phases if p.app == "bare"}
    ratio_rows, ratio_json = [], []
    for p in phases:
        if p.app != "bare" and p.load in bare:
            r = ratios(bare[p.load], p)
            ratio_rows.append([p.app, p.load, *r.values()])
            ratio_json.append({"app": p.app, "load": p.load, **r})
    if ratio_rows:
        print()
        print(table(["ratios vs bare", "load", "throughput bare/bot", "ack p50 ×", "ack p99 ×",
                     "reply p50 ×", "reply p99 ×", "CPU/answer ×"], ratio_rows))
    if two_vs_one:
        print()
    for name, value in two_vs_one.items():
        print(f"{name}: {value:.2f}")
    return {"phases": [asdict(p) for p in phases], "ratios": ratio_json,
            "replicas": two_vs_one}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", nargs="+",
                        default=["sqlite", "postgresql://postgres@127.0.0.1:5432"],
                        help="sqlite (a temp file) and/or PostgreSQL server URLs (a fresh "
                             "database is created on it and dropped afterwards)")
    parser.add_argument("--burst", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--tenx", action="store_true",
                        help="also a burst ten times larger at ten times the concurrency")
    parser.add_argument("--rate", type=float, default=8.0, help="sustained messages/s")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="sustained load duration (0: no sustained load)")
    parser.add_argument("--reply-timeout", type=float, default=120.0,
                        help="seconds to wait for the answers after the last event is sent")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bursts sent to each set-up in turn when set-ups are compared "
                             "side by side (replicas; variants with --side-by-side)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run the bare app, the bot and every --variant side by side and "
                             "send them the burst in turn, --rounds times: each round's ratios "
                             "against that round's bare app, and their medians")
    parser.add_argument("--no-replicas", dest="replicas", action="store_false",
                        help="skip the two-replica burst on PostgreSQL")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="profile each bot with py-spy through an extra burst; write "
                             "DIR/<database>.txt (collapsed stacks) and a summary")
    parser.add_argument("--profile-burst", type=int, default=600)
    parser.add_argument("--variant", action="append", default=[],
                        help="also measure the bot with levers simulated (bench/variants.py: "
                             "no-pre-ping, no-reaction, sqlite-one-writer) or settings "
                             "(section.key=value, e.g. slack.streaming=false); comma-separated "
                             "to combine; repeatable")
    parser.add_argument("--answer-words", type=int, default=0, metavar="N",
                        help="the model answers N words (streamed a word per chunk) instead "
                             "of \"ok\"")
    parser.add_argument("--json", type=Path, default=RESULTS / "load-latest.json",
                        help="where to write the figures as JSON ('-' for stdout)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if args.answer_words:
        os.environ["BENCH_ANSWER_WORDS"] = str(args.answer_words)  # the fakes processes read it
    began = time.perf_counter()
    print(f"load: burst {args.burst}@{args.concurrency}"
          + (f", {args.burst * 10}@{args.concurrency * 10}" if args.tenx else "")
          + (f", sustained {args.rate:g}/s x {args.seconds:g}s" if args.seconds else ""),
          flush=True)
    phases = await run_app("bare", "sqlite", "bare", args)
    two_vs_one: dict[str, float] = {}
    for database in args.database:
        name = db_name(database)
        profile = args.profile / f"{name}.txt" if args.profile else None
        phases += await run_app("bot", database, f"bot {name}", args, profile)
        if args.side_by_side:
            setups = [("bare", 1, "bare (side by side)"),
                      ("bot", 1, f"bot {name} (side by side)")] + [
                (f"bot:{v}", 1, f"bot {name} [{v}]") for v in args.variant]
            compared = await run_alternating(database, setups, args)
            phases += compared
            two_vs_one |= round_ratios(compared, [label for _, _, label in setups], args.rounds)
            for figure in ("answered_per_s", "cpu_ms_per_answer", "ack_p99_ms"):
                base = median_rate(compared, setups[1][2], figure)
                for _, _, label in setups[2:]:
                    two_vs_one[f"{label} / bot: {figure}, median of {args.rounds}"] = (
                        median_rate(compared, label, figure) / base if base else 0.0)
        else:
            for variant in args.variant:
                phases += await run_app(f"bot:{variant}", database, f"bot {name} [{variant}]",
                                        args)
        if name == "postgresql" and args.replicas:
            replica_phases, replica_figures = await run_replicas(database, args)
            phases += replica_phases
            two_vs_one |= replica_figures
    print(f"\n== results ({time.perf_counter() - began:.0f}s, {os.cpu_count()} CPUs)")
    result = report(phases, two_vs_one)
    result["settings"] = {k: str(v) for k, v in vars(args).items()}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "loadavg_at_end": os.getloadavg()}
    if args.profile:
        from bench.profile_summary import summarize
        for database in args.database:
            path = args.profile / f"{db_name(database)}.txt"
            if path.exists():
                print(f"\n== profile of bot {db_name(database)} ({path})")
                summary = summarize(path)
                print(summary["text"])
                result.setdefault("profiles", {})[db_name(database)] = summary["json"]
    if str(args.json) == "-":
        print(json.dumps(result, indent=2))
    else:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nJSON: {args.json}")
    headline = {}
    for r in result["ratios"]:
        if r["load"].startswith(f"burst {args.burst}@"):
            headline[f"{r['app']}: throughput bare/bot"] = r["throughput bare/bot"]
            headline[f"{r['app']}: ack p99 bot/bare"] = r["ack p99 bot/bare"]
            headline[f"{r['app']}: CPU/answer bot/bare"] = r["CPU/answer bot/bare"]
    return headline | two_vs_one


if __name__ == "__main__":
    asyncio.run(main())
