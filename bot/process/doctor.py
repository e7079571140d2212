"""`python -m bot doctor`: checks the configuration and the live setup, and says how to fix each
finding. Nothing is changed: no migration, no post, no file created.

Each check gives findings of three kinds: `ok`, `warn` (the bot runs, but something will not
work as an admin expects) and `fail` (the bot cannot run, or cannot do its job: start-up would
refuse, or no staff would ever see a case). `doctor` exits 1 when any finding fails, naming it.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import make_url

from bot.agent.model import ModelClient, ModelError
from bot.config import AppConfig
from bot.pipeline.deliveries import MAX_ATTEMPTS
from bot.toolkit.slack_api import make_web_client, slack_error_code
from bot.usecases.support_channel import external_teams

MANIFEST = Path(__file__).resolve().parents[2] / "slack-manifest.yaml"
SLACK_TIMEOUT = 15

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    summary: str
    fix: str | None = None


def manifest_scopes(manifest: Path = MANIFEST) -> list[str]:
    """The bot scopes slack-manifest.yaml asks for (the single source of the app's scopes)."""
    data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    return list(((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name:
            return str(value)
    return None


class Doctor:
    def __init__(self, config: AppConfig, *, config_file: Path | None) -> None:
        self.config = config
        self.config_file = config_file
        self.findings: list[Finding] = []

    def add(self, check: str, status: Status, summary: str, fix: str | None = None) -> None:
        self.findings.append(Finding(check, status, summary, fix))

    async def run(self) -> list[Finding]:
        self.check_configuration()
        await self.check_slack()
        await self.check_models()
        await self.check_database()
        return self.findings

    # configuration ----------------------------------------------------------------------
    def check_configuration(self) -> None:
        config = self.config
        source = str(self.config_file) if self.config_file else "none (defaults and environment)"
        self.add("config", "ok", f"configuration file: {source}; Slack {config.slack.mode} mode, "
                 f"model {config.llm.model}")
        slack = config.slack
        if not slack.bot_token.get_secret_value():
            self.add("config", "fail", "slack.bot_token is empty",
                     "export SLACK_BOT_TOKEN (the Bot User OAuth Token, xoxb-...)")
        if slack.mode == "socket" and not slack.app_token.get_secret_value():
            self.add("config", "fail", "slack.app_token is empty (required in Socket Mode)",
                     "export SLACK_APP_TOKEN (an app-level token with connections:write, "
                     "xapp-...), or set slack.mode: http")
        if slack.mode == "http" and not slack.signing_secret.get_secret_value():
            self.add("config", "fail", "slack.signing_secret is empty (required in HTTP mode)",
                     "export SLACK_SIGNING_SECRET (Basic Information → App Credentials)")
        if not config.channels.support:
            self.add("config", "fail", "channels.support is empty",
                     "set channels.support (or SUPPORT_CHANNEL) to the id of the internal "
                     "support channel (C...)")

    # Slack --------------------------------------------------------------------------------
    async def check_slack(self) -> None:
        token = self.config.slack.bot_token.get_secret_value()
        if not token:
            return
        client = make_web_client(token=token, api_url=self.config.slack.api_url, retries=0,
                                 timeout=SLACK_TIMEOUT)
        identity = await self._check_token(client)
        if identity is None:
            return
        if self.config.slack.mode == "socket":
            await self._check_app_token()
        await self._check_channels(client, own_team=identity[1])

    async def _check_token(self, client: AsyncWebClient) -> tuple[str, str] | None:
        api_url = self.config.slack.api_url
        try:
            response = await client.auth_test()
        except SlackApiError as error:
            self.add("slack.token", "fail",
                     f"Slack refused slack.bot_token ({slack_error_code(error)})",
                     "check SLACK_BOT_TOKEN (Bot User OAuth Token, xoxb-...) and that the app is "
                     "installed in the workspace")
            return None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            self.add("slack.token", "fail",
                     f"cannot reach Slack at slack.api_url={api_url}: "
                     f"{type(error).__name__} {error}".strip(),
                     "check the network, a proxy, or SLACK_API_URL")
            return None
        user, team = str(response.get("user_id") or ""), str(response.get("team_id") or "")
        self.add("slack.token", "ok", f"bot token valid: bot user {user} "
                 f"(@{response.get('user') or '?'}) in workspace {team}")
        wanted = manifest_scopes()
        granted_header = _header(response.headers, "x-oauth-scopes")
        if granted_header is None:
            self.add("slack.scopes", "warn",
                     "Slack did not return the token's scopes (no x-oauth-scopes header)",
                     f"compare the app's OAuth scopes with {MANIFEST.name} by hand")
            return user, team
        granted = {s.strip() for s in granted_header.split(",") if s.strip()}
        missing = [scope for scope in wanted if scope not in granted]
        if missing:
            self.add("slack.scopes", "fail",
                     f"the bot token lacks scope(s) {', '.join(missing)} that "
                     f"{MANIFEST.name} asks for",
                     "add them under OAuth & Permissions → Bot Token Scopes (or update the app "
                     f"from {MANIFEST.name}), then reinstall the app and use the new token")
        else:
            self.add("slack.scopes", "ok",
                     f"the token has every scope {MANIFEST.name} asks for ({len(wanted)})")
        return user, team

    async def _check_app_token(self) -> None:
        app_token = self.config.slack.app_token.get_secret_value()
        if not app_token:
            return
        client = make_web_client(token=app_token, api_url=self.config.slack.api_url,
                                 retries=0, timeout=SLACK_TIMEOUT)
        try:
            await client.apps_connections_open(app_token=app_token)
        except SlackApiError as error:
            self.add("slack.app_token", "fail",
                     f"Slack refused slack.app_token ({slack_error_code(error)})",
                     "export SLACK_APP_TOKEN: an app-level token (xapp-...) with the "
                     "connections:write scope, from Basic Information → App-Level Tokens; "
                     "Socket Mode must be on")
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            self.add("slack.app_token", "fail", f"cannot open a Socket Mode connection: {error}",
                     "check the network or SLACK_API_URL")
            return
        self.add("slack.app_token", "ok", "app token can open Socket Mode connections")

    async def _channel(self, client: AsyncWebClient, channel: str
                       ) -> tuple[dict[str, Any] | None, str | None]:
        try:
            response = await client.conversations_info(channel=channel)
        except SlackApiError as error:
            return None, slack_error_code(error)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return None, f"{type(error).__name__} {error}".strip()
        return dict(response.get("channel") or {}), None

    async def _check_channels(self, client: AsyncWebClient, *, own_team: str) -> None:
        channels = self.config.channels
        invite = "in Slack, open the channel and type /invite @<the bot's name>"
        if channels.support:
            info, error = await self._channel(client, channels.support)
            if info is None:
                self.add("channels.support", "fail",
                         f"cannot read channels.support={channels.support} ({error})",
                         "check the channel id (channel details → bottom of About); a private "
                         f"channel is only visible once the bot is in it: {invite}")
            else:
                if info.get("is_member"):
                    self.add("channels.support", "ok",
                             f"the bot is a member of the support channel {channels.support}")
                else:
                    self.add("channels.support", "fail",
                             f"the bot is not a member of channels.support={channels.support}: "
                             "it cannot post cases there", invite)
                teams = external_teams(info, own_team)
                if teams is None:
                    self.add("channels.shared", "ok",
                             "the support channel is internal (not shared with another "
                             "workspace)")
                else:
                    self.add("channels.shared", "fail",
                             f"channels.support={channels.support} is shared with another "
                             f"workspace ({', '.join(teams) or 'unknown'}): start-up refuses it",
                             "use an internal channel for channels.support, or disconnect the "
                             "other organisation from this channel (Slack Connect settings)")
        if channels.escalation and channels.escalation != channels.support:
            await self._member_or_warn(client, "channels.escalation", channels.escalation,
                                       "escalations cannot be posted there", invite)
        if channels.customer == "*":
            self.add("channels.customer", "ok",
                     "customer channels: every channel the bot is in but the support channel")
        else:
            for channel in channels.customer:
                await self._member_or_warn(client, "channels.customer", channel,
                                           "customers there get no answers", invite)

    async def _member_or_warn(self, client: AsyncWebClient, check: str, channel: str,
                              consequence: str, invite: str) -> None:
        info, error = await self._channel(client, channel)
        if info is None:
            self.add(check, "warn", f"cannot read {check} channel {channel} ({error}): "
                     f"{consequence}", f"check the id; {invite}")
        elif not info.get("is_member"):
            self.add(check, "warn", f"the bot is not a member of {check} channel {channel}: "
                     f"{consequence}", invite)
        else:
            self.add(check, "ok", f"the bot is a member of {check} channel {channel}")

    # models -------------------------------------------------------------------------------
    async def check_models(self) -> None:
        config = self.config
        client = ModelClient(config.llm)
        fix = ("check llm.model (provider/model), llm.api_base (LLM_API_BASE) and the key "
               "(LLM_API_KEY or the provider's variable)")
        await self._one_token("llm.model", client, None, config.llm.model, fix)
        routing = config.routing
        if routing.router == "classifier" and routing.model and routing.model != config.llm.model:
            await self._one_token("routing.model", client, routing.model, routing.model,
                                  "check routing.model, or leave it empty to use llm.model")
        if routing.router == "embeddings":
            try:
                await asyncio.wait_for(client.embed(["ping"], model=routing.embedding_model),
                                       config.llm.timeout_seconds + 5)
            except (ModelError, TimeoutError) as error:
                self.add("routing.embedding_model", "fail",
                         f"embedding model {routing.embedding_model} failed: {error}",
                         "check routing.embedding_model and the provider's key")
            else:
                self.add("routing.embedding_model", "ok",
                         f"embedding model {routing.embedding_model} answers")
            examples = routing.examples_file
            if not examples or not Path(examples).is_file():
                self.add("routing.examples_file", "fail",
                         f"routing.examples_file {examples or '(empty)'} is not a file",
                         "point it at the labelled examples the embeddings router compares with")

    async def _one_token(self, check: str, client: ModelClient, model: str | None, name: str,
                         fix: str) -> None:
        try:
            result = await asyncio.wait_for(client.complete(
                [{"role": "user", "content": "Reply with the single word: ok"}], model=model,
                max_tokens=1, num_retries=0), self.config.llm.timeout_seconds + 5)
        except (ModelError, TimeoutError) as error:
            self.add(check, "fail", f"model {name} did not answer: {error}", fix)
            return
        self.add(check, "ok", f"model {name} answers ({result.model or name})")

    # database -----------------------------------------------------------------------------
    async def check_database(self) -> None:
        from alembic.runtime.migration import MigrationContext

        from storage.db import create_engine

        url = self.config.database.url
        shown = make_url(url).render_as_string(hide_password=True)
        fix = "check database.url (DATABASE_URL) and that the database server is up"
        try:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                             ":memory:"):
                file = Path(parsed.database)
                if not file.exists():
                    if file.parent.is_dir():
                        self.add("database", "warn", f"{shown}: the file does not exist yet",
                                 "`python -m bot run` (or `migrate`) creates it")
                    else:
                        self.add("database", "fail", f"{shown}: folder {file.parent} does not "
                                 "exist", "create the folder or fix database.url")
                    return
            engine = create_engine(url)
        except Exception as error:  # noqa: BLE001 - an unusable URL is a finding
            self.add("database", "fail", f"{shown}: {error}", fix)
            return
        try:
            async with engine.connect() as connection:
                current = await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_heads())
        except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
            self.add("database", "fail",
                     f"cannot reach the database {shown}: {type(error).__name__}: "
                     f"{str(error)[:200]}", fix)
            await engine.dispose()
            return
        try:
            await self._check_schema(url, shown, current, engine)
        finally:
            await engine.dispose()

    async def _check_schema(self, url: str, shown: str, current: Any, engine: Any) -> None:
        """The migration the database is at, and (at the latest) what it holds that needs an
        operator; `engine` is the one the reachability check used."""
        from alembic.script import ScriptDirectory

        from storage.migrate import alembic_config

        self.add("database", "ok", f"database {shown} is reachable")
        scripts = ScriptDirectory.from_config(alembic_config(url))
        heads = set(scripts.get_heads())
        known = {revision.revision for revision in scripts.walk_revisions()}
        if set(current) == heads:
            self.add("database.schema", "ok",
                     f"schema at the latest migration ({', '.join(heads)})")
            await self._check_failed_deliveries(engine)
        elif any(revision not in known for revision in current):
            self.add("database.schema", "fail",
                     f"the database is at migration {', '.join(current)}, which this version of "
                     "the bot does not know (a newer version migrated it)",
                     "run the newer version of the bot, or restore a matching backup")
        else:
            at = ", ".join(current) or "no schema yet"
            self.add("database.schema", "warn",
                     f"schema behind the latest migration ({at}; latest {', '.join(heads)})",
                     "`python -m bot run` migrates at start-up; or run `python -m bot migrate`")


    async def _check_failed_deliveries(self, engine: Any) -> None:
        from storage.db import create_session_factory
        from storage.inbound import count_failed

        try:
            async with create_session_factory(engine)() as session:
                failed = await count_failed(session)
        except Exception as error:  # noqa: BLE001 - the database went away meanwhile
            self.add("slack.deliveries", "warn", "could not count stored Slack events the "
                     f"listeners failed on: {type(error).__name__}: {str(error)[:200]}")
            return
        if failed:
            self.add("slack.deliveries", "warn",
                     f"{failed} stored Slack event(s) the listeners failed on "
                     f"{MAX_ATTEMPTS} times are kept, not handled (inbound_events.failed_at; "
                     "the log says why: 'gave up on stored Slack delivery')",
                     "fix the cause, then hand them over again: UPDATE inbound_events SET "
                     "failed_at = NULL, attempts = 0 WHERE failed_at IS NOT NULL")


MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def render(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"[{MARK[finding.status]}] {finding.check}: {finding.summary}")
        if finding.fix and finding.status != "ok":
            lines.append(f"       fix: {finding.fix}")
    blocking = [f for f in findings if f.status == "fail"]
    warnings = [f for f in findings if f.status == "warn"]
    if blocking:
        lines.append(f"doctor: {len(blocking)} problem(s) block the bot: "
                     + "; ".join(f"{f.check} ({f.summary})" for f in blocking))
    else:
        lines.append(f"doctor: the bot can run ({len(warnings)} warning(s))")
    return "\n".join(lines)


async def diagnose(config: AppConfig, *, config_file: Path | None = None) -> list[Finding]:
    return await Doctor(config, config_file=config_file).run()


async def run_doctor(config: AppConfig, *, config_file: Path | None = None) -> int:
    """Print every finding with its fix; 0 when the bot can run, 1 when something blocks it."""
    findings = await diagnose(config, config_file=config_file)
    print(render(findings), file=sys.stdout, flush=True)
    return 1 if any(f.status == "fail" for f in findings) else 0
