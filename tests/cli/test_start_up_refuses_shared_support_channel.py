"""Issue 10: `python -m bot run` refuses to start when the support channel is shared with
another workspace, and says which channel and what to do."""

from __future__ import annotations

import asyncio

from bot.toolkit import texts
from tests.cli.helpers import command_env, start_run_command
from tests.conftest import CUSTOMER_TEAM, SUPPORT


async def test_run_stops_with_a_message_when_the_support_channel_is_shared(
        database_url, slack, model):
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM)
    env = command_env(slack, model, database_url)
    process = await start_run_command(env, stdout=asyncio.subprocess.PIPE,
                                      stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    message = texts.support_channel_shared_at_start(SUPPORT, [CUSTOMER_TEAM])
    assert f"error: {message}" in stderr.decode()
    assert not slack.calls_to("apps.connections.open")  # it never connected
    assert not slack.calls_to("chat.postMessage")
