"""How `python -m bot sandbox` turns app.yaml into the sandbox's configuration."""

from __future__ import annotations

from pathlib import Path

from bot.config import load_config, parse_config
from sandbox import demo_workspace as demo
from sandbox.run import (
    OFFLINE_MODEL,
    SANDBOX_DATABASE_URL,
    Sandbox,
    sandbox_config,
    sandbox_database_url,
    sqlite_file,
)

REPO_APP_YAML = Path(__file__).resolve().parents[2] / "app.yaml"


def test_the_repository_app_yaml_gives_the_offline_model_and_sandbox_db() -> None:
    config = load_config(REPO_APP_YAML, environ={})
    sandbox = Sandbox(config)
    assert sandbox.offline and sandbox.model_info.offline
    assert sandbox.database_url == SANDBOX_DATABASE_URL == "sqlite:///sandbox.db"
    assert not sandbox.keeps_database


def test_a_database_other_than_the_default_is_kept_and_its_password_hidden() -> None:
    config = parse_config({"database": {"url": "postgresql://bot:s3cret@db/support"}})
    sandbox = Sandbox(config)
    assert sandbox_database_url(config) == "postgresql://bot:s3cret@db/support"
    assert sandbox.keeps_database and "s3cret" not in sandbox.database_label
    assert sqlite_file("sqlite:///data/other.db") == Path("data/other.db")
    assert sqlite_file("sqlite://") is None


def test_offline_config_points_at_the_model_server_and_the_emulator() -> None:
    emulator = demo.build_emulator()
    config = parse_config({"slack": {"mode": "socket", "command": "/cases"},
                           "channels": {"support": "C0REALSUPPORT", "draft": ["C0REAL"]},
                           "staff": {"users": ["U0REAL"], "note_prefix": "!!"}})
    out = sandbox_config(config, emulator=emulator, database_url="sqlite:///x.db",
                         model_base_url="http://127.0.0.1:9/v1")
    assert (out.slack.mode, out.slack.command, out.slack.api_url) == (
        "http", "/cases", emulator.api_url)
    assert out.slack.signing_secret.get_secret_value() == emulator.signing_secret
    assert out.channels.support == demo.SUPPORT
    assert out.channels.customer == demo.CUSTOMER_CHANNELS and out.channels.draft is False
    assert out.staff.users == [] and out.staff.note_prefix == "!!"
    assert (out.llm.model, out.llm.api_base) == (OFFLINE_MODEL, "http://127.0.0.1:9/v1")
    assert out.routing.router == "tool" and out.database.url == "sqlite:///x.db"
    assert out.timers.remind_after.total_seconds() == 60
    # The offline loop of issue 16: knowledge on, embedded by the model server.
    assert out.knowledge.enabled and out.knowledge_embedding_model == "openai/sandbox-embedding"


def test_a_configured_key_keeps_the_real_model() -> None:
    config = parse_config({"llm": {"model": "anthropic/claude-3-5-haiku", "api_key": "sk-x"},
                           "routing": {"router": "classifier"}})
    sandbox = Sandbox(config)
    assert not sandbox.offline and sandbox.model_info.name == "anthropic/claude-3-5-haiku"
    out = sandbox_config(config, emulator=demo.build_emulator(), database_url="sqlite:///x.db",
                         model_base_url=None)
    assert out.llm.model == "anthropic/claude-3-5-haiku"
    assert out.llm.api_key.get_secret_value() == "sk-x" and out.routing.router == "classifier"
