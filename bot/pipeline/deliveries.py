"""Slack Events API deliveries: stored and acknowledged at once, handed to the listeners by a
worker.

The ack never waits for what an event means. The Slack front (`accept`, called by the Bolt app
before its own dispatch) checks the request's signature, stores the delivery as received (one
INSERT; Slack's retry or a second replica given the same event inserts nothing), answers Slack
and wakes a worker: in this process, or a worker process through the pipe. A worker claims
stored deliveries, oldest first, holds them for `HOLD` (another process skips them meanwhile),
hands each to the same Bolt listeners as a Socket Mode request (its signature was checked on
arrival), and deletes it with its next claim. A worker that dies leaves its claims to expire;
another takes them again, and the listeners' own de-duplication (message keys, event ids in
`received_events`) makes the second run of a recorded message do nothing. A delivery the
listeners fail on (Bolt answers 500: the database was down, a bug) is tried again when its
hold expires, and after `MAX_ATTEMPTS` kept as failed, never retried (`doctor` counts them).

Handled at once, as before: what is not an Events API delivery (commands, buttons, views,
whose answer Slack shows), messages posted by bots and the bot's own events (its echoed posts,
its ⏳ reactions: Bolt drops them, or the listeners ignore them, with no database work), and
the support channel being shared or unshared (posts there stop before Slack hears back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import inbound
from storage.db import burst_writer, close_burst_writer, is_unavailable, write_when_free

log = logging.getLogger(__name__)

HOLD = timedelta(seconds=15)  # as a conversation's lease: a dead worker's claims expire soon
BATCH = 25  # deliveries claimed at once, handed to the listeners together
STORE_BATCH = 200  # deliveries stored in one transaction, at most
MAX_ATTEMPTS = 5
# The Bolt context key of the stored delivery a listener runs on: a listener that records the
# event deletes the delivery in the same transaction (`storage.inbound.forget_with`).
STORED_DELIVERY = "stored_delivery"

# In effect before the ack: the support channel stops taking posts the moment it is shared.
HANDLED_AT_ONCE = frozenset({"channel_shared", "channel_unshared"})

Dispatch = Callable[[AsyncBoltRequest], Awaitable[BoltResponse]]


def _first(headers: dict[str, Any], name: str) -> str:
    value = headers.get(name) or [""]
    return str(value[0] if isinstance(value, (list, tuple)) else value)


def _thread_of(body: Any, delivery_id: int) -> str:
    """The Slack thread (or message, for a reaction) an event is about, so that one thread's
    events are handed over in order; a delivery of nothing in particular is its own."""
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict):
        return f"#{delivery_id}"
    about = event.get("message") if isinstance(event.get("message"), dict) else event
    item = event.get("item") if isinstance(event.get("item"), dict) else {}
    channel = event.get("channel") or item.get("channel")
    thread = about.get("thread_ts") or about.get("ts") or item.get("ts")
    return f"{channel}:{thread}" if channel and thread else f"#{delivery_id}"


class Deliveries:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], *,
                 signing_secret: str | None, bot_user_id: Callable[[], Awaitable[str]],
                 sweep_seconds: float = 5.0, at_once: int = 8) -> None:
        # The store is one statement, written by a writer made for it (storage/db.py).
        self._engine = burst_writer(engine)
        self._to_store: list[tuple[str, str, asyncio.Future[None]]] = []
        self._storer: asyncio.Task[None] | None = None
        # At most this many hand-overs at once: within the pool's own connections, so a burst
        # queues here instead of opening and closing overflow connections.
        self._handing_over = asyncio.Semaphore(at_once)
        self._bot_user_id = bot_user_id
        self._sessions = sessions
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._sweep_seconds = sweep_seconds
        self._dispatch: Dispatch | None = None
        self._forward: Callable[[], None] | None = None
        self._draining: asyncio.Task[None] | None = None
        self._again = False
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._unreachable = False

    # the front ------------------------------------------------------------------------------
    async def accept(self, req: AsyncBoltRequest) -> BoltResponse | None:
        """Store an Events API delivery and return Slack's ack; None when the request is not
        one to store (Bolt handles it now, and refuses a bad signature as it always does)."""
        body = req.body
        if not isinstance(body, dict) or body.get("type") != "event_callback":
            return None
        event, event_id = body.get("event"), body.get("event_id")
        if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
            return None
        if event.get("type") in HANDLED_AT_ONCE or event.get("bot_id"):
            return None
        if event.get("user") == await self._bot_user_id():
            return None
        if req.mode == "http" and not self._signed(req):
            return None
        try:
            await self._store(event_id, req.raw_body or json.dumps(body))
        except Exception as error:  # noqa: BLE001 - not stored: Slack must send it again
            log.warning("could not store Slack event %s (%s); answered 500 so that Slack sends "
                        "it again", event_id, type(error).__name__)
            return BoltResponse(status=500, body="")
        return BoltResponse(status=200, body="")

    async def _store(self, event_id: str, body: str) -> None:
        """Store one delivery in the next transaction of this process's one store writer:
        what arrives while a store commits is written together in the next, so a burst is a
        few transactions, not one per event (on SQLite, each would wait for the one writer)."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_store.append((event_id, body, stored))
        if self._storer is None or self._storer.done():
            self._storer = asyncio.create_task(self._store_waiting(), name="deliveries-store")
        await stored

    async def _store_waiting(self) -> None:
        while self._to_store:
            batch, self._to_store = self._to_store[:STORE_BATCH], self._to_store[STORE_BATCH:]
            try:
                await write_when_free(self._engine, partial(
                    inbound.record_all, deliveries=[(e, body) for e, body, _ in batch]))
            except asyncio.CancelledError:  # stopped mid-store: these requests get no ack
                for *_, stored in batch + self._to_store:
                    stored.cancel()
                raise
            except Exception as error:  # noqa: BLE001 - each request answers for itself
                for *_, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for *_, stored in batch:
                if not stored.done():
                    stored.set_result(None)
            self.wake()

    def _signed(self, req: AsyncBoltRequest) -> bool:
        timestamp = _first(req.headers, "x-slack-request-timestamp")
        signature = _first(req.headers, "x-slack-signature")
        if self._verifier is None or not timestamp.isdigit() or not signature:
            return False
        return self._verifier.is_valid(body=req.raw_body, timestamp=timestamp,
                                       signature=signature)

    # wiring ---------------------------------------------------------------------------------
    def dispatch_with(self, dispatch: Dispatch) -> None:
        """Hand stored deliveries to `dispatch` (the Bolt app's listeners) in this process."""
        self._dispatch = dispatch

    def forward_wakes(self, wake: Callable[[], None]) -> None:
        """Dispatch nothing here: `wake` tells a worker process a delivery is stored."""
        self._forward = wake

    def start(self) -> None:
        """Sweep now and then for deliveries no wake-up reached (a worker died holding them)."""
        if self._forward is None and self._dispatch is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="deliveries-sweep")

    async def stop(self) -> None:
        """Stop sweeping, let a drain finish (10 s at most), and end a store still waiting for
        the database: its requests were not acked, so Slack sends them again."""
        self._stopping = True
        tasks = [t for t in (self._sweeper, self._draining, self._storer) if t is not None]
        for waiting in (self._sweeper, self._storer):
            if waiting is not None:
                waiting.cancel()
        if self._draining is not None and not self._draining.done():
            await asyncio.wait([self._draining], timeout=10)
            self._draining.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_burst_writer(self._engine)

    async def idle(self) -> None:
        """Wait until no stored delivery is being handed over in this process."""
        while self._draining is not None and not self._draining.done():
            await asyncio.wait([self._draining])

    # the workers ----------------------------------------------------------------------------
    def wake(self) -> None:
        """A delivery is stored: hand what is waiting to the listeners."""
        if self._stopping:
            return
        if self._forward is not None:
            self._forward()
            return
        if self._dispatch is None:
            return
        if self._draining is not None and not self._draining.done():
            self._again = True
            return
        self._draining = asyncio.create_task(self._drain(), name="deliveries")

    async def _drain(self) -> None:
        """Claim, hand over, forget, until nothing is left. What was forgotten with its record
        needs no more; the rest is deleted with the next claim, or alone at the end. No
        empty claim closes the drain: a delivery stored meanwhile wakes it again."""
        done: list[int] = []
        failed: dict[int, str] = {}
        claim = True
        while True:
            self._again = False
            try:
                async with self._sessions() as session:
                    await inbound.forget(session, done)
                    await inbound.give_up(session, failed)
                    claimed = (await inbound.claim(session, limit=BATCH, hold_for=HOLD)
                               if claim else [])
                    await session.commit()
            except Exception as error:  # noqa: BLE001 - logged; the sweep tries again
                self._database_failed(error)
                return  # what was handled is handled again later: the listeners dedupe
            self._unreachable = False
            done, failed = [], {}
            if not claimed:
                if not self._again:
                    return
                claim = True  # a delivery stored while the last forget committed
                continue
            problems = await self._hand_over_in_order(claimed)
            done = [c.id for c in claimed if c.id not in problems and not c.forgotten]
            failed = {c.id: problem for c in claimed
                      if (problem := problems.get(c.id)) and c.attempts >= MAX_ATTEMPTS}
            claim = self._again or len(claimed) == BATCH
            if not claim and not done and not failed:
                return

    async def _hand_over_in_order(self, claimed: list[inbound.StoredDelivery]
                                  ) -> dict[int, str]:
        """Hand the deliveries over, one thread's in the order Slack sent them and different
        threads at once; the problem of each one the listeners did not handle, by id."""
        threads: dict[str, list[tuple[inbound.StoredDelivery, Any]]] = {}
        for delivery in claimed:
            try:
                body: Any = json.loads(delivery.body)
            except ValueError as error:
                body = error
            threads.setdefault(_thread_of(body, delivery.id), []).append((delivery, body))
        problems: dict[int, str] = {}

        async def one_thread(deliveries: list[tuple[inbound.StoredDelivery, Any]]) -> None:
            for delivery, body in deliveries:
                async with self._handing_over:
                    problem = await self._hand_over(delivery, body)
                if problem is not None:
                    problems[delivery.id] = problem

        await asyncio.gather(*(one_thread(d) for d in threads.values()))
        return problems

    async def _hand_over(self, claimed: inbound.StoredDelivery, body: Any) -> str | None:
        """Run the listeners on one delivery; None when they handled it, else the problem."""
        assert self._dispatch is not None
        try:
            if isinstance(body, Exception):
                raise body
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            response = await self._dispatch(AsyncBoltRequest(
                body=body, mode="socket_mode", context={STORED_DELIVERY: claimed}))
        except Exception as error:  # noqa: BLE001 - kept and tried again, then given up on
            problem = f"{type(error).__name__}: {error}"
        else:
            if response.status < 500:
                return None
            problem = f"the listeners failed (HTTP {response.status})"
        if claimed.attempts >= MAX_ATTEMPTS:
            log.error("gave up on stored Slack delivery %d after %d attempts: %s",
                      claimed.id, claimed.attempts, problem)
        else:
            log.warning("stored Slack delivery %d failed (attempt %d of %d, again in %ds): %s",
                        claimed.id, claimed.attempts, MAX_ATTEMPTS, HOLD.seconds, problem)
        return problem

    def _database_failed(self, error: Exception) -> None:
        if not is_unavailable(error):
            log.exception("handing stored Slack deliveries over failed")
        elif not self._unreachable:
            log.warning("database unreachable (%s): stored Slack deliveries wait",
                        type(error).__name__)
            self._unreachable = True

    async def _sweep_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # unreachable: the next sweep looks again
                async with self._sessions() as session:  # read only: nothing committed
                    waiting = await inbound.any_claimable(session)
                if waiting:
                    self.wake()
            await asyncio.sleep(self._sweep_seconds)
