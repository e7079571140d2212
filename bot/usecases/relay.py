"""Staff words to the customer: posted verbatim in the customer's thread under the staff
member's name, and saved as the agent's message (`provider: human`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.toolkit.posts import PostQueue, wake
from storage import conversations, messages
from storage.models import Conversation, Message, utcnow


def relay_key(support_channel: str, support_ts: str) -> str:
    """The outbox key of a relayed reply, found again when staff edit or delete it."""
    return f"relay:{support_channel}:{support_ts}"


async def relay_to_customer(
    session: AsyncSession, posts: PostQueue, *, conversation: Conversation, text: str,
    user_id: str, name: str, key: str, icon_url: str | None = None,
    extra_meta: dict[str, object] | None = None,
) -> Message:
    """Save a staff member's reply as the agent's message and queue its post to the customer."""
    meta = {**messages.human_metadata(name, user_id), **(extra_meta or {})}
    message = await messages.add_message(
        session, conversation_id=conversation.id, role="assistant", position="turn",
        text=text, agent_name=name, slack_user_id=user_id, meta=meta, status="success")
    await posts.to_customer(session, conversation, text, key=key, message=message,
                            username=name, icon_url=icon_url)
    await wake(session, conversation.id)
    conversation.last_human_activity_at = utcnow()
    conversations.set_waiting_on_humans(conversation, False)  # a person just answered
    return message
