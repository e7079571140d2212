"""The sandbox page's HTTP API (aiohttp): static files, the workspace state, what people do,
reset, the stored history, and a WebSocket that says "something changed".

    GET  /                       the page (sandbox/static/)
    GET  /api/state?as=U…        the workspace as that person sees it (page_state.snapshot)
    GET  /api/history?channel=C…&thread_ts=…   a conversation as the bot stored it
    GET  /api/events             WebSocket: {"type": "changed", "version": n} on every change
    POST /api/message            {as, channel, text, thread_ts?}; "/command …" runs a command
    POST /api/reaction           {as, channel, ts, name}: add, or remove one's own
    POST /api/click              {as, channel, ts, action_id, block_id?, value?, ephemeral?}
    POST /api/shortcut           {as, channel, ts, callback_id}
    POST /api/view               {as, view_id, values}: submit a modal
    POST /api/view/close         {as, view_id}
    POST /api/ephemeral/dismiss  {as, ts}
    POST /api/reset              stop the bot, clear its database and the workspace, restart
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from bot.process.report import FORMATS as REPORT_FORMATS
from bot.toolkit.business_time import parse_duration
from sandbox import demo_workspace as demo
from sandbox import page_actions as act
from sandbox.history import conversation_history
from sandbox.page_state import MANIFEST, snapshot
from sandbox.run import Sandbox
from sandbox.slack_emulator import SlackEmulator
from storage.models import utcnow
from storage.reports import build_report

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
IDENTITY_IDS = {i.user_id for i in demo.IDENTITIES}
SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
SOCKETS_KEY = web.AppKey("sockets", set)


def _command_escapes_names() -> bool:
    """Whether Slack would escape @names in the command's text (manifest `should_escape`)."""
    import yaml

    try:
        manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False
    commands = (manifest.get("features") or {}).get("slash_commands") or []
    return any(isinstance(c, dict) and c.get("should_escape") for c in commands)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    if body.get("as") not in IDENTITY_IDS:
        raise web.HTTPBadRequest(text=f"'as' must be one of {sorted(IDENTITY_IDS)}")
    return body


Action = Callable[[SlackEmulator, dict[str, Any]], Awaitable[dict[str, Any] | None]]


