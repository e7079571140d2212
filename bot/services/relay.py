"""Staff words to the customer: posted verbatim in the customer's thread under the staff
member's name, and saved as the agent's message (`provider: human`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.intake import human_metadata
from storage import messages, work
from storage.models import Conversation, Message, utcnow


def relay_key(support_channel: str, support_ts: str) -> str:
    """The outbox key of a relayed reply, found again when staff edit or delete it."""
    return f"relay:{support_channel}:{support_ts}"


async def relay_to_customer(
    session: AsyncSession, *, conversation: Conversation, text: str, user_id: str, name: str,
    key: str, icon_url: str | None = None, extra_meta: dict[str, object] | None = None,
) -> Message:
    """Save a staff member's reply as the agent's message and queue its post to the customer."""
    meta = {**human_metadata(name, user_id), **(extra_meta or {})}
    message = await messages.add_message(
        session, conversation_id=conversation.id, role="assistant", position="turn",
        text=text, agent_name=name, slack_user_id=user_id, meta=meta, status="success")
    args: dict[str, object] = {"channel": conversation.channel_id,
                               "thread_ts": conversation.thread_ts, "text": text,
                               "username": name}
    if icon_url:
        args["icon_url"] = icon_url
    await work.add_post(session, key=key, method="chat.postMessage",
                        conversation_id=conversation.id, args=args,
                        on_sent={"message_id": message.id})
    await work.add_work(session, conversation_id=conversation.id, kind="flush")
    conversation.last_human_activity_at = utcnow()
    conversation.waiting_on_humans_since = None  # a person just answered the customer
    conversation.customer_notified_at = None
    return message
