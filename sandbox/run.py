"""`python -m bot sandbox`: the real bot, a local Slack workspace and its web page, one process.

    Sandbox(config)        the parts: model (offline server or the configured one), emulator, bot
    run_sandbox(config)    starts a Sandbox and serves the page until interrupted

The bot is started exactly as in production (`bot.process.lifecycle.start_bot`, HTTP mode); only its
configuration differs: Slack is the emulator (signed requests both ways), the channels and
people are the demo workspace's, the database is `sandbox.db` in the working directory (unless
app.yaml names another than the default), and the timers are short enough to watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from bot.config import (
    AppConfig,
    ChannelSettings,
    DatabaseSettings,
    HttpSettings,
    KnowledgeSettings,
    RoutingSettings,
    SlackSettings,
    StaffSettings,
    TimerSettings,
)
from bot.process.lifecycle import RunningBot, start_bot
from sandbox import demo_workspace as demo
from sandbox.model_server import ModelServer
from sandbox.slack_emulator import SlackEmulator

log = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = DatabaseSettings().url
SANDBOX_DATABASE_URL = "sqlite:///sandbox.db"
OFFLINE_MODEL = "openai/sandbox-offline"
STREAM_DEMO_BUFFER = 24  # characters per streamed append with the offline model
OFFLINE_CHUNK_DELAY = 0.03  # seconds between the offline model's streamed words
OFFLINE_EMBEDDING_MODEL = "openai/sandbox-embedding"
# Short timers, so that a reminder or a holding notice shows up while someone watches; the
# demo team is always open (no business hours). Other timer settings come from app.yaml.
DEMO_TIMERS: dict[str, object] = {
    "remind_after": timedelta(minutes=1), "escalate_after": timedelta(minutes=3),
    "give_up_after": timedelta(minutes=15), "notify_customer_after": timedelta(minutes=2),
    "release_after": timedelta(hours=1), "business_hours": None,
    "check_every": timedelta(seconds=5)}


def demo_timers(timers: TimerSettings) -> TimerSettings:
    known = type(timers).model_fields
    return timers.model_copy(update={k: v for k, v in DEMO_TIMERS.items() if k in known})


@dataclass(frozen=True)
class ModelInfo:
    """Which model answers, as the page shows it."""

    name: str
    offline: bool
    description: str


def sandbox_database_url(config: AppConfig) -> str:
    """app.yaml's database, unless it is the default `sqlite:///bot.db` (then sandbox.db)."""
    url = config.database.url
    return SANDBOX_DATABASE_URL if url == DEFAULT_DATABASE_URL else url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def delete_sqlite_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def sandbox_config(config: AppConfig, *, emulator: SlackEmulator, database_url: str,
                   model_base_url: str | None) -> AppConfig:
    """app.yaml with Slack, channels, staff, timers and database pointed at the sandbox.
    `model_base_url` set means the offline model server answers instead of `llm.model`."""
    llm = config.llm
    routing = config.routing
    knowledge = config.knowledge
    if model_base_url is not None:
        # The offline loop of issue 16: the offline model distills and uses entries, the model
        # server embeds (a hashed bag of words).
        knowledge = KnowledgeSettings(enabled=True, embedding_model=OFFLINE_EMBEDDING_MODEL,
                                      threshold=knowledge.threshold,
                                      max_entries=knowledge.max_entries)
        llm = llm.model_copy(update={"model": OFFLINE_MODEL, "api_base": model_base_url,
                                     "api_key": type(llm.api_key)("sandbox-offline")})
        routing = RoutingSettings(router="tool")  # the offline model only knows the tool
    slack = SlackSettings(
        mode="http", bot_token=emulator.bot_token, signing_secret=emulator.signing_secret,
        api_url=emulator.api_url, command=config.slack.command,
        http=HttpSettings(host="127.0.0.1", port=0, path=config.slack.http.path),
        streaming=config.slack.streaming, thinking_status=config.slack.thinking_status,
        # The offline model's answers are short: a small buffer lets them stream visibly.
        stream_buffer_chars=(min(config.slack.stream_buffer_chars, STREAM_DEMO_BUFFER)
                             if model_base_url is not None else config.slack.stream_buffer_chars))
    draft = config.channels.draft if isinstance(config.channels.draft, bool) else False
    return config.model_copy(update={
        "slack": slack,
        "channels": ChannelSettings(support=demo.SUPPORT, customer=list(demo.CUSTOMER_CHANNELS),
                                    draft=draft),
        "staff": StaffSettings(note_prefix=config.staff.note_prefix),
        "llm": llm,
        "routing": routing,
        "knowledge": knowledge,
        "database": DatabaseSettings(url=database_url),
        "timers": demo_timers(config.timers),
        # The page shows a Home tab refreshed within a second of a change.
        "home": config.home.model_copy(update={
            "refresh_every": min(config.home.refresh_every, timedelta(seconds=1))}),
    })


