"""Issue 3: `python -m bot migrate|run` and app.yaml errors that name the key."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, check_slack_secrets, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
            ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLM_"))}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=120)


def test_migrate_creates_the_schema_in_a_sqlite_file(tmp_path):
    db = tmp_path / "fresh.db"
    result = run_cli("migrate", "--config", str(ROOT / "app.yaml"),
                     env={"DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    tables = {row[0] for row in sqlite3.connect(db).execute(
        "select name from sqlite_master where type='table'")}
    assert {"conversations", "messages", "human_requests", "received_events",
            "work_items", "outbox", "alembic_version"} <= tables
    assert sqlite3.connect(db).execute("pragma journal_mode").fetchone()[0] == "wal"


def test_run_without_slack_tokens_explains_how_to_get_them_and_the_sandbox(tmp_path):
    result = run_cli("run", "--config", str(ROOT / "app.yaml"))
    assert result.returncode == 2
    assert "slack.bot_token" in result.stderr
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert "python -m bot sandbox" in result.stderr


def test_run_with_a_malformed_config_names_the_key(tmp_path):
    config = tmp_path / "app.yaml"
    config.write_text("slack:\n  mode: carrier-pigeon\nllm:\n  modle: x\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert "slack.mode" in result.stderr
    assert "llm.modle: unknown key" in result.stderr


def test_missing_secret_for_the_chosen_mode_is_named():
    http = parse_config({"slack": {"mode": "http", "bot_token": "xoxb-1"},
                         "channels": {"support": "C1"}})
    with pytest.raises(ConfigError, match=r"slack\.signing_secret.*SLACK_SIGNING_SECRET"):
        check_slack_secrets(http)
    socket = parse_config({"slack": {"mode": "socket", "bot_token": "xoxb-1"},
                           "channels": {"support": "C1"}})
    with pytest.raises(ConfigError, match=r"slack\.app_token.*SLACK_APP_TOKEN"):
        check_slack_secrets(socket)


def test_environment_substitution_with_defaults():
    config = parse_config(
        {"slack": {"bot_token": "${TOKEN}", "api_url": "${API:-http://localhost:9/api}"},
         "timers": {"remind_after": "${REMIND:-90s}"}},
        environ={"TOKEN": "xoxb-from-env"})
    assert config.slack.bot_token.get_secret_value() == "xoxb-from-env"
    assert config.slack.api_url == "http://localhost:9/api/"
    assert config.timers.remind_after.total_seconds() == 90


def test_wrong_types_and_bad_durations_name_their_keys():
    with pytest.raises(ConfigError) as error:
        parse_config({"slack": {"http": {"port": "eighty"}},
                      "timers": {"give_up_after": "soon"}})
    message = str(error.value)
    assert "slack.http.port" in message
    assert "timers.give_up_after" in message and "'soon'" in message


def test_secrets_are_never_printed():
    config = parse_config({"slack": {"bot_token": "xoxb-very-secret"},
                           "llm": {"api_key": "sk-very-secret"}})
    assert "very-secret" not in repr(config)
    assert "very-secret" not in str(config.model_dump())


def test_shipped_app_yaml_is_valid():
    config = load_config(ROOT / "app.yaml", environ={})
    assert config.slack.mode == "socket"
    assert config.database.url == "sqlite:///bot.db"


def test_a_missing_router_examples_file_is_named(tmp_path):
    from bot.agent.model import ModelClient
    from bot.agent.triage import build_router

    config = parse_config({"routing": {"router": "embeddings",
                                       "examples_file": str(tmp_path / "nope.yaml")}})
    with pytest.raises(ConfigError, match=r"routing\.examples_file: cannot use"):
        build_router(config, ModelClient(config.llm))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {text: hello}\n")
    config = parse_config({"routing": {"router": "embeddings", "examples_file": str(bad)}})
    with pytest.raises(ConfigError, match=r"route: human\|bot"):
        build_router(config, ModelClient(config.llm))


async def test_a_token_slack_refuses_stops_start_up_with_a_clear_message(slack, model, tmp_path):
    from bot.process.lifecycle import start_bot
    from tests.conftest import make_config

    config = make_config(database_url=f"sqlite:///{tmp_path}/bot.db", emulator=slack,
                         model=model, slack={"bot_token": "xoxb-revoked"})
    with pytest.raises(ConfigError, match=r"Slack refused slack\.bot_token \(invalid_auth\)"):
        await start_bot(config, http_port=0)