def action(handler: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST endpoint acting as the person `as` in the current workspace."""
    async def endpoint(request: web.Request) -> web.Response:
        sandbox = request.app[SANDBOX_KEY]
        body = await _body(request)
        emulator = sandbox.emulator
        if emulator is None:
            return _error(503, "The sandbox is restarting; try again in a moment.")
        try:
            extra = await handler(emulator, body)
        except act.ActionError as error:
            return _error(409, str(error))
        except KeyError as error:
            return _error(400, f"missing field {error}")
        finally:
            sandbox.touch()
        return web.json_response({"ok": True, **(extra or {})})
    return endpoint


def build_web_app(sandbox: Sandbox) -> web.Application:
    app = web.Application()
    app[SANDBOX_KEY] = sandbox
    app[SOCKETS_KEY] = set()
    escape_names = _command_escapes_names()

    async def message(emulator: SlackEmulator, body: dict[str, Any]) -> dict[str, Any] | None:
        text = str(body.get("text") or "").strip()
        if not text:
            raise act.ActionError("Type a message first.")
        thread_ts = body.get("thread_ts") or None
        if text.startswith("/"):
            command = sandbox.config.slack.command if sandbox.config else "/handoff"
            await act.run_command(emulator, user=body["as"], channel=body["channel"], line=text,
                                  command=command, escape_names=escape_names,
                                  thread_ts=thread_ts)
            return {"command": True}
        ts = await act.post_message(emulator, user=body["as"], channel=body["channel"],
                                    text=text, thread_ts=thread_ts)
        return {"ts": ts}

    async def reaction(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        await act.toggle_reaction(emulator, user=body["as"], channel=body["channel"],
                                  ts=body["ts"], name=str(body["name"]).strip(":"))

    async def click(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        await act.click(emulator, user=body["as"], channel=body.get("channel", ""),
                        ts=body["ts"], action_id=body["action_id"],
                        block_id=body.get("block_id"), value=body.get("value"),
                        ephemeral=bool(body.get("ephemeral")))

    async def shortcut(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        await act.shortcut(emulator, user=body["as"], channel=body["channel"], ts=body["ts"],
                           callback_id=body["callback_id"])

    async def submit(emulator: SlackEmulator, body: dict[str, Any]) -> dict[str, Any]:
        errors = await act.submit_view(emulator, user=body["as"], view_id=body["view_id"],
                                       values=body.get("values") or {})
        return {"errors": errors}

    async def close(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        act.close_view(emulator, user=body["as"], view_id=body["view_id"])

    async def dismiss(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        act.dismiss(emulator, user=body["as"], ts=body["ts"])

    async def home_open(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        await act.open_home(emulator, user=body["as"])

    async def home_click(emulator: SlackEmulator, body: dict[str, Any]) -> None:
        await act.click_home(emulator, user=body["as"], action_id=body["action_id"],
                             block_id=body.get("block_id"), value=body.get("value"))

    async def state(request: web.Request) -> web.Response:
        viewer = request.query.get("as", demo.IDENTITIES[0].user_id)
        if viewer not in IDENTITY_IDS:
            return _error(400, f"'as' must be one of {sorted(IDENTITY_IDS)}")
        return web.json_response(snapshot(sandbox, viewer))

    async def history(request: web.Request) -> web.Response:
        bot = sandbox.bot
        if bot is None:
            return _error(503, "The sandbox is restarting; try again in a moment.")
        found = await conversation_history(bot.services.sessions,
                                           channel=request.query.get("channel", ""),
                                           thread_ts=request.query.get("thread_ts", ""))
        return web.json_response({"ok": True, "conversation": found})

    async def report(request: web.Request) -> web.Response:
        """`python -m bot report` of the sandbox's database: ?since=7d&format=table|json|csv."""
        bot = sandbox.bot
        if bot is None:
            return _error(503, "The sandbox is restarting; try again in a moment.")
        fmt = request.query.get("format", "table")
        if fmt not in REPORT_FORMATS:
            return _error(400, f"format must be one of {sorted(REPORT_FORMATS)}")
        try:
            period = parse_duration(request.query.get("since", "7d"))
        except ValueError as error:
            return _error(400, f"since: {error}")
        async with bot.services.sessions() as session:
            found = await build_report(session, since=utcnow() - period)
        content_type = {"json": "application/json", "csv": "text/csv"}.get(fmt, "text/plain")
        return web.Response(text=REPORT_FORMATS[fmt](found) + "\n", content_type=content_type,
                            headers={"Cache-Control": "no-store"})

    async def reset(request: web.Request) -> web.Response:
        cleared = await sandbox.reset()
        return web.json_response({"ok": True, "database_cleared": cleared})

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/history", history)
    app.router.add_get("/report", report)
    app.router.add_get("/api/events", _events)
    app.router.add_post("/api/message", action(message))
    app.router.add_post("/api/reaction", action(reaction))
    app.router.add_post("/api/click", action(click))
    app.router.add_post("/api/shortcut", action(shortcut))
    app.router.add_post("/api/view", action(submit))
    app.router.add_post("/api/view/close", action(close))
    app.router.add_post("/api/ephemeral/dismiss", action(dismiss))
    app.router.add_post("/api/home/open", action(home_open))
    app.router.add_post("/api/home/click", action(home_click))
    app.router.add_post("/api/reset", reset)
    _broadcast_changes(app, sandbox)
    return app


def _broadcast_changes(app: web.Application, sandbox: Sandbox) -> None:
    """Tell every open page about changes, at most every 50 ms."""
    pending: dict[str, asyncio.TimerHandle | None] = {"timer": None}
    sending: set[asyncio.Task[None]] = set()

    def send() -> None:
        pending["timer"] = None
        message = {"type": "changed", "version": sandbox.version}
        for socket in list(app[SOCKETS_KEY]):
            if not socket.closed:
                task = asyncio.create_task(_send(socket, message))
                sending.add(task)
                task.add_done_callback(sending.discard)

    def changed() -> None:
        if pending["timer"] is None:
            pending["timer"] = asyncio.get_running_loop().call_later(0.05, send)

    unsubscribe = sandbox.on_change(changed)

    async def on_cleanup(_app: web.Application) -> None:
        unsubscribe()
        if pending["timer"] is not None:
            pending["timer"].cancel()
        for socket in list(app[SOCKETS_KEY]):
            await socket.close()

    app.on_cleanup.append(on_cleanup)


async def _send(socket: web.WebSocketResponse, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await socket.send_json(message)


async def _events(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=20)
    await socket.prepare(request)
    sockets = request.app[SOCKETS_KEY]
    sockets.add(socket)
    try:
        await socket.send_json({"type": "changed", "version": request.app[SANDBOX_KEY].version})
        async for msg in socket:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        sockets.discard(socket)
    return socket
