"""Issue 13: configuration mistakes are errors naming what is wrong, start-up says what it uses,
and logs are JSON lines (or readable text) naming the case and the Slack event, never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import subprocess
import sys

import pytest

from bot.config import ConfigError, load_config
from bot.process.logs import configure_logging
from bot.toolkit import log_context
from sandbox.model_server import Reply
from sandbox.slack_emulator import SlackEmulator
from tests.cli.helpers import ROOT, command_env, start_run_command
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT


def run_cli(*args: str, env: dict[str, str] | None = None, cwd=ROOT
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["run", "migrate", "doctor", "report"])
def test_a_config_path_that_does_not_exist_is_named(command, tmp_path):
    missing = tmp_path / "ap.yaml"
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-set", "SLACK_APP_TOKEN": "xapp-set",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    result = run_cli(command, "--config", str(missing), env=env)
    assert result.returncode == 2
    assert f"config file not found: {missing}" in result.stderr
    assert "SLACK_BOT_TOKEN" not in result.stderr


def test_without_config_the_working_directory_app_yaml_or_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).slack.mode == "socket"  # no app.yaml here: defaults
    (tmp_path / "app.yaml").write_text("slack:\n  mode: http\n")
    assert load_config(environ={}).slack.mode == "http"
    with pytest.raises(ConfigError, match=r"config file not found: other\.yaml"):
        load_config("other.yaml")
    with pytest.raises(ConfigError, match="config path is not a file"):
        load_config(tmp_path)


def test_sandbox_on_a_fresh_checkout_reads_the_shipped_app_yaml():
    """`python -m bot sandbox` without --config finds ./app.yaml from the repository root."""
    config = load_config(ROOT / "app.yaml", environ={})
    assert config.logging.format == "text" and config.log_level == "INFO"


def test_secrets_are_hidden_in_every_format(capsys):
    try:
        for fmt in ("text", "json"):
            configure_logging("INFO", format=fmt, secrets=["xoxb-very-secret-token", "pw"])
            token = log_context.conversation_id.set(7)
            try:
                logging.getLogger("bot.test").warning("calling upward with xoxb-very-secret-token")
                try:
                    raise RuntimeError("auth xoxb-very-secret-token refused")
                except RuntimeError:
                    logging.getLogger("bot.test").exception("failed")
            finally:
                log_context.conversation_id.reset(token)
            err = capsys.readouterr().err
            assert "xoxb-very-secret-token" not in err and "***" in err
            if fmt == "json":
                lines = [json.loads(line) for line in err.splitlines()]
                assert lines[0]["conversation_id"] == 7 and lines[0]["level"] == "WARNING"
                assert "RuntimeError: auth *** refused" in lines[1]["exception"]
            else:
                assert "[case=7]" in err.splitlines()[0]
            # short values are not treated as secrets: ordinary words stay readable
            assert "calling upward with ***" in err
    finally:  # leave no handler bound to the captured stream
        root = logging.getLogger()
        for handler in [h for h in root.handlers if type(h).__name__ == "_OurHandler"]:
            root.removeHandler(handler)


async def test_run_logs_json_with_case_and_event_ids_and_no_secret(database_url, model,
                                                                   tmp_path):
    """The real `python -m bot run` with LOG_FORMAT=json at DEBUG: every line is a JSON object,
    lines name the Slack event and the conversation, no token, key or password appears, and no
    line above DEBUG carries the customer's message."""
    slack = SlackEmulator(bot_token="xoxb-0000-secret-bot-token",
                          app_token="xapp-1-secret-app-token", signing_secret="secret-signing")
    slack.add_user(CUSTOMER, "carol", team_id="T0ACME")
    slack.add_channel(SUPPORT, "support", members=["U0BOT"])
    slack.add_channel(CUSTOMERS, "acme", members=[CUSTOMER])
    await slack.start()
    password = "db-pass-word-42"
    url = database_url.replace("postgres@", f"postgres:{password}@")
    env = command_env(slack, model, url)
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "LLM_API_KEY": "sk-secret-model-key"})
    process = await start_run_command(env, stdout=asyncio.subprocess.PIPE,
                                      stderr=asyncio.subprocess.STDOUT)
    try:
        await slack.wait_connected(timeout=60)
        model.script(Reply("Here is your answer."))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "My private order question 9931")
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        await slack.stop()
    text = output.decode()
    assert process.returncode == 0, text
    lines = [json.loads(line) for line in io.StringIO(text) if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    starting = next(line for line in lines if line["message"].startswith("starting: config"))
    assert str(ROOT / "app.yaml") in starting["message"]
    assert "Slack socket mode" in starting["message"] and "openai/test-model" in starting["message"]
    assert ("***" in starting["message"]) == database_url.startswith("postgresql")
    assert any(line.get("event_id", "").startswith("Ev") for line in lines)
    assert any(line.get("conversation_id") == 1 for line in lines)
    for secret in (slack.bot_token, slack.app_token, "sk-secret-model-key", password):
        assert secret not in text
    assert not any("9931" in line["message"] for line in lines if line["level"] != "DEBUG")
