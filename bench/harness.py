"""What the benchmarks share: starting a stack (fakes process + app process), a fresh database,
sending signed events with timing, reading a process's RSS, percentiles and a table."""

from __future__ import annotations

import asyncio
import json
import os
import socket
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
import yaml

from sandbox.slack_delivery import sign

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
PATH = "/slack/events"


@dataclass
class Child:
    process: asyncio.subprocess.Process
    ready: str  # what followed READY on its first line ("" for apps polled on /healthz)
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def child_env() -> dict[str, str]:
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


async def spawn(module: str, args: Sequence[str], log: Path) -> Child:
    """Run `python -m module args...` from the repository root; wait for its READY line."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env=child_env())
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_config(fakes: dict[str, Any], database: str, port: int,
               settings: dict[str, str] | None = None) -> dict[str, Any]:
    """The app.yaml a user would write for HTTP mode against the sandbox fakes (the bare app
    reads the same file), with `settings` (`{"section.key": "yaml value"}`) on top.
    Everything not named keeps app.yaml's defaults."""
    config = {
        "slack": {"mode": "http", "bot_token": fakes["bot_token"],
                  "signing_secret": fakes["signing_secret"], "api_url": fakes["slack_api"],
                  "http": {"host": "127.0.0.1", "port": port, "path": PATH}},
        "channels": {"support": fakes["support"], "customer": [fakes["customers"]]},
        "llm": {"model": "openai/bench-model", "api_base": fakes["model"],
                "api_key": "sk-bench"},
        "database": {"url": database},
        "log_level": "WARNING",
    }
    for dotted, value in (settings or {}).items():
        *sections, key = dotted.split(".")
        target = config
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = yaml.safe_load(value)
    return config


def variant_settings(kind: str) -> dict[str, str]:
    """The app.yaml settings of a `bot:<variant,...>` kind: its `section.key=value` variants,
    written into the config file, so the worker processes run with them too."""
    if not kind.startswith("bot:"):
        return {}
    return dict(v.split("=", 1) for v in kind[4:].split(",") if "=" in v)


# What each kind of app runs: the real product's CLI, or the bare baseline (bench/bare_app.py).
APP_COMMANDS = {"bot": ["-m", "bot", "run", "--config"],
                "bare": ["-m", "bench.bare_app", "--config"]}


def app_command(kind: str) -> list[str]:
    """`bot`, `bare`, or `bot:<variant,...>` (the bot with levers simulated, bench/variants.py,
    and/or settings, `variant_settings`)."""
    if kind.startswith("bot:"):
        levers = [v for v in kind[4:].split(",") if v and "=" not in v]
        if not levers:
            return APP_COMMANDS["bot"]
        return ["-m", "bench.variants", ",".join(levers), "run", "--config"]
    return APP_COMMANDS[kind]


async def spawn_app(kind: str, config: dict[str, Any], workdir: Path, name: str) -> Child:
    """Write `config` as `<name>.yaml` and run the app on it as its own process (`python -m bot
    run --config ...` for the bot); return once `GET /healthz` answers 200."""
    config_file, log = workdir / f"{name}.yaml", workdir / f"{name}.log"
    config_file.write_text(yaml.safe_dump(config))
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *app_command(kind), str(config_file), cwd=ROOT,
            stdout=output, stderr=output, env=child_env())
    http = config["slack"]["http"]
    health = f"http://{http['host']}:{http['port']}/healthz"
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline and process.returncode is None:
            try:
                async with session.get(health) as resp:
                    if resp.status == 200:
                        return Child(process, "", log)
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    if process.returncode is None:
        process.kill()
    await process.wait()
    raise RuntimeError(f"{kind} ({name}) did not start; its log:\n{log.read_text()[-3000:]}")


