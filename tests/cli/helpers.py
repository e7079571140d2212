"""Running the real `python -m bot run` with the shipped app.yaml against the sandbox fakes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SUPPORT

ROOT = Path(__file__).resolve().parents[2]


def command_env(slack: Any, model: Any, database_url: str) -> dict[str, str]:
    """The environment an admin would export, pointed at the emulator and the model server;
    any SLACK_/LLM_ variables of the test run itself are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLM_"))}
    env.update({
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url, "SUPPORT_CHANNEL": SUPPORT,
        "LLM_MODEL": "openai/test-model", "LLM_API_BASE": model.base_url,
        "LLM_API_KEY": "sk-test", "DATABASE_URL": database_url,
    })
    return env


async def start_run_command(env: dict[str, str], **pipes: Any) -> asyncio.subprocess.Process:
    """`python -m bot run --config app.yaml` from the repository root."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(ROOT / "app.yaml"), cwd=ROOT,
        env=env, **pipes)
