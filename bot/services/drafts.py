"""Draft mode: the model's answers wait in the case thread until a person sends them."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts_handoff
from bot.errors import StaleAction
from bot.services.case_thread import ensure_case_thread, post_exists, post_in_case_thread
from bot.services.customer_thread import queue_answer, queue_clear_holding
from bot.services.outbox import post_ref
from bot.slack.blocks import draft_blocks, outcome_blocks
from bot.slack.mrkdwn import to_mrkdwn
from storage import conversations, work
from storage.models import Conversation, Message, OutboxPost, utcnow


def draft_key(message_id: int) -> str:
    return f"draft:{message_id}"


class Drafts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], support_channel: str) -> None:
        self._sessions = sessions
        self._support = support_channel

    async def propose(self, session: AsyncSession, conversation: Conversation,
                      message: Message, excerpt: list[str]) -> None:
        """Hold a model answer as a draft card with Send, Edit and Discard."""
        message.status = "draft"
        case_number = conversation.case_number or conversation.id
        await ensure_case_thread(session, conversation, support_channel=self._support,
                                 reason="draft mode: answers wait for approval",
                                 excerpt=excerpt)
        await post_in_case_thread(
            session, conversation, support_channel=self._support, key=draft_key(message.id),
            text=texts_handoff.draft_header(case_number),
            blocks=draft_blocks(message_id=message.id,
                                header=texts_handoff.draft_header(case_number),
                                text=to_mrkdwn(message.text or "")))
        notice_key = f"on-it:{conversation.id}"
        if not await post_exists(session, notice_key):
            await work.add_post(
                session, key=notice_key, method="chat.postMessage",
                conversation_id=conversation.id,
                args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                      "text": texts_handoff.customer_team_is_on_it()})

    async def text_of(self, message_id: int) -> str:
        async with self._sessions() as session:
            message = await session.get(Message, message_id)
            if message is None or message.status != "draft":
                raise StaleAction(texts_handoff.draft_not_pending())
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
            await queue_answer(session, conversation, message.text or "",
                               key=f"answer:{message.id}", message=message)
            await self._close_card(session, message, texts_handoff.draft_sent(name, edited))
            await queue_clear_holding(
                session, conversation, await self._latest_customer_ts(session, conversation.id),
                key=f"draft-{message.id}")
            await session.commit()
            return conversation.id

    async def discard(self, *, message_id: int, name: str) -> int:
        async with self._sessions() as session:
            message = await self._take(session, message_id, "discarded")
            await self._close_card(session, message, texts_handoff.draft_discarded(name))
            await session.commit()
            return message.conversation_id

    async def _take(self, session: AsyncSession, message_id: int, status: str) -> Message:
        result = await session.execute(
            update(Message).where(Message.id == message_id, Message.status == "draft")
            .values(status=status).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            await session.rollback()
            raise StaleAction(texts_handoff.draft_not_pending())
        message = await session.get(Message, message_id)
        await session.refresh(message)
        return message

    async def _close_card(self, session: AsyncSession, message: Message, outcome: str) -> None:
        card = (await session.execute(select(OutboxPost).where(
            OutboxPost.key == draft_key(message.id)))).scalars().first()
        if card is None:
            return
        header = card.args.get("text", "")
        await work.add_post(
            session, key=f"draft-closed:{message.id}", method="chat.update",
            conversation_id=message.conversation_id,
            args={"channel": self._support, "ts": card.slack_ts or post_ref(card.key),
                  "text": outcome,
                  "blocks": outcome_blocks(header=header, text=message.text or "",
                                           outcome=outcome)})
        await work.add_work(session, conversation_id=message.conversation_id, kind="flush")

    async def _latest_customer_ts(self, session: AsyncSession, conversation_id: int) -> str | None:
        return (await session.execute(
            select(Message.slack_ts).where(Message.conversation_id == conversation_id,
                                           Message.role == "user")
            .order_by(Message.order.desc()).limit(1))).scalar_one_or_none()
