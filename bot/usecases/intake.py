"""Records what people write in customer channels, before Slack is acknowledged.

One transaction per delivery: de-duplication keys, the message in the conversation's history,
and the follow-up work (a model turn, or a copy to staff). A retried or doubled delivery inserts
nothing and so does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.toolkit import texts
from bot.toolkit.payloads import message_dedupe_key
from bot.toolkit.posts import PostQueue, wake
from storage import conversations, events, human_requests, inbound, messages, work_items
from storage.inbound import StoredDelivery
from storage.models import Conversation, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    user_name: str
    text: str
    event_key: str | None
    has_words: bool = True  # False: only files or images; the model is not asked about it
    # The stored Slack delivery it came in: deleted with the message's record.
    delivery: StoredDelivery | None = None


class Intake:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], posts: PostQueue) -> None:
        self._sessions = sessions
        self._posts = posts

    async def _accept(self, session: AsyncSession, incoming: IncomingMessage) -> bool:
        keys = [message_dedupe_key(incoming.channel_id, incoming.ts)]
        if incoming.event_key:
            keys.append(incoming.event_key)
        return await events.accept_all_once(session, keys)

    async def record_customer_message(self, incoming: IncomingMessage) -> int | None:
        """Save a customer's message and queue what follows; the conversation id, or None
        for a duplicate delivery."""
        async with self._sessions() as session:
            if not await self._accept(session, incoming):
                return None
            if incoming.has_words and incoming.thread_ts == incoming.ts:
                # A new top-level message, the common case (and a burst's): its own new
                # conversation, written without reading anything first.
                created = await conversations.create_customer_thread(
                    session, team_id=incoming.team_id, channel_id=incoming.channel_id,
                    thread_ts=incoming.thread_ts, customer_user_id=incoming.user_id,
                    customer_name=incoming.user_name, text=incoming.text,
                    meta={"slack_user_name": incoming.user_name})
                if created is not None:
                    await self._commit(session, incoming)
                    return created
            conversation = await conversations.get_or_create_conversation(
                session, team_id=incoming.team_id, channel_id=incoming.channel_id,
                thread_ts=incoming.thread_ts, customer_user_id=incoming.user_id,
                customer_name=incoming.user_name,
            )
            if conversation.status != "open":  # the customer writes again: reopened
                conversation.status = "open"
                conversation.resolved_at = None
            message = await messages.add_message(
                session, conversation_id=conversation.id, role="user", position="turn",
                text=incoming.text, slack_ts=incoming.ts, slack_user_id=incoming.user_id,
                meta={"slack_user_name": incoming.user_name}, status="success",
            )
            await self._queue_follow_up(session, conversation, incoming, message.id)
            await self._commit(session, incoming)
            return conversation.id

    @staticmethod
    async def _commit(session: AsyncSession, incoming: IncomingMessage) -> None:
        """Commit the message's record, its stored delivery deleted in the same transaction."""
        await inbound.forget_with(session, incoming.delivery)
        await session.commit()
        if incoming.delivery is not None:
            incoming.delivery.forgotten = True

    async def _queue_follow_up(self, session: AsyncSession, conversation: Conversation,
                               incoming: IncomingMessage, message_id: int) -> None:
        pending = await human_requests.pending_requests(session, conversation.id)
        if conversation.assignee == "bot" and not pending and not incoming.has_words:
            # Nothing the model could read: say so plainly, without bothering staff.
            await self._posts.to_customer(
                session, conversation, texts.cannot_read_files(),
                key=f"no-words:{incoming.channel_id}:{incoming.ts}")
            await wake(session, conversation.id)
            return
        if conversation.assignee == "bot" and not pending:
            await work_items.add_work(session, conversation_id=conversation.id, kind="respond",
                                payload={"message_id": message_id})
            return
        # A person owns the case or a question is pending: no competing model turn. Staff see
        # the message in the case thread; the model's continuation sees it from the history.
        if conversation.support_thread_ts or pending:
            text = (texts.customer_wrote_while_waiting(incoming.user_name, incoming.text)
                    if conversation.assignee == "bot"
                    else texts.customer_message_forward(incoming.user_name, incoming.text))
            await self._posts.to_case_thread(
                session, conversation, text, key=f"forward:{incoming.channel_id}:{incoming.ts}")
            await wake(session, conversation.id)
        if conversation.assignee not in ("bot", "humans"):
            conversation.last_human_activity_at = utcnow()
        conversations.set_waiting_on_humans(conversation, True)

    async def record_staff_message(self, incoming: IncomingMessage) -> int | None:
        """A staff member wrote in a customer thread: saved as the agent's message, never
        answered. Returns the conversation id when the thread is a known conversation."""
        async with self._sessions() as session:
            if not await self._accept(session, incoming):
                return None
            conversation = await conversations.find_conversation_by_thread(
                session, channel_id=incoming.channel_id, thread_ts=incoming.thread_ts)
            if conversation is None:
                await self._commit(session, incoming)
                return None
            await messages.add_message(
                session, conversation_id=conversation.id, role="assistant", position="turn",
                text=incoming.text, slack_ts=incoming.ts, slack_user_id=incoming.user_id,
                agent_name=incoming.user_name, status="success",
                meta=messages.human_metadata(incoming.user_name, incoming.user_id),
            )
            conversation.last_human_activity_at = utcnow()
            await self._commit(session, incoming)
            return conversation.id
