"""Small readers shared by the end-to-end tests (storage rows, support posts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sandbox.model_server import Reply, ToolCalls
from storage.models import Conversation, HumanRequest, Message
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts


async def all_rows(bot: Any, model: type) -> list[Any]:
    async with bot.services.sessions() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def stored_messages(bot: Any) -> list[Message]:
    async with bot.services.sessions() as session:
        rows = await session.execute(select(Message).where(Message.status == "success")
                                     .order_by(Message.order, Message.step_order))
        return list(rows.scalars())


async def requests(bot: Any) -> list[HumanRequest]:
    return await all_rows(bot, HumanRequest)


async def conversation(bot: Any, conversation_id: int = 1) -> Conversation:
    """A conversation by id (the first one by default): it may have no case number yet."""
    async with bot.services.sessions() as session:
        return (await session.execute(
            select(Conversation).where(Conversation.id == conversation_id))).scalar_one()


def support_thread_posts(slack: Any, root_ts: str) -> list[dict[str, Any]]:
    return bot_posts(slack, SUPPORT, root_ts)


async def asked(bot: Any, slack: Any, model: Any, *, final: str = "Final answer."
                ) -> tuple[str, dict[str, Any]]:
    """A customer asks; the model asks staff once, then answers `final`. Returns the customer's
    ts and the question's post in #support."""
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?"})]), Reply(final))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return ts, post


def ephemerals_for(slack: Any, user: str) -> list[str]:
    return [e["text"] for e in slack.ephemerals if e["user"] == user]
