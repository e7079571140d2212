"""Loads app.yaml into typed settings: environment substitution, validation, clear errors.

Every value may be `${VAR}` or `${VAR:-default}`. Unknown keys are errors naming their path, and a
missing secret for the chosen Slack mode names the key and the environment variable to set.
"""

from __future__ import annotations

import os
import re
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from bot.toolkit.business_time import business_hours, parse_duration

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """app.yaml cannot be used; the message names the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Section):
    host: str = "0.0.0.0"
    port: int = 3000
    path: str = "/slack/events"


class SlackSettings(_Section):
    mode: Literal["socket", "http"] = "socket"
    bot_token: SecretStr = SecretStr("")
    app_token: SecretStr = SecretStr("")
    signing_secret: SecretStr = SecretStr("")
    api_url: str = "https://slack.com/api/"
    http: HttpSettings = HttpSettings()
    command: str = "/handoff"
    # How long a post Slack refuses for now (rate limits, 5xx, outages) keeps being retried
    # before it is given up and staff are told.
    retry_posts_for: timedelta = timedelta(hours=6)
    # The ⏳ reaction goes on a customer's message only when it has no answer this long after
    # it arrived (0s: on every message, at once).
    holding_reaction_after: timedelta = timedelta(seconds=2)
    # The model's answer appears in the customer's thread as it is written (chat.startStream),
    # except in a burst (conversations waiting for a worker: see docs/streaming.md); off: every
    # answer is posted whole, once it is complete.
    streaming: bool = True
    # Text gathered before each call to Slack while streaming: a few calls per answer, none per
    # token. An answer shorter than this is posted whole.
    stream_buffer_chars: int = Field(default=256, ge=20, le=12_000)
    # The "is thinking…" status under the customer's thread while the model works, once the
    # answer is slower than `holding_reaction_after` (assistant.threads.setStatus), where Slack
    # shows it; the ⏳ stays the fallback.
    thinking_status: bool = True

    @field_validator("holding_reaction_after", mode="before")
    @classmethod
    def _holding_after(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)

    @field_validator("retry_posts_for", mode="before")
    @classmethod
    def _retry_window(cls, value: Any) -> timedelta:
        window = value if isinstance(value, timedelta) else parse_duration(value)
        if window <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return window

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/', for example /handoff")
        return value


class ChannelSettings(_Section):
    support: str = ""
    customer: Literal["*"] | list[str] = "*"
    escalation: str | None = None
    draft: bool | list[str] = False

    def is_customer_channel(self, channel_id: str) -> bool:
        if not channel_id or channel_id == self.support or channel_id == self.escalation:
            return False
        if self.customer == "*":
            return True
        return channel_id in self.customer

    def is_draft(self, channel_id: str) -> bool:
        if isinstance(self.draft, bool):
            return self.draft
        return channel_id in self.draft


class StaffSettings(_Section):
    users: list[str] = []
    usergroup: str | None = None
    note_prefix: str = "//"
    oncall: list[str] = []


class LlmSettings(_Section):
    model: str = "openai/gpt-4o-mini"
    api_base: str | None = None
    api_key: SecretStr = SecretStr("")
    system_prompt: str = (
        "You are a friendly, precise customer support agent. Answer the customer's question "
        "in their thread. When you need a fact, a confirmation or a decision that only the "
        "support team has, call askHuman with one clear question instead of guessing."
    )
    context_tokens: int = Field(default=6000, ge=500)
    max_output_tokens: int = Field(default=800, ge=16)
    temperature: float = 0.3
    timeout_seconds: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0)
    # Bounds on bad model output, counted from the stored rows of a customer message's turn.
    max_steps_per_message: int = Field(default=8, ge=1)
    max_tool_errors: int = Field(default=3, ge=1)
    empty_answer_retries: int = Field(default=1, ge=0)

    @field_validator("api_base", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


class DatabaseSettings(_Section):
    url: str = "sqlite:///bot.db"
    # Deprecated name of `workers.concurrency` (it bounds the worker, not the database); still
    # read when `workers.concurrency` is not set.
    concurrency: int = Field(default=8, ge=1, le=200)


class WorkerSettings(_Section):
    # `python -m bot run` answers Slack (stores each event, then acks) in its own process and
    # runs the work (the listeners, model steps, outbox posts, timers) in this many worker
    # processes, so an ack never waits behind model work. "auto": one per core (they run at a
    # lower CPU priority than the front); 0: everything in one process.
    processes: int | Literal["auto"] = "auto"
    # How often a worker looks for work nobody was woken for (after a crash, a lost wake-up).
    sweep_every: timedelta = timedelta(seconds=5)
    # Conversations one process works on at once (model turns, posts); the PostgreSQL pool is
    # sized from it. Unset: `database.concurrency` (its former name), 8 by default.
    concurrency: int | None = Field(default=None, ge=1, le=200)

    @field_validator("processes", mode="before")
    @classmethod
    def _processes(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not 0 <= value <= 64:
            raise ValueError("must be between 0 and 64, or auto")
        return value

    @field_validator("sweep_every", mode="before")
    @classmethod
    def _sweep(cls, value: Any) -> timedelta:
        every = value if isinstance(value, timedelta) else parse_duration(value)
        if every <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return every

    def process_count(self) -> int:
        """Worker processes to start: `processes`, with "auto" one per core. The front only
        stores deliveries, a few transactions per burst, and the workers are niced below it:
        on two cores, two worker processes answered a burst 1.3-1.5x faster than one on
        PostgreSQL, and 1.3-1.6x on SQLite since its writers wait for the write lock on the
        event loop (at ~1.1x the CPU an answer), with acks far inside Slack's 3 s
        (docs/performance.md)."""
        if self.processes != "auto":
            return int(self.processes)
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


class BusinessHoursSettings(_Section):
    timezone: str = "UTC"
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon", "tue", "wed", "thu", "fri",
    ]
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: list[str] = []


class TierTimerSettings(_Section):
    """Follow-up times of askHuman questions for the accounts of one tier (see `accounts`); a
    key left out keeps `timers`' value. The number of reminders, the customer's holding notice
    and the release of idle cases stay those of `timers`."""

    remind_after: timedelta | None = None
    escalate_after: timedelta | None = None
    give_up_after: timedelta | None = None

    @field_validator("remind_after", "escalate_after", "give_up_after", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> timedelta | None:
        return None if value is None else _duration(value)


class TimerSettings(_Section):
    remind_after: timedelta = timedelta(minutes=10)
    max_reminders: int = Field(default=3, ge=0)
    escalate_after: timedelta = timedelta(minutes=30)
    give_up_after: timedelta = timedelta(hours=4)
    notify_customer_after: timedelta = timedelta(minutes=15)
    release_after: timedelta = timedelta(hours=24)
    release_to: Literal["bot", "humans"] = "bot"
    # Close a conversation the bot answered alone (staff never saw it) once the customer has
    # been quiet this long after the answer; unset: such conversations stay open.
    close_answered_after: timedelta | None = None
    business_hours: BusinessHoursSettings | None = None
    # How often the scheduler looks for due follow-ups (seconds may be fractional: 0.5).
    check_every: timedelta = timedelta(seconds=15)
    # Housekeeping: received event ids and finished work/outbox rows older than this are pruned.
    retention: timedelta = timedelta(days=7)
    housekeeping_every: timedelta = timedelta(hours=1)
    # Per account tier (see `accounts`): overrides of the follow-up times above.
    tiers: dict[str, TierTimerSettings] = {}

    def for_tier(self, tier: str | None) -> TimerSettings:
        """These timers with the overrides of `tier` (unchanged without a tier or overrides)."""
        override = self.tiers.get(tier) if tier else None
        if override is None:
            return self
        changes = {key: value for key, value in override.model_dump().items()
                   if value is not None}
        return self.model_copy(update=changes)

    @field_validator(
        "remind_after", "escalate_after", "give_up_after", "notify_customer_after",
        "release_after", "retention", mode="before",
    )
    @classmethod
    def _parse(cls, value: Any) -> timedelta:
        return _duration(value)

    @field_validator("close_answered_after", mode="before")
    @classmethod
    def _optional_duration(cls, value: Any) -> timedelta | None:
        if value in (None, ""):
            return None
        after = _duration(value)
        if after <= timedelta(0):
            raise ValueError("must be longer than 0s, or empty to keep such cases open")
        return after

    @field_validator("check_every", "housekeeping_every", mode="before")
    @classmethod
    def _parse_interval(cls, value: Any) -> timedelta:
        if isinstance(value, float) and value > 0:
            return timedelta(seconds=value)
        interval = _duration(value)
        if interval <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return interval

    @field_validator("business_hours", mode="before")
    @classmethod
    def _yaml_scalars(cls, value: Any) -> Any:
        """Undo YAML 1.1's readings: `17:00` unquoted is the integer 1020 (base 60) and
        `2026-12-25` unquoted is a date; both are meant as written."""
        if not isinstance(value, dict):
            return value
        value = dict(value)
        for key in ("start", "end"):
            minutes = value.get(key)
            if isinstance(minutes, int) and not isinstance(minutes, bool):
                if not 0 <= minutes < 24 * 60:
                    raise ValueError(f"{key}: expected a time such as \"09:00\"")
                value[key] = time(minutes // 60, minutes % 60)
        if isinstance(value.get("holidays"), list):
            value["holidays"] = [day.isoformat() if isinstance(day, date) else day
                                 for day in value["holidays"]]
        return value

    @field_validator("business_hours")
    @classmethod
    def _usable_hours(cls, value: BusinessHoursSettings | None) -> BusinessHoursSettings | None:
        if value is not None:
            business_hours(value)  # unknown time zone, bad holiday, start after end
        return value


class RoutingSettings(_Section):
    router: Literal["none", "classifier", "embeddings", "structured", "tool"] = "tool"
    model: str | None = None
    embedding_model: str = "openai/text-embedding-3-small"
    examples_file: str | None = None
    threshold: float = Field(default=0.8, ge=0, le=1)


class MetricsSettings(_Section):
    # A server of its own for /metrics, /healthz and /readyz (Socket Mode has no other; in HTTP
    # mode they are on slack.http.port as well). Unset or empty: no such server. 0: any free port.
    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "0.0.0.0"

    @field_validator("port", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class LoggingSettings(_Section):
    # text: readable lines for a terminal; json: one JSON object per line for a collector.
    format: Literal["text", "json"] = "text"


class RatingSettings(_Section):
    """The satisfaction prompt a customer gets in their thread when their case is resolved."""

    enabled: bool = False
    # Share of resolutions that ask (0: never, 1: always), drawn at random per resolution.
    sample: float = Field(default=1.0, ge=0, le=1)
    # A customer is asked at most once per this period, whatever the case (decided in the
    # database, so replicas agree).
    cooldown: timedelta = timedelta(days=7)
    # Also ask when the bot closes a conversation it answered alone
    # (`timers.close_answered_after`).
    after_bot_alone: bool = False

    @field_validator("cooldown", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> timedelta:
        cooldown = _duration(value)
        if cooldown < timedelta(0):
            raise ValueError("must not be negative")
        return cooldown


class HomeSettings(_Section):
    """The app's Home tab (the staff queue): how often a person's view may be republished
    when cases change, and for how long after opening Home it is kept up to date."""

    refresh_every: timedelta = timedelta(seconds=5)
    viewers_for: timedelta = timedelta(hours=12)

    @field_validator("refresh_every", "viewers_for", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> timedelta:
        duration = _duration(value)
        if duration <= timedelta(0):
            raise ValueError("must be positive")
        return duration
class KnowledgeSettings(_Section):
    """Knowledge learnt from staff: entries proposed on resolve, saved by staff, given to the
    model before it answers."""

    enabled: bool = False
    # The litellm embedding model that places questions; unset: the embeddings router's model
    # when `routing.router` is `embeddings`, else `lexical` (the databases' full-text search).
    embedding_model: str | None = None
    # How close (cosine, 0..1) an entry's question must be to the customer's to be given.
    threshold: float = Field(default=0.5, ge=0, le=1)
    max_entries: int = Field(default=3, ge=1, le=20)

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


class AccountSettings(_Section):
    """Who a customer channel belongs to; shown on the case card, `tier` selects timers."""

    name: str
    tier: str | None = None
    notes: str | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("tier", "notes", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if value is None:
            return None
        return str(value).strip() or None


class AppConfig(_Section):
    slack: SlackSettings = SlackSettings()
    channels: ChannelSettings = ChannelSettings()
    staff: StaffSettings = StaffSettings()
    llm: LlmSettings = LlmSettings()
    database: DatabaseSettings = DatabaseSettings()
    workers: WorkerSettings = WorkerSettings()
    timers: TimerSettings = TimerSettings()
    routing: RoutingSettings = RoutingSettings()
    logging: LoggingSettings = LoggingSettings()
    ratings: RatingSettings = RatingSettings()
    home: HomeSettings = HomeSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    # Customer channel id -> its account (name, tier, notes).
    accounts: dict[str, AccountSettings] = {}
    metrics: MetricsSettings = MetricsSettings()
    log_level: str = "INFO"

    @property
    def chat_models(self) -> list[str]:
        """Every model the bot sends chat completions to: the agent's, and the classifier
        router's when it has its own."""
        return [self.llm.model, *([self.routing.model] if self.routing.model else [])]

    @property
    def knowledge_embedding_model(self) -> str | None:
        """The model that embeds knowledge entries; None: lexical search."""
        chosen = self.knowledge.embedding_model
        if chosen == "lexical":
            return None
        if chosen is None and self.routing.router == "embeddings":
            return self.routing.embedding_model
        return chosen

    @property
    def worker_concurrency(self) -> int:
        """Conversations one process works on at once (`workers.concurrency`)."""
        return self.workers.concurrency or self.database.concurrency

    @property
    def database_pool_size(self) -> int:
        """PostgreSQL connections one process keeps: one per conversation worked at once, and
        a few for the listeners that acknowledge Slack and for the timers."""
        return self.worker_concurrency + 4

    @field_validator("accounts")
    @classmethod
    def _channel_ids(cls, value: dict[str, AccountSettings]) -> dict[str, AccountSettings]:
        for channel_id in value:
            if not re.fullmatch(r"[CG][A-Z0-9]+", str(channel_id)):
                raise ValueError(f"{channel_id!r} is not a channel id (such as C0123ABCD)")
        return value

    def account_for(self, channel_id: str | None) -> AccountSettings | None:
        return self.accounts.get(channel_id) if channel_id else None

    def timers_for(self, channel_id: str | None) -> TimerSettings:
        """The follow-up timers of a customer channel: its account's tier may override them."""
        account = self.account_for(channel_id)
        return self.timers.for_tier(account.tier if account else None)


