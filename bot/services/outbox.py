"""Sends recorded Slack posts: each outbox row is sent once, in order, and its ts recorded.

A row is written in the same transaction as the result it carries. Sending it after a crash
first looks for the post in the thread (its Slack message metadata carries the outbox key), so a
crash between Slack's accept and our record never posts twice.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.slack.client import SlackGateway, is_permanent, slack_error_code
from storage import work
from storage.models import Conversation, HumanRequest, Message, OutboxPost

log = logging.getLogger(__name__)

SUPPORT_THREAD = "$support_thread"
POST_REF = "$post:"  # `ts` of another outbox post, known once that one is sent


def post_ref(key: str) -> str:
    """Refer to the ts of the post queued under `key` (sent earlier, in order)."""
    return POST_REF + key
METADATA_EVENT_TYPE = "support_bot_post"
MAX_ATTEMPTS = 5


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], slack: SlackGateway,
                 support_channel: str) -> None:
        self._sessions = sessions
        self._slack = slack
        self._support_channel = support_channel

    async def send_pending(self, conversation_id: int | None) -> bool:
        """Send the conversation's pending posts in order; False if one must be retried later."""
        async with self._sessions() as session:
            post_ids = [post.id for post in await work.pending_posts(session, conversation_id)]
        for post_id in post_ids:
            if not await self._send(post_id):
                return False
        return True

    async def _send(self, post_id: int) -> bool:
        async with self._sessions() as session:
            post = await work.get_post(session, post_id)
            if post is None or post.status != "pending":
                return True
            conversation = (await session.get(Conversation, post.conversation_id)
                            if post.conversation_id else None)
            args = self._resolve_args(post, conversation)
            ref = str(args.get("ts", ""))
            if ref.startswith(POST_REF):
                target = (await session.execute(select(OutboxPost).where(
                    OutboxPost.key == ref[len(POST_REF):]))).scalars().first()
                if target is None or target.status == "failed":
                    post.status = "failed"
                    post.error = "referenced post was never sent"
                    await session.commit()
                    return True
                if not target.slack_ts:
                    return False  # sent after its target; the sweep retries
                args["ts"] = target.slack_ts
            if self._slack.is_held(args.get("channel")):
                return False  # the support channel is shared: kept until it is internal again
            try:
                ts = await self._existing_post_ts(post, args) if post.attempts else None
                if ts is None:
                    ts = await self._call(post.method, args)
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                return await self._record_failure(session, post, conversation, error)
            post.status = "sent"
            post.slack_ts = ts
            await self._apply_on_sent(session, post, conversation, ts)
            await session.commit()
            return True

    def _resolve_args(self, post: OutboxPost, conversation: Conversation | None) -> dict[str, Any]:
        args = dict(post.args)
        if args.get("thread_ts") == SUPPORT_THREAD:
            support_ts = conversation.support_thread_ts if conversation else None
            if support_ts:
                args["thread_ts"] = support_ts
            else:
                args.pop("thread_ts")
        if post.method == "chat.postMessage":
            args["metadata"] = {"event_type": METADATA_EVENT_TYPE,
                                "event_payload": {"outbox_key": post.key}}
        return args

    async def _existing_post_ts(self, post: OutboxPost, args: dict[str, Any]) -> str | None:
        if post.method != "chat.postMessage" or not args.get("thread_ts"):
            return None
        replies = await self._slack.thread_replies(channel=args["channel"], ts=args["thread_ts"])
        for message in replies:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_key") == post.key:
                return str(message["ts"])
        return None

    async def _call(self, method: str, args: dict[str, Any]) -> str | None:
        if method == "chat.postMessage":
            return str((await self._slack.post_message(**args))["ts"])
        if method == "chat.update":
            return str((await self._slack.update_message(**args)).get("ts", args.get("ts")))
        if method == "chat.delete":
            await self._slack.client.chat_delete(channel=args["channel"], ts=args["ts"])
            return str(args["ts"])
        if method == "reactions.add":
            await self._slack.add_reaction(channel=args["channel"], ts=args["ts"],
                                           name=args["name"])
            return None
        if method == "reactions.remove":
            await self._slack.remove_reaction(channel=args["channel"], ts=args["ts"],
                                              name=args["name"])
            return None
        raise ValueError(f"outbox: unsupported method {method}")

    async def _apply_on_sent(self, session: AsyncSession, post: OutboxPost,
                             conversation: Conversation | None, ts: str | None) -> None:
        on_sent = post.on_sent or {}
        if not ts:
            return
        if on_sent.get("support_thread") and conversation and not conversation.support_thread_ts:
            conversation.support_thread_ts = ts
        if message_id := on_sent.get("message_id"):
            message = await session.get(Message, message_id)
            if message and not message.slack_ts:
                message.slack_ts = ts
        for request_id in on_sent.get("human_request_ids", []):
            request = await session.get(HumanRequest, request_id)
            if request and not request.support_ts:
                request.support_ts = ts

    async def _record_failure(self, session: AsyncSession, post: OutboxPost,
                              conversation: Conversation | None, error: Exception) -> bool:
        code = slack_error_code(error) if isinstance(error, SlackApiError) else repr(error)
        post.attempts += 1
        post.error = code
        permanent = is_permanent(error) or post.attempts >= MAX_ATTEMPTS
        log.warning("outbox post %s (%s) failed: %s%s", post.id, post.method, code,
                    " (giving up)" if permanent else "")
        if permanent:
            post.status = "failed"
        await session.commit()
        if permanent:
            await self._tell_staff(conversation, code)
        return permanent  # a dropped post must not block the ones after it

    async def _tell_staff(self, conversation: Conversation | None, code: str) -> None:
        try:
            await self._slack.post_message(
                channel=self._support_channel,
                thread_ts=conversation.support_thread_ts if conversation else None,
                text=texts.slack_post_failed_staff(
                    conversation.case_number if conversation else None, code),
            )
        except Exception as error:  # noqa: BLE001
            log.error("could not tell staff about a failed post: %s", error)
