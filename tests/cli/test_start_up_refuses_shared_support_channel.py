"""Issue 10: `python -m bot run` refuses to start when the support channel is shared with
another workspace, and says which channel and what to do."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot import texts
from tests.conftest import CUSTOMER_TEAM, SUPPORT

ROOT = Path(__file__).resolve().parents[2]


async def test_run_stops_with_a_message_when_the_support_channel_is_shared(
        database_url, slack, model):
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLM_"))}
    env.update({
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url, "SUPPORT_CHANNEL": SUPPORT,
        "LLM_MODEL": "openai/test-model", "LLM_API_BASE": model.base_url,
        "LLM_API_KEY": "sk-test", "DATABASE_URL": database_url,
    })
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(ROOT / "app.yaml"), cwd=ROOT,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    message = texts.support_channel_shared_at_start(SUPPORT, [CUSTOMER_TEAM])
    assert f"error: {message}" in stderr.decode()
    assert not slack.calls_to("apps.connections.open")  # it never connected
    assert not slack.calls_to("chat.postMessage")
