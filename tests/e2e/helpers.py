"""Small readers shared by the end-to-end tests (storage rows, support posts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.models import Conversation, HumanRequest, Message
from tests.conftest import SUPPORT, bot_posts


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


async def conversation(bot: Any, case_number: int = 1) -> Conversation:
    async with bot.services.sessions() as session:
        return (await session.execute(
            select(Conversation).where(Conversation.case_number == case_number))).scalar_one()


def support_thread_posts(slack: Any, root_ts: str) -> list[dict[str, Any]]:
    return bot_posts(slack, SUPPORT, root_ts)
