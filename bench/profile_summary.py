"""Summarize py-spy's collapsed stacks (`py-spy record --format raw`): where the samples go by
area (litellm, SQLAlchemy, drivers, slack_sdk, Bolt, aiohttp, our code, ...) and the hottest
functions by own and by cumulative samples.

    .venv/bin/python -m bench.profile_summary bench/results/profile/postgresql.txt [--top 15]

Each line of the input is `frame;frame;...;leaf COUNT` (root first), a frame being
`function (path:line)`. Areas are read from the frame's path. "own" counts a sample for its
leaf frame's area; "attributed" gives a sample whose leaf is in the standard library or the
event loop (json, re, copy, asyncio internals, ...) to the nearest library or our code above
it, since that caller is why the work happens; "in stack" is the share of samples with at
least one frame of the area (areas overlap there: our code calls SQLAlchemy calls asyncpg).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")

# (area, path prefixes), first match wins; paths are as py-spy prints them (package-relative).
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("our code (bot/, storage/)", ("bot/", "storage/")),
    ("litellm (+openai, httpx)", ("litellm/", "openai/", "httpx/", "httpcore/", "tiktoken",
                                  "tokenizers", "anyio/", "h11/", "jiter", "distro")),
    ("SQLAlchemy (+greenlet)", ("sqlalchemy/", "greenlet")),
    ("asyncpg", ("asyncpg/",)),
    ("aiosqlite/sqlite3", ("aiosqlite/", "sqlite3/")),
    ("slack_sdk", ("slack_sdk/",)),
    ("slack_bolt", ("slack_bolt/",)),
    ("aiohttp (+yarl, multidict)", ("aiohttp/", "yarl/", "multidict/", "aiosignal",
                                    "frozenlist", "propcache")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("alembic/APScheduler", ("alembic/", "apscheduler/")),
    ("event loop (asyncio, selectors, threads)", ("asyncio/", "selectors.py", "threading.py",
                                                  "concurrent/", "queue.py")),
]
STDLIB = "stdlib/other"
GENERIC = {"event loop (asyncio, selectors, threads)", STDLIB}
# Frames that only schedule work: never a useful "hot spot" on their own.
# Leaves where a thread waits rather than computes (py-spy's idle detection misses them when
# attaching --nonblocking): the loop's epoll, aiosqlite's and the executor's queue gets, locks.
WAITING = re.compile(r"^(EpollSelector\.select|Condition\.wait|Event\.wait|Queue\.get|"
                     r"_connection_worker_thread@aiosqlite/core\.py:59|"
                     r"_worker@concurrent/futures/thread\.py:81)")
PLUMBING = re.compile(r"^(Task\.__step|Handle\._run|_run_once|run_forever|run_until_complete|"
                      r"BaseEventLoop\.\w+|Runner\.run|run|main|<module>|_run_module_as_main|"
                      r"_run_code|Thread\.\w+|_worker|_WorkItem\.run|Context\.run)$")


def area_of(path: str) -> str:
    for area, prefixes in AREAS:
        if path.startswith(prefixes) or any(f"/{p}" in path for p in prefixes if "/" in p):
            return area
    # py-spy prints a bare file name when the package path is ambiguous; litellm has many
    if "transformation" in path or path.startswith(("llm_", "litellm")):
        return "litellm (+openai, httpx)"
    return STDLIB


def parse(path: Path) -> tuple[list[tuple[list[tuple[str, str]], int]], int]:
    """[(frames root-first as (function, path), count)] of the samples where a thread was
    working, and the count of those where it waited (WAITING leaves, empty stacks); the
    `process ...` pseudo-frame and thread frames py-spy adds are dropped."""
    stacks, waiting = [], 0
    for line in path.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames, leaf = [], ""
        for raw in body.split(";"):
            if raw.startswith(("process ", "thread ")):
                continue
            match = FRAME.match(raw)
            if match:
                frames.append((match["func"], match["path"]))
                leaf = f"{match['func']}@{match['path']}:{match['line']}"
        if frames and not WAITING.match(leaf):
            stacks.append((frames, int(count)))
        else:
            waiting += int(count)
    return stacks, waiting


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    stacks, waiting = parse(path)
    total = sum(count for _, count in stacks) or 1
    own, attributed, in_stack = Counter(), Counter(), Counter()
    own_fn, cum_fn = Counter(), Counter()
    for frames, count in stacks:
        areas = [area_of(p) for _, p in frames]
        own[areas[-1]] += count
        attributed[next((a for a in reversed(areas) if a not in GENERIC), areas[-1])] += count
        for area in set(areas):
            in_stack[area] += count
        func, file = frames[-1]
        own_fn[f"{file}:{func}"] += count
        for name in {f"{p}:{f}" for f, p in frames if not PLUMBING.match(f)}:
            cum_fn[name] += count
    ours = Counter({k: v for k, v in cum_fn.items() if k.startswith(("bot/", "storage/"))})

    def share(counter: Counter, key: str) -> float:
        return 100 * counter[key] / total

    names = [a for a, _ in AREAS] + [STDLIB]
    lines = [f"{total} working samples ({path}); {waiting} more in waits (epoll, queue gets) "
             "left out; shares are of working samples", "",
             f"{'area':<44}{'own %':>8}{'attributed %':>14}{'in stack %':>12}"]
    for area in sorted(names, key=lambda a: -attributed[a]):
        if own[area] or attributed[area] or in_stack[area]:
            lines.append(f"{area:<44}{share(own, area):>8.1f}{share(attributed, area):>14.1f}"
                         f"{share(in_stack, area):>12.1f}")
    for title, counter in (("hottest functions by own samples", own_fn),
                           ("hottest functions by cumulative samples (plumbing left out)",
                            cum_fn),
                           ("our code by cumulative samples", ours)):
        lines += ["", f"{title}:"]
        lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return {"text": "\n".join(lines),
            "json": {"samples": total, "waiting_samples": waiting,
                     "areas": {a: {"own": share(own, a), "attributed": share(attributed, a),
                                   "in_stack": share(in_stack, a)} for a in names},
                     "own": {k: 100 * v / total for k, v in own_fn.most_common(top)},
                     "cumulative": {k: 100 * v / total for k, v in cum_fn.most_common(top)},
                     "ours": {k: 100 * v / total for k, v in ours.most_common(top)}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(summarize(args.stacks, args.top)["text"])


if __name__ == "__main__":
    main()