class Sandbox:
    """The running parts, restartable from scratch (`reset`)."""

    def __init__(self, config: AppConfig, *, database_url: str | None = None) -> None:
        self.base_config = config
        self.database_url = database_url or sandbox_database_url(config)
        self.offline = not config.llm.api_key.get_secret_value()
        self.model_server: ModelServer | None = None
        self.emulator: SlackEmulator | None = None
        self.bot: RunningBot | None = None
        self.config: AppConfig | None = None
        self.version = 0
        self._listeners: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self.offline:
            self.model_server = ModelServer()
            self.model_server.chunk_delay = OFFLINE_CHUNK_DELAY
            await self.model_server.start()
        async with self._lock:
            await self._start_workspace()

    async def stop(self) -> None:
        async with self._lock:
            await self._stop_workspace()
        if self.model_server is not None:
            await self.model_server.stop()
            self.model_server = None

    async def reset(self) -> bool:
        """Stop the bot, forget everything (SQLite file, workspace), start again. Returns
        whether the database was cleared (only a SQLite file is ever deleted)."""
        async with self._lock:
            await self._stop_workspace()
            path = sqlite_file(self.database_url)
            if path is not None:
                delete_sqlite_file(path)
            await self._start_workspace()
        self.touch()
        return path is not None

    async def _start_workspace(self) -> None:
        emulator = demo.build_emulator()
        await emulator.start()
        emulator.subscribe(lambda _kind, _detail: self.touch())
        config = sandbox_config(
            self.base_config, emulator=emulator, database_url=self.database_url,
            model_base_url=self.model_server.base_url if self.model_server else None)
        try:
            bot = await start_bot(config, http_port=0)
        except BaseException:
            await emulator.stop()
            raise
        emulator.connect_http(f"http://127.0.0.1:{bot.http_port}{config.slack.http.path}")
        self.emulator, self.bot, self.config = emulator, bot, config

    async def _stop_workspace(self) -> None:
        bot, emulator = self.bot, self.emulator
        self.bot = self.emulator = None
        if bot is not None:
            await bot.stop()
        if emulator is not None:
            await emulator.stop()

    # watching ----------------------------------------------------------------------------
    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener()` whenever the workspace may have changed (and after a reset)."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return unsubscribe

    def touch(self) -> None:
        """Note a change (the page reloads its state)."""
        self.version += 1
        for listener in list(self._listeners):
            listener()

    # description -------------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo:
        if self.offline:
            return ModelInfo(
                name="sandbox-offline", offline=True,
                description="Offline demo model (sandbox/offline_model.py), no network, no key: "
                            "answers a small FAQ (opening hours, pricing, password reset, "
                            "refunds), asks staff (askHuman) for anything else, and hands over "
                            "(transferToHuman) when the customer asks for a person. Set "
                            "LLM_API_KEY (and LLM_MODEL) to use a real model.")
        llm = self.base_config.llm
        where = urlsplit(llm.api_base).netloc if llm.api_base else "the provider's API"
        return ModelInfo(name=llm.model, offline=False,
                         description=f"{llm.model} via litellm ({where}), from app.yaml / env.")

    @property
    def database_label(self) -> str:
        """The database URL without its password, for the page and the terminal."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def keeps_database(self) -> bool:
        return sqlite_file(self.database_url) is None


async def run_sandbox(config: AppConfig, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Start the sandbox and serve its page at http://host:port/ until interrupted."""
    from aiohttp import web

    from sandbox.web_app import build_web_app

    for chatty in ("alembic", "LiteLLM", "litellm"):  # start-up details nobody reads here
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    sandbox = Sandbox(config)
    runner = web.AppRunner(build_web_app(sandbox), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:  # the port first: a busy one fails at once, before anything else starts
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise SystemExit(f"error: cannot serve the sandbox on {host}:{port} ({error.strerror}); "
                         f"try another port: python -m bot sandbox --port {port + 1}") from None
    try:
        await sandbox.start()
    except BaseException:
        await runner.cleanup()
        await sandbox.stop()
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    bound_port = runner.addresses[0][1]
    print(f"\n  Sandbox ready: open http://{shown}:{bound_port}/ in your browser\n"
          f"  model: {sandbox.model_info.name}"
          f"{' (offline demo model)' if sandbox.offline else ''}"
          f" · database: {sandbox.database_label} · Ctrl+C stops\n", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await sandbox.stop()
