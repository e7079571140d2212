"""What the fault tests share: a model that answers each question by name, and a wait for a
stored state that no emulator event announces."""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.model_server import Reply, last_user_text


def echo(request: dict[str, Any]) -> Reply:
    """Answer `answer to <the customer's last words>`, so each answer names its question."""
    return Reply(f"answer to {last_user_text(request)}")


async def wait_until(read: Any, check: Any, timeout: float = 30.0) -> Any:
    """Poll `read()` until `check` holds on its value; returns that value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check(value := await read()):
        assert asyncio.get_running_loop().time() < deadline, "state not reached in time"
        await asyncio.sleep(0.1)
    return value