def substitute_env(value: Any, environ: dict[str, str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a parsed YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {key: substitute_env(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_env(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        return ""

    return _ENV_PATTERN.sub(replace, value)


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source} is not valid:"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see app.yaml in the repository)"
        else:
            message = item["msg"]
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any] | None, *, source: str = "app.yaml",
                 environ: dict[str, str] | None = None) -> AppConfig:
    """Validate a parsed app.yaml tree (after environment substitution)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        return AppConfig.model_validate(substitute_env(raw, environ))
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source)) from None


DEFAULT_CONFIG = "app.yaml"


def resolve_config_path(path: str | Path | None) -> Path | None:
    """The file to read: `path` when one was given (it must exist: a misspelled --config is an
    error naming it, never silently the defaults); without one, ./app.yaml when it exists, else
    None (all defaults, as on a machine that only sets environment variables)."""
    if path is None:
        default = Path(DEFAULT_CONFIG)
        return default if default.is_file() else None
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"config file not found: {file} (resolved to {file.absolute()}); "
                          "check --config, or leave it out to use ./app.yaml")
    if not file.is_file():
        raise ConfigError(f"config path is not a file: {file}")
    return file


def load_config(path: str | Path | None = None, *, environ: dict[str, str] | None = None,
                ) -> AppConfig:
    """Read and validate the configuration file (see `resolve_config_path`); no file given and
    no ./app.yaml means all defaults."""
    file = resolve_config_path(path)
    if file is None:
        return parse_config({}, source="(defaults: no app.yaml)", environ=environ)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{file}: cannot be read: {error}") from None
    return parse_config(raw, source=str(file), environ=environ)


def check_slack_secrets(config: AppConfig) -> None:
    """Stop start-up when the chosen Slack mode lacks a secret, naming key and variable."""
    slack = config.slack
    if not slack.bot_token.get_secret_value():
        raise ConfigError(
            "slack.bot_token is empty: no Slack workspace is configured.\n"
            "  To connect to Slack, create the app from slack-manifest.yaml (see README, "
            "'Create the Slack app'),\n"
            "  then export SLACK_BOT_TOKEN (xoxb-...) and, for Socket Mode, SLACK_APP_TOKEN "
            "(xapp-...).\n"
            "  To try the bot without Slack, run: python -m bot sandbox"
        )
    if slack.mode == "socket" and not slack.app_token.get_secret_value():
        raise ConfigError(
            "slack.app_token is required when slack.mode is 'socket': export SLACK_APP_TOKEN "
            "(an app-level token with the connections:write scope, xapp-...)"
        )
    if slack.mode == "http" and not slack.signing_secret.get_secret_value():
        raise ConfigError(
            "slack.signing_secret is required when slack.mode is 'http': export "
            "SLACK_SIGNING_SECRET (Basic Information → App Credentials)"
        )
    if not config.channels.support:
        raise ConfigError("channels.support is empty: set the id of the internal support channel")