def rss_mib(pid: int) -> float:
    """The process's resident set size (VmRSS of /proc/<pid>/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (index 0 is field 3, the state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of the process and all its descendants: the live ones from
    /proc, the exited and reaped ones through their parents' cutime/cstime."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    ticks = 0
    for member in tree:
        try:
            fields = _stat(member)
        except OSError:
            continue  # exited meanwhile: counted in its parent's cutime once reaped
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


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
    """One app under test (`bot` or `bare`), in one or more replica processes on one database,
    wired to its own sandbox fakes process."""

    kind: str
    urls: list[str]  # each replica's events URL
    children: list[Child]
    fakes: dict[str, Any]
    session: aiohttp.ClientSession
    fakes_pid: int = 0
    database: str = ""  # the database URL the app runs on

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def pid(self) -> int:
        return self.children[0].pid

    async def control(self, route: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.fakes["control"] + route, json=body,
                                     timeout=aiohttp.ClientTimeout(total=600)) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def new_events(self, count: int) -> list[dict[str, Any]]:
        return (await self.control("/events", {"n": count}))["events"]

    async def reply_times(self, roots: Sequence[str], timeout: float) -> dict[str, float | None]:
        """When the emulator got the app's first post into each root's thread (time.time())."""
        return (await self.control("/replies", {"roots": list(roots), "timeout": timeout})
                )["replies"]

    def rss_mib(self) -> float:
        return sum(rss_mib(child.pid) for child in self.children)

    def cpu_seconds(self) -> float:
        """CPU seconds of every replica process and their children so far."""
        return sum(tree_cpu_seconds(child.pid) for child in self.children)

    def fakes_cpu_seconds(self) -> float:
        """CPU seconds of the fakes process (the emulator and model server): not the app's."""
        return tree_cpu_seconds(self.fakes_pid) if self.fakes_pid else 0.0

    async def commits(self) -> int | None:
        """PostgreSQL only: transactions committed in the app's database so far."""
        if not self.database.startswith("postgresql"):
            return None
        connection = await asyncpg.connect(self.database)
        try:
            return int(await connection.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
        finally:
            await connection.close()

    async def backend_cpu(self) -> dict[int, float]:
        """PostgreSQL only: CPU seconds so far of each server backend connected to the app's
        database (its pool's connections), by pid; {} on SQLite."""
        if not self.database.startswith("postgresql"):
            return {}
        connection = await asyncpg.connect(self.database)
        try:
            pids = [r[0] for r in await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]
        finally:
            await connection.close()
        found = {}
        for pid in pids:
            try:
                found[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return found


@asynccontextmanager
async def stack(kind: str, database: str = "sqlite", replicas: int = 1) -> AsyncIterator[Stack]:
    """Start the fakes, a fresh database and `replicas` app processes on it (for the bot:
    `python -m bot run --config <generated app.yaml>`); stop and clean up afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        workdir = Path(tmp)
        fakes_child = await spawn("bench.fakes", [], workdir / "fakes.log")
        children: list[Child] = []
        try:
            fakes = json.loads(fakes_child.ready)
            async with fresh_database(database, workdir) as url, aiohttp.ClientSession() as http:
                try:
                    for n in range(replicas):
                        config = app_config(fakes, url, free_port(), variant_settings(kind))
                        children.append(await spawn_app(kind, config, workdir, f"{kind}{n}"))
                    urls = [f"http://127.0.0.1:{c['slack']['http']['port']}{PATH}"
                            for c in (yaml.safe_load((workdir / f"{kind}{n}.yaml").read_text())
                                      for n in range(replicas))]
                    result = Stack(kind, urls, children, fakes, http,
                                   fakes_pid=fakes_child.pid, database=url)
                    # Slack echoes the app's own posts back to it (to one replica, as a load
                    # balancer would send each delivery to one).
                    await result.control("/connect", {"url": urls[0]})
                    yield result
                finally:
                    for n, child in enumerate(children):
                        await child.stop()
                        report_log_problems(f"{kind}{n}" if replicas > 1 else kind, child.log)
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


class _Sender:
    """Signs and POSTs event payloads as Slack would, timing each request (the ack). Payload i
    goes to replica i mod n: a load balancer in front of the replicas."""

    def __init__(self, target: Stack, result: Drive, session: aiohttp.ClientSession) -> None:
        self.target, self.result, self.session = target, result, session
        self.secret = target.fakes["signing_secret"]

    async def send(self, index: int, payload: dict[str, Any]) -> None:
        result, body = self.result, json.dumps(payload).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(self.secret, stamp, body)}
        url = self.target.urls[index % len(self.target.urls)]
        result.sent_at[payload["event"]["ts"]] = time.time()
        began = time.perf_counter()
        try:
            async with self.session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0  # no answer: counted, but no latency to record
        else:
            result.latencies.append(time.perf_counter() - began)
        if status != 200:
            result.errors[status] = result.errors.get(status, 0) + 1


async def drive(target: Stack, payloads: Sequence[dict[str, Any]], concurrency: int) -> Drive:
    """POST each payload as Slack would (signed JSON), `concurrency` at a time (closed loop:
    a sender sends its next event when the previous one is acknowledged)."""
    result, queue = Drive(), list(reversed(list(enumerate(payloads))))
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def worker(sender: _Sender) -> None:
        while queue:
            await sender.send(*queue.pop())

    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        sender = _Sender(target, result, session)
        await asyncio.gather(*(worker(sender) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


async def drive_rate(target: Stack, payloads: Sequence[dict[str, Any]], rate: float) -> Drive:
    """POST the payloads at a steady `rate` per second (open loop: each is sent on schedule
    whether or not earlier ones were acknowledged, as Slack does)."""
    result = Drive()
    connector = aiohttp.TCPConnector(limit=0)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        sender, tasks = _Sender(target, result, session), []
        for index, payload in enumerate(payloads):
            delay = began + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(sender.send(index, payload)))
        await asyncio.gather(*tasks)
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
