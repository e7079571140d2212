"""Finding cases from what Slack shows: a customer message, a support post, a case number."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from storage import conversations
from storage.models import Conversation, HumanRequest, Message, OutboxPost


class CaseLookup:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._config = config
        self._sessions = sessions

    async def find_or_open(self, *, team_id: str, channel_id: str, thread_ts: str) -> int | None:
        """The conversation of a customer thread, opened if the bot has not seen it yet."""
        if not self._config.channels.is_customer_channel(channel_id):
            return None
        async with self._sessions() as session:
            conversation = await conversations.get_or_create_conversation(
                session, team_id=team_id, channel_id=channel_id, thread_ts=thread_ts)
            await session.commit()
            return conversation.id

    async def case_number(self, conversation_id: int) -> int:
        """The conversation's case number, given now if staff are about to see it first."""
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            number = await conversations.number_case(session, conversation)
            await session.commit()
            return number

    async def by_support_post(self, ts: str) -> Conversation | None:
        """The case whose support thread root, request post or card is this ts."""
        async with self._sessions() as session:
            found = await conversations.find_conversation_by_support_thread(
                session, support_thread_ts=ts)
            if found:
                return found
            request = (await session.execute(
                select(HumanRequest).where(HumanRequest.support_ts == ts))).scalars().first()
            if request:
                return await conversations.get_conversation(session, request.conversation_id)
            post = (await session.execute(select(OutboxPost).where(
                OutboxPost.slack_ts == ts, OutboxPost.args["channel"].as_string()
                == self._config.channels.support))).scalars().first()
            if post and post.conversation_id:
                return await conversations.get_conversation(session, post.conversation_id)
            return None

    async def by_customer_message(self, channel_id: str, ts: str) -> Conversation | None:
        async with self._sessions() as session:
            found = await conversations.find_conversation_by_thread(
                session, channel_id=channel_id, thread_ts=ts)
            if found:
                return found
            message = (await session.execute(
                select(Message).join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.channel_id == channel_id,
                       or_(Message.slack_ts == ts)))).scalars().first()
            if message:
                return await conversations.get_conversation(session, message.conversation_id)
            return None
