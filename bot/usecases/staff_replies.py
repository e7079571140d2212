"""Staff replies in a case's support thread when no question is pending: relayed to the
customer while a human owns the case, kept internal with the note prefix, and otherwise held
until the staff member says what they meant. Edits and deletions follow the relayed copy."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.toolkit import texts
from bot.toolkit.blocks import staff_reply_choice_blocks
from bot.toolkit.posts import PostQueue, find_post, wake
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.handoff import Handoff
from bot.usecases.people import People
from bot.usecases.relay import relay_key, relay_to_customer
from storage import conversations
from storage.models import Conversation, Message

log = logging.getLogger(__name__)


class StaffReplies:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 slack: SlackGateway, people: People, handoff: Handoff,
                 posts: PostQueue) -> None:
        self._config = config
        self._posts = posts
        self._sessions = sessions
        self._slack = slack
        self._people = people
        self._handoff = handoff
        self._support = config.channels.support

    def is_note(self, text: str) -> bool:
        prefix = self._config.staff.note_prefix
        return bool(prefix) and text.lstrip().startswith(prefix)

    async def on_reply(self, conversation: Conversation, event: dict[str, Any],
                       name: str) -> int | None:
        """Handle a staff reply; the conversation id when work was queued."""
        text = event.get("text", "")
        user_id = event["user"]
        if self.is_note(text):
            return None
        if conversation.assignee == "bot":
            value = json.dumps({"c": conversation.id, "ts": event["ts"],
                                "t": event["thread_ts"]})
            await self._slack.post_ephemeral(
                channel=event["channel"], user=user_id, thread_ts=event["thread_ts"],
                text=texts.staff_reply_what_did_you_mean(conversation.case_number),
                blocks=staff_reply_choice_blocks(
                    prompt=texts.staff_reply_what_did_you_mean(
                        conversation.case_number), value=value))
            return None
        if conversation.assignee == "humans":
            await self._handoff.claim_unowned(conversation.id, user_id=user_id,
                                              reason="replied in the support thread")
        return await self.relay(conversation.id, text=text, user_id=user_id, name=name,
                                support_ts=event["ts"])

    async def relay(self, conversation_id: int, *, text: str, user_id: str, name: str,
                    support_ts: str) -> int:
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            key = relay_key(self._support, support_ts)
            if await find_post(session, key) is not None:
                return conversation_id  # Slack's retry of a reply already relayed
            await relay_to_customer(session, self._posts, conversation=conversation, text=text,
                                    user_id=user_id, name=name, key=key,
                                    icon_url=await self._people.avatar(user_id),
                                    extra_meta={"support_ts": support_ts})
            await session.commit()
        return conversation_id

    async def original_text(self, *, thread_ts: str, ts: str) -> str | None:
        replies = await self._slack.thread_replies(channel=self._support, ts=thread_ts)
        found = next((m for m in replies if m.get("ts") == ts), None)
        return found.get("text") if found else None

    async def on_edit_or_delete(self, event: dict[str, Any]) -> int | None:
        """Follow an edit or deletion of a relayed reply onto the customer's copy."""
        deleted = event.get("subtype") == "message_deleted"
        ts = event.get("deleted_ts") if deleted else (event.get("message") or {}).get("ts")
        if not ts:
            return None
        async with self._sessions() as session:
            post = await find_post(session, relay_key(self._support, ts))
            if post is None or post.status != "sent" or not post.slack_ts:
                return None
            message = await session.get(Message, (post.on_sent or {}).get("message_id"))
            channel, conversation_id = post.args["channel"], post.conversation_id
            suffix = f"{event.get('event_ts') or event.get('ts')}"
            if deleted:
                await self._posts.delete_post(session, conversation_id, key=f"relay-delete:{ts}",
                                              channel=channel, ts=post.slack_ts)
                if message is not None:
                    message.status = "deleted"
            else:
                new_text = (event.get("message") or {}).get("text", "")
                await self._posts.update_post(session, conversation_id,
                                              key=f"relay-edit:{ts}:{suffix}", channel=channel,
                                              ts=post.slack_ts, text=new_text)
                if message is not None:
                    message.text = new_text
            await wake(session, conversation_id)
            await session.commit()
            return post.conversation_id
