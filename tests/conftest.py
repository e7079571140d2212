"""Shared fixtures: real databases (SQLite file, PostgreSQL server), the sandbox Slack emulator
and model server on loopback, and the real bot in HTTP mode between them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import asyncpg
import pytest

from bot.config import AppConfig, parse_config
from bot.process.lifecycle import RunningBot, start_bot
from sandbox.model_server import ModelServer
from sandbox.slack_emulator import SlackEmulator

POSTGRES_ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")

TEAM = "T0OURTEAM"
CUSTOMER_TEAM = "T0ACME"
SUPPORT = "C0SUPPORT"
CUSTOMERS = "C0ACME"
OTHER_CUSTOMERS = "C0GLOBEX"
INTERNAL = "C0RANDOM"
CUSTOMER = "U0CUSTOMER"
GUEST = "U0GUEST"
STAFF = "U0STAFF"
STAFF_2 = "U0STAFF2"
OTHER_BOT = "U0OTHERBOT"
SUPPORT_GUEST = "U0CONTRACTOR"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A fresh, empty database per test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/bot.db"
        return
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(team_id=TEAM)
    emulator.add_user(CUSTOMER, "carol", real_name="Carol Customer", team_id=CUSTOMER_TEAM)
    emulator.add_user(GUEST, "gus", real_name="Gus Guest", team_id=CUSTOMER_TEAM,
                      is_stranger=True)
    emulator.add_user(STAFF, "sam", real_name="Sam Staff")
    emulator.add_user(STAFF_2, "sky", real_name="Sky Staff")
    emulator.add_user(OTHER_BOT, "otherbot", is_bot=True)
    emulator.add_user(SUPPORT_GUEST, "cory", real_name="Cory Contractor", is_restricted=True)
    emulator.add_channel(SUPPORT, "support", members=[STAFF, STAFF_2, SUPPORT_GUEST, "U0BOT"])
    emulator.add_channel(CUSTOMERS, "acme-shared", is_ext_shared=True,
                         members=[CUSTOMER, GUEST, STAFF, OTHER_BOT, "U0BOT"])
    emulator.add_channel(OTHER_CUSTOMERS, "globex-shared", members=[CUSTOMER, "U0BOT"])
    emulator.add_channel(INTERNAL, "random", members=[STAFF, CUSTOMER, "U0BOT"])
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def model() -> AsyncIterator[ModelServer]:
    server = ModelServer()
    await server.start()
    yield server
    await server.stop()


def make_config(*, database_url: str, emulator: SlackEmulator, model: ModelServer,
                **overrides: Any) -> AppConfig:
    """The test configuration; `overrides` merge into app.yaml sections by name."""
    raw: dict[str, Any] = {
        "slack": {"mode": "http", "bot_token": emulator.bot_token,
                  "signing_secret": emulator.signing_secret, "api_url": emulator.api_url,
                  "http": {"host": "127.0.0.1", "port": 0}},
        "channels": {"support": SUPPORT, "customer": [CUSTOMERS, OTHER_CUSTOMERS]},
        "llm": {"model": "openai/test-model", "api_base": model.base_url, "api_key": "sk-test",
                "retries": 1},
        "database": {"url": database_url},
    }
    for section, values in overrides.items():
        raw.setdefault(section, {})
        raw[section] = {**raw[section], **values} if isinstance(values, dict) else values
    return parse_config(raw, source="test config")


BotFactory = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def start(database_url: str, slack: SlackEmulator, model: ModelServer
                ) -> AsyncIterator[BotFactory]:
    """Start the real bot (HTTP mode) wired to the emulator; several calls = several replicas.
    The sweeps look every half second unless `sweep_seconds` says otherwise."""
    running: list[RunningBot] = []

    async def factory(*, sweep_seconds: float = 0.5, **overrides: Any) -> RunningBot:
        config = make_config(database_url=database_url, emulator=slack, model=model,
                             **overrides)
        bot = await start_bot(config, http_port=0, sweep_seconds=sweep_seconds)
        slack.connect_http(f"http://127.0.0.1:{bot.http_port}{config.slack.http.path}")
        running.append(bot)
        return bot

    yield factory
    for bot in running:
        await bot.stop()


@pytest.fixture
async def bot(start: BotFactory) -> RunningBot:
    return await start()


BOT_ID = "B0BOT"


def bot_posts(slack: SlackEmulator, channel: str, thread_ts: str | None = None
              ) -> list[dict[str, Any]]:
    """Messages our bot posted in a channel (or one thread), oldest first."""
    return [m for m in slack.messages(channel, thread_ts=thread_ts) if m.get("bot_id") == BOT_ID]
