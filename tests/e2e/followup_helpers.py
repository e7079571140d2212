"""Shared steps of the follow-up tests (issue 6): short timers and a question waiting on staff."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sandbox.model_server import Reply, ToolCalls
from storage.models import HumanRequest, utcnow
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows

QUESTION = "Is order 1042 eligible for a refund after 40 days?"
CUSTOMER_TEXT = "Can I get a refund for order 1042?"

# Every follow-up far away; each test brings the one it tells about close.
QUIET = {"remind_after": "1h", "max_reminders": 3, "escalate_after": "2h",
         "give_up_after": "3h", "notify_customer_after": "1h", "release_after": "1h",
         "check_every": 0.2}


def timers(**overrides: Any) -> dict[str, Any]:
    return {**QUIET, **overrides}


async def ask(slack: Any, model: Any, *then: Any, holding: str | None = "Let me check.",
              question: str = QUESTION) -> tuple[str, dict[str, Any]]:
    """The customer asks; the model asks staff (`then`: its later steps). Returns the customer
    thread ts and the support post of the question."""
    model.script(ToolCalls([("askHuman", {"question": question})], text=holding), *then)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, CUSTOMER_TEXT)
    post = await slack.wait_for_message(SUPPORT)
    return ts, post


def honest(text: str = "Sorry, the team has not answered yet; they will follow up here.") -> Reply:
    return Reply(text)


async def the_request(bot: Any) -> HumanRequest:
    [request] = await all_rows(bot, HumanRequest)
    return request


async def wait_until(when: datetime) -> None:
    """Let a stored due time pass (the bot may be stopped meanwhile)."""
    await asyncio.sleep(max(0.0, (when - utcnow()).total_seconds()) + 0.05)


def thread_posts_with(slack: Any, thread_ts: str, needle: str,
                      channel: str = SUPPORT) -> list[dict[str, Any]]:
    return [m for m in bot_posts(slack, channel, thread_ts) if needle in m["text"]]
