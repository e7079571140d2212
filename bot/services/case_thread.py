"""The case's thread in the support channel: opened once, with a card staff can act on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outbox import SUPPORT_THREAD
from bot.slack.blocks import case_card_blocks
from storage import work
from storage.models import Conversation, OutboxPost


async def post_exists(session: AsyncSession, key: str) -> bool:
    return (await session.execute(
        select(OutboxPost.id).where(OutboxPost.key == key))).first() is not None


async def ensure_case_thread(session: AsyncSession, conversation: Conversation, *,
                             support_channel: str, reason: str,
                             excerpt: list[str] | None = None) -> None:
    """Queue the case card that opens the support thread, unless the case has one."""
    key = f"case:{conversation.id}"
    if conversation.support_thread_ts or await post_exists(session, key):
        return
    case_number = conversation.case_number or conversation.id
    await work.add_post(
        session, key=key, method="chat.postMessage", conversation_id=conversation.id,
        on_sent={"support_thread": True},
        args={"channel": support_channel, "text": f"Case #{case_number}: {reason}",
              "blocks": case_card_blocks(
                  case_number=case_number,
                  customer_name=conversation.customer_name or "Customer",
                  channel_id=conversation.channel_id, thread_ts=conversation.thread_ts,
                  reason=reason, excerpt=excerpt or [])},
    )


async def post_in_case_thread(session: AsyncSession, conversation: Conversation, *,
                              support_channel: str, key: str, text: str,
                              blocks: list[dict[str, object]] | None = None) -> None:
    """Queue a post into the case's support thread (opened by an earlier queued post)."""
    if await post_exists(session, key):
        return
    args: dict[str, object] = {"channel": support_channel, "thread_ts": SUPPORT_THREAD,
                               "text": text}
    if blocks:
        args["blocks"] = blocks
    await work.add_post(session, key=key, method="chat.postMessage",
                        conversation_id=conversation.id, args=args)
    await work.add_work(session, conversation_id=conversation.id, kind="flush")
