"""Issue 3: `python -m bot run` as an admin starts it: migrate, connect (Socket Mode), answer,
and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from sandbox.model_server import Reply
from tests.cli.helpers import command_env, start_run_command
from tests.conftest import CUSTOMER, CUSTOMERS


async def test_run_answers_a_customer_and_stops_on_sigterm(database_url, slack, model):
    env = command_env(slack, model, database_url)
    process = await start_run_command(env, stdout=asyncio.subprocess.PIPE,
                                      stderr=asyncio.subprocess.STDOUT)
    try:
        await slack.wait_connected(timeout=60)
        model.script(Reply("Hello from the real command."))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Anyone there?")
        reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
        assert reply["text"] == "Hello from the real command."
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    log = output.decode()
    assert process.returncode == 0, log
    assert "connected to Slack in Socket Mode" in log and "stopping" in log
    for secret in (slack.bot_token, slack.app_token, "sk-test"):
        assert secret not in log
