"""Draft mode: the model's answers wait in the case thread until a person sends, edits or
discards them (the agent loop holds them there: `bot.agent.loop`)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.loop import draft_key
from bot.errors import StaleAction
from bot.toolkit import texts
from bot.toolkit.blocks import outcome_blocks
from bot.toolkit.posts import PostQueue, find_post, wake
from storage import conversations
from storage.models import Message, utcnow


class Drafts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], posts: PostQueue) -> None:
        self._sessions = sessions
        self._posts = posts

    async def text_of(self, message_id: int) -> str:
        async with self._sessions() as session:
            message = await session.get(Message, message_id)
            if message is None or message.status != "draft":
                raise StaleAction(texts.draft_not_pending())
            return message.text or ""

    async def send(self, *, message_id: int, user_id: str, name: str,
                   text: str | None = None) -> int:
        async with self._sessions() as session:
            message = await self._take(session, message_id, "success")
            edited = text is not None and text.strip() != (message.text or "").strip()
            if edited:
                message.text = text
            message.meta = {**(message.meta or {}), "approved_by": {
                "name": name, "slack_user_id": user_id, "edited": edited,
                "at": utcnow().isoformat()}}
            conversation = await conversations.get_conversation(session,
                                                                message.conversation_id)
            await self._posts.answer_customer(session, conversation, message.text or "",
                                              key=f"answer:{message.id}", message=message)
            await self._close_card(session, message, texts.draft_sent(name, edited))
            await self._posts.clear_holding_reaction(
                session, conversation, await self._latest_customer_ts(session, conversation.id),
                key=f"draft-{message.id}")
            await session.commit()
            return conversation.id

    async def discard(self, *, message_id: int, name: str) -> int:
        async with self._sessions() as session:
            message = await self._take(session, message_id, "discarded")
            await self._close_card(session, message, texts.draft_discarded(name))
            await session.commit()
            return message.conversation_id

    async def _take(self, session: AsyncSession, message_id: int, status: str) -> Message:
        result = await session.execute(
            update(Message).where(Message.id == message_id, Message.status == "draft")
            .values(status=status).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            await session.rollback()
            raise StaleAction(texts.draft_not_pending())
        message = await session.get(Message, message_id)
        await session.refresh(message)
        return message

    async def _close_card(self, session: AsyncSession, message: Message, outcome: str) -> None:
        card = await find_post(session, draft_key(message.id))
        if card is None:
            return
        header = card.args.get("text", "")
        await self._posts.update_support_post(
            session, message.conversation_id, key=f"draft-closed:{message.id}", of_key=card.key,
            ts=card.slack_ts, text=outcome,
            blocks=outcome_blocks(header=header, text=message.text or "", outcome=outcome))
        await wake(session, message.conversation_id)

    async def _latest_customer_ts(self, session: AsyncSession, conversation_id: int) -> str | None:
        return (await session.execute(
            select(Message.slack_ts).where(Message.conversation_id == conversation_id,
                                           Message.role == "user")
            .order_by(Message.order.desc()).limit(1))).scalar_one_or_none()
