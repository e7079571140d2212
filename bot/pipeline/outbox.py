"""Sends recorded Slack posts: each outbox row is sent once, in order, and its ts recorded.

A row is written in the same transaction as the result it carries. A sender claims a row for one
attempt (so replicas and the sweep never send it twice at once) and marks it as possibly sent
before calling Slack. What Slack refuses for now (rate limits with `Retry-After`, 5xx, an outage)
is retried with back-off for `slack.retry_posts_for`, across restarts; what it refuses for good is
given up and staff are told. A retry after an attempt that may have reached Slack first looks for
the post in Slack (its message metadata carries the outbox key), so nothing is posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from bot.toolkit import metrics, texts
from bot.toolkit.posts import (
    METADATA_EVENT_TYPE,
    POST_REF,
    STREAM_ORPHAN,
    SUPPORT_THREAD,
    PostQueue,
)
from bot.toolkit.slack_api import (
    SlackGateway,
    close_web_client,
    failure_of,
    slack_error_code,
)
from storage import conversations, messages, outbox_posts
from storage.models import Conversation, HumanRequest, OutboxPost, utcnow

log = logging.getLogger(__name__)

# How long one attempt holds its post: longer than the Slack client's timeout, so a slow call
# is never overtaken; short, so a post whose sender died is retried within seconds.
ATTEMPT_HOLD = timedelta(seconds=20)
# How long a claim taken with its post (`claim_first_in`) is used: its call (15 s at most, the
# client's timeout) must still end inside the hold. A worker sends within milliseconds.
EARLY_CLAIM_USABLE_SECONDS = 2.0
# A stream's message is dated by Slack, its row by us: allow for the clocks' difference.
ORPHAN_CLOCK_SKEW_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
STAFF_NOTICE_PREFIX = "post-failed:"
# Refusals that mean the call's effect is already there.
ALREADY_DONE: dict[str, tuple[str, ...]] = {
    "reactions.add": ("already_reacted",),
    "reactions.remove": ("no_reaction",),
    "chat.delete": ("message_not_found",),
    "chat.stopStream": ("message_not_in_streaming_state",),
}


# What one attempt at a post came to.
SENT, WAIT, DROPPED = "sent", "wait", "dropped"


@dataclass(frozen=True)
class EarlyClaim:
    """A conversation's first pending post, claimed in the transaction that queued it (see
    `Outbox.claim_first_in`), with the pending posts read there, in order."""

    conversation_id: int
    posts: list[OutboxPost]
    attempt: int
    claimed_at: float  # the event loop's time of the claim


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Wait before the next attempt: exponential with jitter, never sooner than Slack asked."""
    exponential = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))
    wait = exponential * random.uniform(0.5, 1.0)
    return timedelta(seconds=max(wait, retry_after or 0.0))


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], slack: SlackGateway,
                 posts: PostQueue, *, retry_for: timedelta = timedelta(hours=6)) -> None:
        self._sessions = sessions
        self._slack = slack
        self._posts = posts
        self._retry_for = retry_for
        self._early: dict[int, EarlyClaim] = {}

    async def close(self) -> None:
        await close_web_client(self._slack.client)

    async def send_post(self, post_id: int) -> bool:
        """Send one post now (a ⏳ reaction, outside any conversation's order); False when it
        must wait (the sweep retries it)."""
        return await self._send(post_id) != WAIT

    async def send_pending(self, conversation_id: int | None) -> bool:
        """Send the conversation's pending posts in order (see `send_pending_in`)."""
        async with self._sessions() as session:
            sent = await self.send_pending_in(session, conversation_id)
            await session.commit()
        return sent

    async def send_pending_in(self, session: AsyncSession, conversation_id: int | None) -> bool:
        """Send the conversation's pending posts in order; False if one must wait (a retry
        later, or another sender holds it): the posts after it wait too, keeping the order.
        Posts queued meanwhile come with a work item (whose run sends them), except the staff
        notice of a dropped post, which is looked for here. The posts are read once; each
        post's result is committed with the next post's claim, and the last one is left in
        `session`'s open transaction for the caller to commit with its own bookkeeping (a
        crash before that commit leaves the post claimed and possibly sent: its retry looks
        in Slack first). A claim this process took early (`claim_first_in`) replaces the read
        and the first post's claim."""
        early = self._early.pop(conversation_id, None) if conversation_id is not None else None
        if early is not None and not self._usable(early):
            early = None  # the sweep may have it by now: claim afresh (it waits its hold)
        while True:
            dropped = False
            if early is not None:
                posts = early.posts  # read in a session now closed: this one takes them on
                session.add_all(posts)
            else:
                posts = await outbox_posts.pending_posts(session, conversation_id)
            for index, post in enumerate(posts):
                claimed = early.attempt if early is not None and index == 0 else None
                outcome = await self._attempt(session, post, claimed=claimed)
                if outcome == WAIT:
                    return False
                dropped = dropped or outcome == DROPPED
            early = None
            if not dropped:
                return True

    async def claim_first_in(self, session: AsyncSession, conversation_id: int
                             ) -> EarlyClaim | None:
        """Claim the conversation's first pending post in `session`'s open transaction, which
        queued it: the claim commits with the answer, one transaction fewer than claiming it
        when sending. After that commit, `keep_early_claim` hands it to this process's next
        `send_pending_in` of the conversation. None when the post cannot be sent at once
        (it waits for another post's ts, a shared channel, a retry) or another sender has it."""
        posts = await outbox_posts.pending_posts(session, conversation_id)
        if not posts or not self._sendable_at_once(posts[0]):
            return None
        attempt = await outbox_posts.claim_post(session, posts[0].id, hold=ATTEMPT_HOLD)
        if attempt is None:
            return None
        return EarlyClaim(conversation_id, posts, attempt, asyncio.get_running_loop().time())

    def keep_early_claim(self, claim: EarlyClaim | None) -> None:
        """Call once the transaction of `claim_first_in` has committed (a rolled-back claim
        must never be used)."""
        if claim is not None:
            self._early[claim.conversation_id] = claim

    def _sendable_at_once(self, post: OutboxPost) -> bool:
        """A post whose attempt cannot turn into a wait before its call (see `_attempt`)."""
        due = post.next_attempt_at is None or post.next_attempt_at <= utcnow()
        return (due and post.method != STREAM_ORPHAN
                and not str(post.args.get("ts", "")).startswith(POST_REF)
                and not self._slack.is_held(post.args.get("channel")))

    @staticmethod
    def _usable(claim: EarlyClaim) -> bool:
        """Young enough that its call ends before anyone else may try the post."""
        age = asyncio.get_running_loop().time() - claim.claimed_at
        return age < EARLY_CLAIM_USABLE_SECONDS

    async def send_due(self) -> float | None:
        """Send every conversation's due posts (the sweep: after a crash, a restart, a retry);
        returns the seconds until the next post waiting for a retry becomes due, if any."""
        async with self._sessions() as session:
            due = await outbox_posts.conversations_with_due_posts(session)
        for conversation_id in due:
            await self.send_pending(conversation_id)
        async with self._sessions() as session:
            next_at = await outbox_posts.next_post_due_at(session)
        return None if next_at is None else (next_at - utcnow()).total_seconds()

    async def send_queued(self, session: AsyncSession, post_id: int) -> bool:
        """Send a post just queued in `session`'s open transaction: the claim commits it too
        (one transaction fewer than `send_post`); False when it must wait. The post is
        committed either way."""
        outcome = await self._send_in(session, post_id)
        await session.commit()  # a post that must wait was not committed by a claim
        return outcome != WAIT

    async def _send(self, post_id: int) -> str:
        """One attempt at a post: SENT (or nothing left to do), WAIT, or DROPPED for good."""
        async with self._sessions() as session:
            outcome = await self._send_in(session, post_id)
            await session.commit()
        return outcome

    async def _send_in(self, session: AsyncSession, post_id: int) -> str:
        post = await outbox_posts.get_post(session, post_id)
        if post is None or post.status != "pending":
            return SENT
        return await self._attempt(session, post)

    async def _attempt(self, session: AsyncSession, post: OutboxPost, *,
                       claimed: int | None = None) -> str:
        """One attempt at a pending post read in `session`: claim (committed, with whatever
        the transaction held), call, record (left for the caller to commit). `claimed`: the
        attempt's number when the post was claimed already (`claim_first_in`)."""
        if claimed is None and post.next_attempt_at is not None and post.next_attempt_at > utcnow():
            return WAIT
        conversation = LazyConversation(session, post.conversation_id)
        args = await self._resolve_args(post, conversation)
        ref = str(args.get("ts", ""))
        if ref.startswith(POST_REF):
            target = (await session.execute(select(OutboxPost).where(
                OutboxPost.key == ref[len(POST_REF):]))).scalars().first()
            if target is None or target.status == "failed":
                post.status = "failed"
                post.error = "referenced post was never sent"
                await session.commit()
                return SENT
            if not target.slack_ts:
                return WAIT  # sent after its target; the sweep retries
            args["ts"] = target.slack_ts
        if self._slack.is_held(args.get("channel")):
            return WAIT  # the support channel is shared: kept until it is internal again
        if post.method == STREAM_ORPHAN and post.conversation_id:
            args["known"] = await outbox_posts.sent_ts(session, post.conversation_id)
        read_attempts = post.attempts or 0
        attempt = claimed
        if attempt is None:
            attempt = await outbox_posts.claim_post(session, post.id, hold=ATTEMPT_HOLD)
            await session.commit()
        if attempt is None:
            return WAIT  # another sender has it, or it became not due
        # Another attempt since the post was read may have reached Slack: look first then too.
        look_first = post.maybe_sent or attempt > read_attempts + 1
        set_committed_value(post, "attempts", attempt)
        try:
            ts = await self._existing_post_ts(post, args) if look_first else None
            if ts is None:
                ts = await self._call(post.method, args)
        except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
            return await self._record_failure(session, post, await conversation.get(), error)
        post.status = "sent"
        post.slack_ts = ts
        post.next_attempt_at = None
        await self._apply_on_sent(session, post, conversation, ts)
        return SENT

    @staticmethod
    async def _resolve_args(post: OutboxPost, conversation: LazyConversation) -> dict[str, Any]:
        args = dict(post.args)
        if args.get("thread_ts") == SUPPORT_THREAD:
            case = await conversation.get()
            support_ts = case.support_thread_ts if case else None
            if support_ts:
                args["thread_ts"] = support_ts
            else:
                args.pop("thread_ts")
        if post.method == "chat.postMessage":
            args["metadata"] = {"event_type": METADATA_EVENT_TYPE,
                                "event_payload": {"outbox_key": post.key}}
        return args

    async def _existing_post_ts(self, post: OutboxPost, args: dict[str, Any]) -> str | None:
        """The ts of this post if an earlier attempt reached Slack, found by its outbox key."""
        if post.method != "chat.postMessage":
            return None
        if args.get("thread_ts"):
            found = await self._slack.thread_replies(
                channel=args["channel"], ts=args["thread_ts"],
                oldest=post.created_at.timestamp() - 60)
        else:
            found = await self._slack.channel_history(
                channel=args["channel"], oldest=post.created_at.timestamp() - 60)
        for message in found:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_key") == post.key:
                return str(message["ts"])
        return None

    async def _call(self, method: str, args: dict[str, Any]) -> str | None:
        """One Web API call; raises what Slack refused, except refusals that mean "done"."""
        client = self._slack.client
        try:
            if method == "chat.postMessage":
                return str((await client.chat_postMessage(**args))["ts"])
            if method == "chat.update":
                return str((await client.chat_update(**args)).get("ts", args.get("ts")))
            if method == "chat.delete":
                await client.chat_delete(channel=args["channel"], ts=args["ts"])
                return str(args["ts"])
            if method == "chat.stopStream":  # ends an answer streamed while written
                await client.chat_stopStream(**args)
                return str(args["ts"])
            if method == STREAM_ORPHAN:
                await self._remove_orphan_streams(args)
                return None
            if method == "reactions.add":
                await client.reactions_add(channel=args["channel"], timestamp=args["ts"],
                                           name=args["name"])
                return str(args["ts"])  # the message it is on (a removal refers to it)
            if method == "reactions.remove":
                await client.reactions_remove(channel=args["channel"], timestamp=args["ts"],
                                              name=args["name"])
                return None
        except SlackApiError as error:
            if slack_error_code(error) in ALREADY_DONE.get(method, ()):
                return (str(args.get("ts"))
                        if method in ("chat.delete", "reactions.add", "chat.stopStream")
                        else None)
            raise
        raise ValueError(f"outbox: unsupported method {method}")

    async def _remove_orphan_streams(self, args: dict[str, Any]) -> None:
        """Stop and delete the bot's messages in the thread that no recorded post accounts for
        and that came after a stream's row: a stream started while its process died."""
        bot_user, _ = await self._slack.identity()
        since = args["after"] - ORPHAN_CLOCK_SKEW_SECONDS
        for message in await self._slack.thread_replies(channel=args["channel"],
                                                         ts=args["thread_ts"], oldest=since):
            ts = str(message.get("ts", ""))
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if (message.get("user") != bot_user or ts in args["known"]
                    or ts == args["thread_ts"] or payload.get("outbox_key")
                    or float(ts) < since):
                continue
            log.warning("removing a streamed message whose start was never recorded (%s)", ts)
            with contextlib.suppress(SlackApiError):
                await self._slack.client.chat_stopStream(channel=args["channel"], ts=ts)
            try:
                await self._slack.client.chat_delete(channel=args["channel"], ts=ts)
            except SlackApiError as error:
                if slack_error_code(error) != "message_not_found":
                    raise

    @staticmethod
    async def _apply_on_sent(session: AsyncSession, post: OutboxPost,
                             conversation: LazyConversation, ts: str | None) -> None:
        on_sent = post.on_sent or {}
        if not ts:
            return
        if on_sent.get("support_thread"):
            case = await conversation.get()
            if case and not case.support_thread_ts:
                case.support_thread_ts = ts
        if message_id := on_sent.get("message_id"):
            first = await messages.record_first_ts(session, message_id, ts)
            if first is not None:
                metrics.answer_sent(first)  # its first post reached the thread
        for request_id in on_sent.get("human_request_ids", []):
            request = await session.get(HumanRequest, request_id)
            if request and not request.support_ts:
                request.support_ts = ts

    async def _record_failure(self, session: AsyncSession, post: OutboxPost,
                              conversation: Conversation | None, error: Exception) -> str:
        failure = failure_of(error)
        post.error = failure.code
        expired = utcnow() - post.created_at > self._retry_for
        give_up = failure.permanent or expired
        if give_up:
            post.status = "failed"
            post.next_attempt_at = None
        else:
            post.next_attempt_at = utcnow() + backoff(post.attempts, failure.retry_after)
            post.maybe_sent = failure.may_have_reached_slack
        log.warning("outbox post %s (%s) attempt %s failed: %s%s", post.id, post.method,
                    post.attempts, failure.code,
                    " (giving up)" if give_up else f" (retry at {post.next_attempt_at:%H:%M:%S})")
        if give_up and not post.key.startswith(STAFF_NOTICE_PREFIX):
            await self._queue_staff_notice(session, post, conversation, failure.code, expired)
        await session.commit()
        return DROPPED if give_up else WAIT  # a dropped post must not block the ones after it

    async def _queue_staff_notice(self, session: AsyncSession, post: OutboxPost,
                                  conversation: Conversation | None, code: str,
                                  expired: bool) -> None:
        """Tell staff, through the outbox itself (so the notice survives Slack's hiccups too)."""
        reason = texts.slack_post_expired(code, self._retry_for) if expired else code
        key = f"{STAFF_NOTICE_PREFIX}{post.key}"
        if conversation is None:
            await self._posts.to_support_channel(
                session, texts.slack_post_failed_staff(None, reason), key=key)
        else:
            case_number = await conversations.number_case(session, conversation)
            await self._posts.to_case_thread(
                session, conversation, texts.slack_post_failed_staff(case_number, reason),
                key=key)


class LazyConversation:
    """A post's conversation, read only when an attempt needs it (most posts never do)."""

    def __init__(self, session: AsyncSession, conversation_id: int | None) -> None:
        self._session = session
        self._id = conversation_id
        self._read = conversation_id is None
        self._conversation: Conversation | None = None

    async def get(self) -> Conversation | None:
        if not self._read:
            self._conversation = await self._session.get(Conversation, self._id)
            self._read = True
        return self._conversation
