"""Posts into the customer's thread: answers (converted and split) and the holding reaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.slack.mrkdwn import neutralise_mentions, split_message, to_mrkdwn
from storage import work
from storage.models import Conversation, Message


async def queue_answer(session: AsyncSession, conversation: Conversation, text: str, *,
                       key: str, message: Message | None = None) -> None:
    """Queue an answer as mrkdwn, split into as many posts as Slack needs, in order. The model
    may echo the customer's words, so its mentions are neutralised: they ping nobody."""
    for index, chunk in enumerate(split_message(neutralise_mentions(to_mrkdwn(text)))):
        await work.add_post(
            session, key=f"{key}:{index}", method="chat.postMessage",
            conversation_id=conversation.id,
            on_sent={"message_id": message.id} if message else None,
            args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                  "text": chunk})


async def queue_clear_holding(session: AsyncSession, conversation: Conversation,
                              customer_ts: str | None, *, key: str) -> None:
    """Remove the ⏳ reaction from the customer's message once they have an answer."""
    if customer_ts:
        await work.add_post(
            session, key=f"unreact:{conversation.id}:{customer_ts}:{key}",
            method="reactions.remove", conversation_id=conversation.id,
            args={"channel": conversation.channel_id, "ts": customer_ts,
                  "name": texts.holding_reaction()})
