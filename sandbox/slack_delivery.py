"""How the emulator delivers payloads to the app, like Slack: signed HTTP requests, or
Socket Mode envelopes over a WebSocket that the app opened. Both retry events like Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

EVENTS = "events_api"
COMMANDS = "slash_commands"
INTERACTIVE = "interactive"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class NoAppConnected(RuntimeError):
    """Raised when something must be delivered but no app is connected (HTTP or Socket Mode)."""


@dataclass
class DeliveryResult:
    """What the app answered to one delivery (after any retries)."""

    kind: str
    payload: dict[str, Any]
    status: int = 0  # HTTP status; 200 for a Socket Mode ack; 0 when the app never answered
    body: str = ""  # HTTP body; over Socket Mode the ack's `payload` as JSON ("" if none)
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    error: str | None = None  # http_timeout / http_error / connection_failed / timeout

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def event_id(self) -> str | None:
        return self.payload.get("event_id")

    def json(self) -> Any:
        """The answer body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body.strip() else None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def encode_body(kind: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """Body and content type as Slack sends each kind over HTTP."""
    if kind == EVENTS:
        return json.dumps(payload).encode(), "application/json"
    if kind == COMMANDS:
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


class HttpSender:
    """POSTs signed requests to the app's Request URL; retries events like Slack."""

    def __init__(self, url: str, signing_secret: str, *, retries: int = 0, timeout: float = 3.0,
                 retry_delay: float = 0.0) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.retries = retries
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._session: aiohttp.ClientSession | None = None
        self._orphans: set[asyncio.Task[Any]] = set()

    async def send(self, kind: str, payload: dict[str, Any], *, retry_num: int = 0,
                   retry_reason: str | None = None) -> DeliveryResult:
        tries_left = self.retries if kind == EVENTS else 0
        attempts = 0
        while True:
            result = await self._attempt(kind, payload, retry_num, retry_reason)
            attempts += 1
            no_retry = result.headers.get("X-Slack-No-Retry") == "1"
            if result.ok or tries_left <= 0 or no_retry:
                result.attempts = attempts
                return result
            tries_left -= 1
            retry_num += 1
            retry_reason = result.error
            await asyncio.sleep(self.retry_delay)

    def headers(self, body: bytes, content_type: str, retry_num: int = 0,
                retry_reason: str | None = None) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT,
                   "X-Slack-Request-Timestamp": timestamp,
                   "X-Slack-Signature": sign(self.signing_secret, timestamp, body)}
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_error"
        return headers

    async def send_raw(self, body: bytes, content_type: str, *, signed: bool = True
                       ) -> tuple[int, str, dict[str, str]]:
        """POST `body` as it is (signed unless told not), once: a broken or forged request."""
        headers = self.headers(body, content_type)
        if not signed:
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
        return await self._post(body, headers)

    async def _attempt(self, kind: str, payload: dict[str, Any], retry_num: int,
                       retry_reason: str | None) -> DeliveryResult:
        body, content_type = encode_body(kind, payload)
        headers = self.headers(body, content_type, retry_num, retry_reason)
        task = asyncio.ensure_future(self._post(body, headers))
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:  # like Slack: give up waiting, but leave the request running
            self._orphans.add(task)
            task.add_done_callback(_forget(self._orphans))
            return DeliveryResult(kind, payload, error="http_timeout")
        if task.exception() is not None:
            return DeliveryResult(kind, payload, error="connection_failed")
        status, text, resp_headers = task.result()
        result = DeliveryResult(kind, payload, status=status, body=text, headers=resp_headers)
        if not result.ok:
            result.error = "http_error"
        return result

    async def _post(self, body: bytes, headers: dict[str, str]
                    ) -> tuple[int, str, dict[str, str]]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def close(self) -> None:
        for task in list(self._orphans):
            task.cancel()
        if self._orphans:
            await asyncio.gather(*self._orphans, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def _forget(tasks: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn
    return done


class SocketHub:
    """Socket Mode: the WebSocket endpoint the app connects to, envelopes out, acks in."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.ack_timeout = 3.0
        self.retries = 0
        self.connect_timeout = 10.0
        self.connections: list[web.WebSocketResponse] = []
        self.ever_opened = False  # apps.connections.open was called
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._next = 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler of the Socket Mode WebSocket URL."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json({
            "type": "hello", "num_connections": len(self.connections) + 1,
            "debug_info": {"host": "applink-emulator", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id}})
        self.connections.append(ws)
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                future = self._acks.get(str(data.get("envelope_id")))
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self._connected.clear()
        return ws

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                   retry_reason: str = "") -> DeliveryResult:
        tries_left = self.retries if kind == EVENTS else 0
        attempts = 0
        while True:
            attempts += 1
            result = await self._attempt(kind, payload, retry_attempt, retry_reason)
            if result.ok or tries_left <= 0:
                result.attempts = attempts
                return result
            tries_left -= 1
            retry_attempt += 1
            retry_reason = "timeout"

    async def _attempt(self, kind: str, payload: dict[str, Any], retry_attempt: int,
                       retry_reason: str) -> DeliveryResult:
        try:
            await self.wait_connected(self.connect_timeout)
        except TimeoutError as exc:
            raise NoAppConnected("no Socket Mode connection is open") from exc
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id, "payload": payload, "type": kind,
            "accepts_response_payload": kind == COMMANDS or payload.get("type") in (
                "view_submission", "block_suggestion")}
        if kind == EVENTS:
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        self._next = (self._next + 1) % len(self.connections)
        ws = self.connections[self._next]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        try:
            await ws.send_str(json.dumps(envelope))
            ack = await asyncio.wait_for(future, self.ack_timeout)
        except (TimeoutError, ConnectionError):
            return DeliveryResult(kind, payload, error="timeout")
        finally:
            self._acks.pop(envelope_id, None)
        body = json.dumps(ack["payload"]) if ack.get("payload") is not None else ""
        return DeliveryResult(kind, payload, status=200, body=body)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every connected app to reconnect, as Slack does before recycling a socket."""
        for ws in list(self.connections):
            await ws.send_json({"type": "disconnect", "reason": reason,
                                "debug_info": {"host": "applink-emulator"}})

    async def close(self) -> None:
        for ws in list(self.connections):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")
