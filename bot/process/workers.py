"""Worker processes: `python -m bot run` split into a Slack front and workers.

The front (the `run` process) verifies each Slack request, stores each Events API delivery
and acks it (bot/pipeline/deliveries.py), and runs no work: a stored delivery writes the line
`deliveries` to one worker process's stdin (each in turn), and `Worker.kick(conversation_id)`
there (commands, buttons) writes the id, one line, to the worker process chosen by
conversation, so one conversation's kicks go to one process. Each worker process (`python -m
bot worker`) is a whole worker: it hands stored deliveries to the listeners, claims
conversations with a lease in the database, runs their model steps, sends the outbox, and the
first one runs the follow-up timers. Nothing is handed over in the pipe but wake-ups and the ⏳
timers of new customer messages (`hold <conversation> <channel> <ts>`; see
usecases/holding.py): what to do is in the database, so a lost line (a worker that died, a
full pipe) only waits for the next sweep (`workers.sweep_every`), which every worker process
runs, as a lone process does. The front starts a worker process again when one exits; a worker
process stops when the front is gone (its stdin closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from bot.agent.model import warm_up
from bot.config import AppConfig
from bot.listeners.app import build_app, share_identity
from bot.process.heap import freeze_start_up_heap
from bot.process.scheduler import FollowUpScheduler
from bot.process.wiring import build_services
from bot.toolkit import metrics

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 30.0
WORKER_NICENESS = 5
HOLD = "hold"  # the pipe's line for a ⏳ timer
DELIVERIES = "deliveries"  # the pipe's line for "a Slack delivery is stored"


class WorkerProcesses:
    """The front's side: starts `count` worker processes, starts again any that exits, and
    forwards kicks to them."""

    def __init__(self, config_path: str, count: int) -> None:
        self._config_path = config_path
        self._count = count
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._next = 0  # the worker process the next stored delivery wakes

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes.values() if p.returncode is None]

    async def start(self) -> None:
        for index in range(self._count):
            await self._spawn(index)
        self._watchers = [asyncio.create_task(self._watch(index), name=f"worker-process-{index}")
                          for index in range(self._count)]

    async def _spawn(self, index: int) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "worker", "--config", self._config_path,
            "--index", str(index), stdin=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C in the terminal reaches the front only, which stops
            # the worker processes after the Slack side, in order.
            start_new_session=True)
        self._processes[index] = process
        log.info("worker process %d started (pid %d)", index, process.pid)

    async def _watch(self, index: int) -> None:
        while not self._stopping:
            process = self._processes[index]
            code = await process.wait()
            metrics.process_exited(process.pid)  # its live gauges go; its counts stay summed
            if self._stopping:
                return
            log.warning("worker process %d (pid %d) exited with %s; starting it again",
                        index, process.pid, code)
            await asyncio.sleep(RESTART_PAUSE_SECONDS)
            try:
                await self._spawn(index)
            except Exception:
                log.exception("could not start worker process %d", index)

    def kick(self, conversation_id: int) -> None:
        """Wake the worker process of this conversation; if it is down, its sweep finds the
        work when it is back."""
        self._send(conversation_id, b"%d\n" % conversation_id)

    def hold(self, conversation_id: int, channel: str, ts: str) -> None:
        """Have the conversation's worker process put the ⏳ on a message if its answer is
        slow (sent before the kick, so the timer starts first)."""
        self._send(conversation_id, f"{HOLD} {conversation_id} {channel} {ts}\n".encode())

    def deliveries_waiting(self) -> None:
        """Wake one worker process (each in turn) to hand stored deliveries to the
        listeners; any of them can take any delivery."""
        self._next += 1
        self._send(self._next, f"{DELIVERIES}\n".encode())

    def _send(self, conversation_id: int, line: bytes) -> None:
        process = self._processes.get(conversation_id % self._count)
        if process is None or process.returncode is not None or process.stdin is None:
            return
        if process.stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            process.stdin.write(line)

    async def stop(self) -> None:
        """Ask every worker process to stop (running turns finish) and wait for them."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        live = [p for p in self._processes.values() if p.returncode is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in live:
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("worker process pid %d did not stop; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


async def run_worker_process(config: AppConfig, index: int) -> None:
    """One worker process: work, sweep and (the first one) timers until SIGTERM/SIGINT or
    until the front closes our stdin."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)  # the front's acks come first when the cores are busy
    await warm_up(config.chat_models)
    services = build_services(config, sweep_seconds=config.workers.sweep_every.total_seconds())
    app = build_app(services.listener_parts())  # the listeners stored deliveries are handed to
    await share_identity(app, services.slack)
    services.worker.start()
    services.deliveries.start()
    services.support_channel.start()
    scheduler: FollowUpScheduler | None = None
    if index == 0:
        scheduler = FollowUpScheduler(services.followups, services.engine, config.timers)
        scheduler.start()
    freeze_start_up_heap()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    reader = asyncio.create_task(
        _read_pipe(services.worker.kick, services.holding.schedule, services.deliveries.wake,
                   stopping), name="kicks")
    log.info("worker process %d running", index)
    try:
        await stopping.wait()
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        if scheduler is not None:
            await scheduler.stop()
        await services.close()


async def _read_pipe(kick: Callable[[int], None], hold: Callable[..., None],
                     deliveries: Callable[[], None], stopping: asyncio.Event) -> None:
    """Act on the front's lines: `<conversation>` wakes its work, `hold …` starts a ⏳ timer,
    `deliveries` hands stored Slack deliveries to the listeners."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            fields = line.decode("ascii", "replace").split()
            try:
                if fields == [DELIVERIES]:
                    deliveries()
                elif len(fields) == 4 and fields[0] == HOLD:
                    hold(conversation_id=int(fields[1]), channel=fields[2], ts=fields[3])
                else:
                    [conversation] = fields
                    kick(int(conversation))
            except ValueError:
                log.warning("ignored a malformed line from the front %r", line[:60])
    finally:
        if not stopping.is_set():
            log.info("the front process is gone; stopping")
            stopping.set()
