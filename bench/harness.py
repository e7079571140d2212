"""What the benchmarks share: starting a stack (fakes process + app process), a fresh database,
sending signed events with timing, reading a process's RSS, percentiles and a table."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import aiohttp
import asyncpg

from sandbox.slack_delivery import sign

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class Child:
    process: asyncio.subprocess.Process
    ready: str  # what followed READY on its first line
    log: Path

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def spawn(module: str, args: Sequence[str], log: Path) -> Child:
    """Run `python -m module args...` from the repository root; wait for its READY line."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)).decode()
    except TimeoutError:
        line = ""
    if not line.startswith("READY "):
        process.kill()
        await process.wait()
        raise RuntimeError(f"{module} did not start; its log:\n{log.read_text()[-3000:]}")
    return Child(process, line[len("READY "):].strip(), log)


def rss_mib(pid: int) -> float:
    """The process's resident set size (VmRSS of /proc/<pid>/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def fresh_database(spec: str, workdir: Path) -> AsyncIterator[str]:
    """`sqlite`: a file in `workdir`. `postgresql://user@host:port[/db]`: a new database on
    that server, created here and dropped afterwards."""
    if not spec.startswith("postgresql"):
        yield f"sqlite:///{workdir}/bench.db"
        return
    server = spec.rsplit("/", 1)[0] if spec.count("/") > 2 else spec
    admin_dsn, name = f"{server}/postgres", f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{server}/{name}"
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class Stack:
    """One app under test (`bot` or `bare`) wired to its own sandbox fakes."""

    kind: str
    url: str
    pid: int
    fakes: dict[str, Any]
    session: aiohttp.ClientSession

    async def control(self, route: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.fakes["control"] + route, json=body,
                                     timeout=aiohttp.ClientTimeout(total=300)) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def new_events(self, count: int) -> list[dict[str, Any]]:
        return (await self.control("/events", {"n": count}))["events"]

    async def reply_times(self, roots: Sequence[str], timeout: float) -> dict[str, float | None]:
        return (await self.control("/replies", {"roots": list(roots), "timeout": timeout})
                )["replies"]

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


@asynccontextmanager
async def stack(kind: str, database: str = "sqlite") -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        workdir = Path(tmp)
        fakes_child = await spawn("bench.fakes", [], workdir / "fakes.log")
        try:
            fakes = json.loads(fakes_child.ready)
            async with fresh_database(database, workdir) as url, aiohttp.ClientSession() as http:
                settings = json.dumps({"fakes": fakes, "database": url})
                app = await spawn("bench.serve", [kind, settings], workdir / "app.log")
                try:
                    events_url = f"http://127.0.0.1:{int(app.ready)}/slack/events"
                    result = Stack(kind, events_url, app.process.pid, fakes, http)
                    if kind == "bot":  # Slack echoes the bot's own posts back to it
                        await result.control("/connect", {"url": events_url})
                    yield result
                finally:
                    await app.stop()
                    report_log_problems(kind, app.log)
        finally:
            await fakes_child.stop()


def report_log_problems(kind: str, log: Path) -> None:
    """A benchmark's figures mean little if the app failed on the way: say so, briefly."""
    lines = log.read_text(errors="replace").splitlines()
    problems = [line for line in lines if line.startswith(("ERROR", "CRITICAL", "WARNING"))]
    if problems:
        print(f"[{kind}] {len(problems)} warnings/errors in the app's log, first ones:")
        print("\n".join(f"  {line[:160]}" for line in problems[:5]))


@dataclass
class Drive:
    """What sending a batch of events measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, request sent → response
    sent_at: dict[str, float] = field(default_factory=dict)  # root ts → wall-clock send time
    errors: dict[int, int] = field(default_factory=dict)  # status (not 200; 0: none) → count
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def drive(target: Stack, payloads: Sequence[dict[str, Any]], concurrency: int) -> Drive:
    """POST each payload as Slack would (signed JSON), `concurrency` at a time."""
    result, queue = Drive(), list(reversed(payloads))
    secret = target.fakes["signing_secret"]
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            payload = queue.pop()
            body = json.dumps(payload).encode()
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                       "X-Slack-Signature": sign(secret, stamp, body)}
            result.sent_at[payload["event"]["ts"]] = time.time()
            began = time.perf_counter()
            try:
                async with session.post(target.url, data=body, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0  # no answer: counted, but no latency to record
            else:
                result.latencies.append(time.perf_counter() - began)
            if status != 200:
                result.errors[status] = result.errors.get(status, 0) + 1

    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


def reply_latencies(sent: Drive, replies: dict[str, float | None]) -> tuple[list[float], int]:
    """Seconds from each event's send to the bot's first post in its thread; and how many
    threads got no reply in time."""
    found = [at - sent.sent_at[root] for root, at in replies.items() if at is not None]
    return found, sum(at is None for at in replies.values())


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:#.3g}"
    return str(value)
