"""The running bot: migrate, warm up, connect to Slack (Socket Mode or HTTP), work, stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.agent.model import warm_up
from bot.config import AppConfig, ConfigError
from bot.listeners.app import build_app, share_identity
from bot.process.heap import freeze_start_up_heap
from bot.process.http_server import build_ops_app, build_web_app, start_site
from bot.process.ops import MetricsExporter, Readiness
from bot.process.scheduler import FollowUpScheduler
from bot.process.wiring import Services, build_services
from bot.process.workers import WorkerProcesses
from bot.toolkit import metrics, texts
from bot.toolkit.slack_api import slack_error_code
from bot.usecases.followups import FollowUps
from storage.migrate import upgrade_async

log = logging.getLogger(__name__)


@dataclass
class RunningBot:
    services: Services
    app: AsyncApp
    http_port: int | None = None
    metrics_port: int | None = None  # the server of `metrics.port`, when configured
    _runner: web.AppRunner | None = None
    _metrics_runner: web.AppRunner | None = None
    _socket: AsyncSocketModeHandler | None = None
    scheduler: FollowUpScheduler | None = None
    workers: WorkerProcesses | None = None

    @property
    def followups(self) -> FollowUps:
        """The follow-up jobs (operators and tests run them by hand)."""
        return self.services.followups

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self._socket is not None:
            await self._socket.close_async()
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        if self.workers is not None:
            await self.workers.stop()
        await self.services.close()

    async def slack_connected(self) -> bool:
        """Socket Mode: the socket is open. HTTP mode: the token was checked at start-up."""
        return await self._socket.client.is_connected() if self._socket is not None else True


async def start_bot(config: AppConfig, *, migrate: bool = True, http_port: int | None = None,
                    sweep_seconds: float = 5.0,
                    workers: WorkerProcesses | None = None) -> RunningBot:
    """Start every part and return once the bot is connected and serving. With `workers`,
    this process is the Slack front only: its kicks wake those worker processes, which run
    the work and the timers."""
    if migrate:
        await upgrade_async(config.database.url)
    await warm_up(config.chat_models)
    services = build_services(config, sweep_seconds=sweep_seconds, front_only=workers is not None)
    try:
        await check_slack_token(services)
        await check_support_channel(services)
    except ConfigError:
        await services.close()
        raise
    app = build_app(services.listener_parts())
    await share_identity(app, services.slack)
    bot = RunningBot(services=services, app=app)
    if workers is not None:
        services.worker.forward_kicks(workers.kick)
        services.holding.forward_to(workers.hold)
        services.deliveries.forward_wakes(workers.deliveries_waiting)
        try:
            await workers.start()
        except BaseException:
            await workers.stop()
            await services.close()
            raise
        bot.workers = workers
    services.worker.start()
    services.deliveries.start()
    services.support_channel.start()
    services.home.start()
    ops = {"workers_reach_database": lambda: services.worker.database_reachable,
           "readiness": Readiness(services.engine, slack_connected=bot.slack_connected),
           "exporter": MetricsExporter(services.sessions)}
    if config.slack.mode == "http":
        web_app = build_web_app(
            app, services.engine, path=config.slack.http.path,
            signing_secret=config.slack.signing_secret.get_secret_value(), **ops)
        port = config.slack.http.port if http_port is None else http_port
        bot._runner, bot.http_port = await start_site(web_app, host=config.slack.http.host,
                                                      port=port)
        log.info("listening for Slack on http://%s:%s%s", config.slack.http.host,
                 bot.http_port, config.slack.http.path)
    else:
        bot._socket = AsyncSocketModeHandler(app, config.slack.app_token.get_secret_value())
        await bot._socket.connect_async()
        log.info("connected to Slack in Socket Mode")
    if config.metrics.port is not None:
        bot._metrics_runner, bot.metrics_port = await start_site(
            build_ops_app(services.engine, **ops), host=config.metrics.host,
            port=config.metrics.port)
        log.info("serving /metrics, /healthz and /readyz on http://%s:%s", config.metrics.host,
                 bot.metrics_port)
    if workers is None:
        # Follow-ups due while the bot was down fire once, now; then every timers.check_every.
        bot.scheduler = FollowUpScheduler(services.followups, services.engine, config.timers)
        bot.scheduler.start()
    return bot


async def check_slack_token(services: Services) -> None:
    """Fail at start-up, with the key to fix, when Slack refuses the token or cannot be reached."""
    api_url = services.config.slack.api_url
    try:
        await services.slack.identity()
    except SlackApiError as error:
        raise ConfigError(
            f"Slack refused slack.bot_token ({slack_error_code(error)}): check SLACK_BOT_TOKEN "
            "(the Bot User OAuth Token, xoxb-...) and that the app is installed") from None
    except (aiohttp.ClientError, OSError) as error:
        raise ConfigError(f"cannot reach Slack at slack.api_url={api_url}: {error}") from None


async def check_support_channel(services: Services) -> None:
    """Fail at start-up when the support channel is shared with another workspace (the bot
    posts customer conversations there), or when Slack will not tell us whether it is."""
    channel = services.config.channels.support
    if not channel:
        return
    try:
        teams = await services.support_channel.shared_with()
    except SlackApiError as error:
        raise ConfigError(texts.support_channel_unverifiable_at_start(
            channel, slack_error_code(error))) from None
    except (aiohttp.ClientError, OSError) as error:
        raise ConfigError(texts.support_channel_unverifiable_at_start(channel, str(error))
                          ) from None
    if teams is not None:
        raise ConfigError(texts.support_channel_shared_at_start(channel, teams))


async def run_forever(config: AppConfig, config_path: str | None = None) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly: running turns finish or are left for
    another replica (their leases expire), nothing recorded is lost. With `config_path` and
    `workers.processes` > 0 the work runs in that many worker processes (bot/process/workers.py)."""
    # Before any worker process starts: they inherit the folder, one scrape sums them all.
    shared_metrics = metrics.share_across_processes()
    count = config.workers.process_count() if config_path else 0
    workers = WorkerProcesses(config_path, count) if config_path and count else None
    try:
        bot = await start_bot(config, sweep_seconds=config.workers.sweep_every.total_seconds(),
                              workers=workers)
    except BaseException:
        shared_metrics.close()
        raise
    freeze_start_up_heap()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        log.info("stopping")
    finally:
        await bot.stop()
        shared_metrics.close()
