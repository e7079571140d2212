"""`SlackEmulator`: a loopback Slack workspace for tests and the local demo.

One aiohttp server serves the Web API (`/api/<method>`), the Socket Mode WebSocket and
`response_url`s. Calls are recorded (`calls`), can be made to fail (`fail_next`), and what Slack
would tell the app (people's messages, the bot's own posts echoed back, edits, reactions,
commands, clicks, modal submissions) is delivered over signed HTTP or Socket Mode. `subscribe`
tells a watcher (the sandbox page) whenever the workspace may have changed.

    emu = SlackEmulator()
    emu.add_user("U1", "alice", team_id="T0CUSTOMER")
    emu.add_channel("C1", "acme-support", members=["U1"], is_ext_shared=True)
    await emu.start()
    emu.connect_http("http://127.0.0.1:3000/slack/events")   # or let the app use Socket Mode
    ts = await emu.user_posts("C1", "U1", "hello")
    reply = await emu.wait_for_message("C1", thread_ts=ts)
    await emu.stop()
"""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from sandbox import slack_payloads as p
from sandbox.slack_api import WebApi
from sandbox.slack_delivery import (
    EVENTS,
    DeliveryResult,
    HttpSender,
    NoAppConnected,
    SocketHub,
)
from sandbox.slack_people import PeopleActions
from sandbox.slack_records import ApiCall, Fault, FaultBook, ResponsePost, message_view
from sandbox.slack_state import Channel, SlackError, User, Usergroup, Workspace, ts_key
from sandbox.waiters import Waiters

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).resolve().parent.parent / "slack-manifest.yaml"


def manifest_bot_scopes(manifest: Path = MANIFEST) -> list[str]:
    """The bot scopes the shipped app manifest asks for: what an installed app is granted."""
    data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    return list(((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])

__all__ = ["ApiCall", "DeliveryResult", "NoAppConnected", "ResponsePost", "SlackEmulator"]

# Web API methods that only read: they change nothing a watcher (`subscribe`) would show.
READ_ONLY_METHODS = frozenset({
    "auth.test", "chat.getPermalink", "conversations.replies", "conversations.history",
    "conversations.info", "conversations.members", "users.info", "usergroups.users.list",
    "apps.connections.open"})


class SlackEmulator(PeopleActions):
    def __init__(self, *, team_id: str = "T0OURTEAM", bot_user_id: str = "U0BOT",
                 bot_id: str = "B0BOT", bot_token: str = "xoxb-test",
                 app_token: str = "xapp-test", signing_secret: str = "test-secret",
                 app_id: str = "A0APP", bot_name: str = "supportbot") -> None:
        self.ws = Workspace(team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_id,
                            app_id=app_id, bot_name=bot_name)
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        # The bot token's granted scopes, returned like Slack does in the `x-oauth-scopes`
        # header of every Web API call made with it; a test removes one to play a stale install.
        self.scopes: list[str] = manifest_bot_scopes()
        self.api = WebApi(self.ws, self._on_change)
        self.api.methods["apps.connections.open"] = self._apps_connections_open
        self.socket = SocketHub(app_id)
        self.http: HttpSender | None = None
        self.calls: list[ApiCall] = []
        self.deliveries: list[DeliveryResult] = []
        self.responses: list[ResponsePost] = []
        self._faults = FaultBook()
        self._events: dict[str, dict[str, Any]] = {}
        self._retries: dict[str, int] = defaultdict(int)
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._tickets: set[str] = set()
        self._call_waiters: Waiters[ApiCall] = Waiters()
        self._message_waiters: Waiters[tuple[str, dict[str, Any]]] = Waiters()
        self._delivery_waiters: Waiters[DeliveryResult] = Waiters()
        self._outbox: asyncio.Queue[tuple[dict[str, Any], Channel]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._old_senders: list[HttpSender] = []
        self._runner: web.AppRunner | None = None
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.host = "127.0.0.1"
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket-mode/link/", self._handle_socket)
        app.router.add_post("/response-url/{rid}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.host = host
        self.ws.web_url = f"http://{host}:{self.port}/"
        self._outbox = asyncio.Queue()
        self._worker = asyncio.create_task(self._outbox_worker())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.socket.close()
        for sender in [self.http, *self._old_senders]:
            if sender is not None:
                await sender.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """Base URL for `AsyncWebClient(base_url=...)`; ends with a slash."""
        return f"{self.ws.web_url}api/"

    # workspace ---------------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, *, real_name: str | None = None,
                 team_id: str | None = None, is_bot: bool = False,
                 is_restricted: bool = False, is_stranger: bool = False,
                 display_name: str = "") -> User:
        """A person; another `team_id` makes a Slack Connect (external) user. A bot user
        (`is_bot`) is another app's bot: its messages carry a `bot_id` (B + the id's tail).
        `profile.display_name` is "" unless `display_name` is given, as in Slack."""
        return self.ws.add_user(User(user_id, name, real_name or name.title(),
                                     team_id or self.ws.team_id, is_bot=is_bot,
                                     is_restricted=is_restricted, is_stranger=is_stranger,
                                     bot_id=f"B{user_id[1:]}" if is_bot else None,
                                     display_name=display_name))

    def add_channel(self, channel_id: str, name: str, *, members: Any = (),
                    is_ext_shared: bool = False, bot_member: bool = True) -> Channel:
        """A channel (C… public, G… private, D… DM). The bot is a member unless told not;
        events of channels without the bot are not delivered, as in Slack."""
        members = list(dict.fromkeys(members))
        if bot_member and self.ws.bot_user_id not in members:
            members.append(self.ws.bot_user_id)
        return self.ws.add_channel(Channel(channel_id, name, members,
                                           is_ext_shared=is_ext_shared))

    def add_usergroup(self, usergroup_id: str, handle: str, users: Any) -> Usergroup:
        group = Usergroup(usergroup_id, handle, list(users))
        self.ws.usergroups[usergroup_id] = group
        return group

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        return self.ws.ephemerals

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        return self.ws.views

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The Home tab the app last published for `user` (None if never)."""
        return self.ws.home_views.get(user)

    @property
    def assistant_status(self) -> dict[tuple[str, str], str]:
        return self.ws.assistant_status

    def refuse_streaming(self, channel: str, refuse: bool = True) -> None:
        """Make `chat.startStream` in this channel fail as an older workspace would."""
        if refuse:
            self.ws.streaming_refused.add(channel)
        else:
            self.ws.streaming_refused.discard(channel)

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Stored messages, oldest first: the channel's, or one thread's (root + replies)."""
        ch = self.ws.channel(channel)
        found = self.ws.ordered(ch)
        if thread_ts:
            found = [m for m in found if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
        return [message_view(self.ws.public_message(ch, m)) for m in found]

    # watching ----------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[str, dict[str, Any]], None]
                  ) -> Callable[[], None]:
        """Call `listener(kind, detail)` after anything may have changed the workspace: a
        state-changing Web API call (`kind="api"`, detail `{"method": ...}`), a response_url
        post (`"response_url"`), or a delivery to the app of what a person did (`"delivery"`).
        Listeners run on the emulator's loop and must not block. Returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return unsubscribe

    def _notify(self, topic: str, /, **detail: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(topic, detail)
            except Exception:  # a broken watcher must not break the workspace
                log.exception("emulator listener failed on %s", topic)

    # fault injection and records ---------------------------------------------------------
    def fail_next(self, method: str, *, error: str = "ratelimited", status: int | None = None,
                  retry_after: int = 1, times: int = 1, html: bool = False,
                  after_accept: bool = False, delay: float = 0.0) -> None:
        """Make the next `times` calls of `method` fail. `ratelimited` answers HTTP 429 with
        `Retry-After`; other errors answer HTTP 200 `{"ok": false}` unless `status` is given.
        `html` answers an HTML error page (a proxy's 503); `after_accept` carries the call out
        and then fails, as when Slack accepted a post but its answer was lost; `delay` holds the
        answer that many seconds (a slow Slack, or time to kill the app mid-call)."""
        code = status if status is not None else (429 if error == "ratelimited" else 200)
        self._faults.add(method, Fault(error, code, retry_after, times, html=html,
                                       after_accept=after_accept, delay=delay))

    def clear_faults(self, method: str | None = None) -> None:
        """Forget queued failures (of one method, or all): Slack has recovered."""
        self._faults.clear(method)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_call(self, method: str, predicate: Callable[[ApiCall], bool] | None = None,
                            timeout: float = 10.0, *, since: int = 0) -> ApiCall:
        """The first call of `method` (from index `since` of `calls`) matching `predicate`."""
        def match(call: ApiCall) -> bool:
            return call.method == method and (predicate is None or predicate(call))
        return await self._call_waiters.wait(match, existing=self.calls[since:],
                                             timeout=timeout, what=f"{method} call")

    async def wait_for_message(self, channel: str, *, thread_ts: str | None = None,
                               predicate: Callable[[dict[str, Any]], bool] | None = None,
                               timeout: float = 10.0, since_ts: str | None = None
                               ) -> dict[str, Any]:
        """The first message the bot posted in `channel` (in `thread_ts` if given, after
        `since_ts` if given) that matches `predicate`, already stored or still to come."""
        ch = self.ws.channel(channel)

        def match(item: tuple[str, dict[str, Any]]) -> bool:
            cid, m = item
            return (cid == ch.id and m.get("bot_id") == self.ws.bot_id
                    and (thread_ts is None or m.get("thread_ts") == thread_ts)
                    and (since_ts is None or ts_key(m["ts"]) > ts_key(since_ts))
                    and (predicate is None or predicate(m)))
        existing = [(ch.id, message_view(self.ws.public_message(ch, m)))
                    for m in self.ws.ordered(ch)]
        _, message = await self._message_waiters.wait(
            match, existing=existing, timeout=timeout, what=f"bot message in {ch.id}")
        return message

    async def wait_for_delivery(self, predicate: Callable[[DeliveryResult], bool] | None = None,
                                timeout: float = 10.0) -> DeliveryResult:
        return await self._delivery_waiters.wait(
            predicate or (lambda r: True), existing=self.deliveries, timeout=timeout,
            what="delivery")

    async def settle(self) -> None:
        """Wait until every queued background delivery (the bot's own echoes) is done."""
        if self._outbox is not None:
            await self._outbox.join()

    # transports --------------------------------------------------------------------------
    def connect_http(self, url: str, *, retries: int = 0, timeout: float = 3.0,
                     retry_delay: float = 0.0) -> HttpSender:
        """Deliver over HTTP to the app's Request URL. Events that fail (non-2xx, no answer
        within `timeout`) are retried `retries` times with `X-Slack-Retry-Num`."""
        if self.http is not None:
            self._old_senders.append(self.http)
        self.http = HttpSender(url, self.signing_secret, retries=retries, timeout=timeout,
                               retry_delay=retry_delay)
        return self.http

    def configure_socket_mode(self, *, ack_timeout: float = 3.0, retries: int = 0) -> None:
        """Socket Mode: redeliver unacked events `retries` times after `ack_timeout`."""
        self.socket.ack_timeout = ack_timeout
        self.socket.retries = retries

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the app has a Socket Mode connection open."""
        await self.socket.wait_connected(timeout)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        await self.socket.disconnect(reason)

    async def send_event(self, event: dict[str, Any], *, event_id: str | None = None
                         ) -> DeliveryResult:
        """Deliver a raw event (wrapped in an `event_callback` envelope)."""
        channel = self.ws.channels.get(str(event.get("channel", "")))
        return await self._deliver_event(event, channel, event_id=event_id, force=True)

    async def send_raw_body(self, body: bytes, *, content_type: str = "application/json",
                            signed: bool = True) -> DeliveryResult:
        """POST an arbitrary body (malformed JSON, a broken form) to the app's Request URL,
        correctly signed unless `signed` is False; HTTP only, never retried."""
        if self.http is None:
            raise NoAppConnected("send_raw_body needs an HTTP app: call connect_http(url)")
        status, text, headers = await self.http.send_raw(body, content_type, signed=signed)
        result = DeliveryResult(EVENTS, {}, status=status, body=text, headers=headers)
        if not result.ok:
            result.error = "http_error"
        self.deliveries.append(result)
        self._delivery_waiters.notify(result)
        return result

    async def redeliver(self, event_id: str) -> DeliveryResult:
        """Send an already delivered event again, as Slack's retry would."""
        payload = self._events[event_id]
        self._retries[event_id] += 1
        num = self._retries[event_id]
        if self.http is not None:
            return await self._record(self.http.send(EVENTS, payload, retry_num=num,
                                                     retry_reason="http_timeout"))
        return await self._record(self.socket.send(EVENTS, payload, retry_attempt=num,
                                                   retry_reason="timeout"))

    async def url_verification(self) -> DeliveryResult:
        """Slack's Request URL check; the app must echo `challenge`."""
        payload = {"token": "emulator-verification-token", "type": "url_verification",
                   "challenge": secrets.token_urlsafe(24)}
        return await self._deliver(EVENTS, payload)

    # delivery internals ------------------------------------------------------------------
    async def _deliver(self, kind: str, payload: dict[str, Any], **retry: Any
                       ) -> DeliveryResult:
        self._notify("delivery", kind=kind, payload_type=payload.get("type"))
        if self.http is not None:
            return await self._record(self.http.send(kind, payload, **retry))
        if self.socket.connections or self.socket.ever_opened:
            return await self._record(self.socket.send(kind, payload, **retry))
        raise NoAppConnected("no app connected: call connect_http(url) or use Socket Mode")

    async def _record(self, sending: Any) -> DeliveryResult:
        result: DeliveryResult = await sending
        self.deliveries.append(result)
        self._delivery_waiters.notify(result)
        return result

    async def _deliver_event(self, event: dict[str, Any], channel: Channel | None, *,
                             event_id: str | None = None, force: bool = False
                             ) -> DeliveryResult | None:
        if not force and channel is not None and self.ws.bot_user_id not in channel.members:
            return None  # Slack only sends events of conversations the bot is in
        event_id = event_id or "Ev" + self.ws.new_id("", 10)
        payload = p.event_callback(self.ws, event, event_id=event_id, channel=channel)
        self._events[event_id] = payload
        return await self._deliver(EVENTS, payload)

    def _new_response_url(self, context: dict[str, Any]) -> str:
        rid = uuid.uuid4().hex
        self._response_urls[rid] = context
        return f"{self.ws.web_url}response-url/{rid}"

    def _new_trigger(self, user: str, view_id: str | None = None) -> str:
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        self.ws.triggers[trigger_id] = {"user": user, "view_id": view_id,
                                        "issued": time.monotonic()}
        return trigger_id

    def _on_change(self, kind: str, channel: Channel, message: dict[str, Any],
                   extra: dict[str, Any] | None) -> None:
        """Called by the Web API when the bot changed something: queue the echo event."""
        ws = self.ws
        if kind == "posted":
            self._message_waiters.notify((channel.id, message_view(
                ws.public_message(channel, message))))
            event = p.message_event(ws, channel, message)
        elif kind == "changed":
            event = p.changed_event(ws, channel, message, extra or {}, message["edited"]["ts"])
        elif kind == "deleted":
            event = p.deleted_event(ws, channel, message, ws.next_ts())
        else:
            assert extra is not None
            event = p.reaction_event(kind, channel, message, extra["reaction"], extra["user"],
                                     ws.next_ts())
        if self._outbox is not None:
            self._outbox.put_nowait((event, channel))

    async def _outbox_worker(self) -> None:
        assert self._outbox is not None
        while True:
            event, channel = await self._outbox.get()
            try:
                if self.http is not None or self.socket.connections:
                    await self._deliver_event(event, channel)
            except Exception:  # a failing app must not stop later deliveries
                log.exception("delivering %s failed", event.get("type"))
            finally:
                self._outbox.task_done()

    # HTTP handlers -----------------------------------------------------------------------
    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    return web.json_response({"ok": False, "error": "invalid_json"})
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        status, headers = 200, {"X-Slack-Req-Id": uuid.uuid4().hex}
        handler = self.api.methods.get(method)
        if handler is not None and token and token == self.bot_token:
            headers["x-oauth-scopes"] = ",".join(self.scopes)
        if handler is None:
            status, body = 404, {"ok": False, "error": "unknown_method"}
        elif (error := self._auth_error(method, token)) is not None:
            body = {"ok": False, "error": error}
        elif (fault := self._faults.take(method)) is not None:
            if fault.after_accept:
                try:
                    handler(params)
                except SlackError:
                    pass
            if fault.delay:
                await asyncio.sleep(fault.delay)
            status, body = fault.status, {"ok": False, "error": fault.error}
            if fault.status == 429:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.html:
                call = ApiCall(method, params, copy.deepcopy(body), status)
                self.calls.append(call)
                self._call_waiters.notify(call)
                return web.Response(status=status, headers=headers, content_type="text/html",
                                    text="<html><body><h1>503 Service Unavailable</h1>"
                                         "</body></html>")
        else:
            try:
                body = handler(params)
            except SlackError as exc:
                body = {"ok": False, "error": exc.code, **exc.extra}
        call = ApiCall(method, params, copy.deepcopy(body), status)
        self.calls.append(call)
        self._call_waiters.notify(call)
        if body.get("ok") and method not in READ_ONLY_METHODS:
            self._notify("api", method=method)
        return web.json_response(body, status=status, headers=headers)

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token == wanted:
            return None
        if token in (self.app_token, self.bot_token):
            return "not_allowed_token_type"
        return "invalid_auth"

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        self.socket.ever_opened = True
        return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket-mode/link/"
                                   f"?ticket={ticket}&app_id={self.ws.app_id}"}

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        return await self.socket.handle(request)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        context = self._response_urls.get(request.match_info["rid"])
        if context is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        payload = await request.json()
        self.responses.append(ResponsePost(str(request.url), payload, dict(context)))
        try:
            self._apply_response_url(context, payload)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.code})
        finally:
            self._notify("response_url", kind=context.get("kind"))
        return web.json_response({"ok": True})
