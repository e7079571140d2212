"""The outbox API: every post the bot makes in Slack is queued here, in the caller's transaction,
under an idempotency key; `bot.pipeline.outbox` sends it later, exactly once and in order.

Where a post goes is named, not spelled out: the customer's thread, the case's thread in the
support channel (opened by the case card), the support channel itself, an update of an earlier
post. A key that was queued before queues nothing (posts are idempotent on their keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.toolkit import texts
from bot.toolkit.blocks import answer_blocks, case_card_blocks, feedback_block
from bot.toolkit.mrkdwn import neutralise_mentions, split_message, to_mrkdwn
from storage import conversations, outbox_posts, work_items
from storage.models import Conversation, Message, OutboxPost

if TYPE_CHECKING:
    from bot.config import AccountSettings

SUPPORT_THREAD = "$support_thread"  # the case's support thread, known once its card is sent
POST_REF = "$post:"  # `ts` of another outbox post, known once that one is sent
METADATA_EVENT_TYPE = "support_bot_post"
# The longest answer one streamed message holds: Slack takes at most 12,000 characters of
# markdown_text per call; a longer answer is posted in parts instead.
STREAM_MAX_CHARS = 12_000
SECTION_MAX_CHARS = 3_000  # a section block's text; the part carrying the feedback buttons

Blocks = list[dict[str, Any]]


def post_ref(key: str) -> str:
    """Refer to the ts of the post queued under `key` (sent earlier, in order)."""
    return POST_REF + key


def case_thread_key(conversation: Conversation) -> str:
    """The key of the case card, the post that opens the case's support thread."""
    return f"case:{conversation.id}"


def stream_key(message_id: int) -> str:
    """The key of the `chat.startStream` row of a model answer streamed while written."""
    return f"stream:{message_id}"


@dataclass(frozen=True)
class Streamed:
    """What a live stream showed of an answer (`pipeline.streaming`): its row's key, the text
    Slack has, and whether that text is known exactly (no append of unknown outcome)."""

    key: str
    appended: str
    clean: bool
    ts: str | None = None  # the stream's ts, as Slack gave it (its row may have missed it)


# The outbox's pseudo-method that finds a stream whose start was never recorded and removes it.
STREAM_ORPHAN = "stream.orphan"


def holding_key(conversation_id: int, customer_ts: str) -> str:
    """The key of the ⏳ reaction on one customer message (or of its "answered first" marker)."""
    return f"hold:{conversation_id}:{customer_ts}"


async def find_post(session: AsyncSession, key: str) -> OutboxPost | None:
    return await outbox_posts.find_post(session, key)


async def post_exists(session: AsyncSession, key: str) -> bool:
    return await outbox_posts.find_post(session, key) is not None


async def wake(session: AsyncSession, conversation_id: int) -> None:
    """Have a worker send the conversation's queued posts (for posts queued outside its work)."""
    await work_items.add_work(session, conversation_id=conversation_id, kind="flush")


@dataclass(frozen=True)
class PostQueue:
    """Queues posts; knows the support channel so that callers never spell it out."""

    support_channel: str
    escalation_channel: str | None = None
    # Customer channel id -> its account (app.yaml `accounts`), shown on case cards.
    accounts: Mapping[str, AccountSettings] = field(default_factory=dict)

    def account_for(self, channel_id: str | None) -> AccountSettings | None:
        return self.accounts.get(channel_id) if channel_id else None

    # the customer's thread ---------------------------------------------------------------------
    async def to_customer(self, session: AsyncSession, conversation: Conversation, text: str, *,
                          key: str, message: Message | None = None,
                          username: str | None = None, icon_url: str | None = None,
                          blocks: Blocks | None = None) -> None:
        """One post in the customer's thread, as it is (staff words, the bot's notes)."""
        args: dict[str, Any] = {"channel": conversation.channel_id,
                                "thread_ts": conversation.thread_ts, "text": text}
        if blocks:
            args["blocks"] = blocks
        if username:
            args["username"] = username
        if icon_url:
            args["icon_url"] = icon_url
        await outbox_posts.add_post(
            session, key=key, method="chat.postMessage", conversation_id=conversation.id,
            args=args, on_sent={"message_id": message.id} if message else None)

    async def answer_customer(self, session: AsyncSession, conversation: Conversation,
                              text: str, *, key: str, message: Message | None = None,
                              streamed: Streamed | None = None) -> None:
        """The model's answer, with the 👍/👎 feedback buttons when it is one (`message`).
        The model may echo the customer's words, so its mentions are neutralised: they ping
        nobody.

        Streamed while written (`streamed`, clean, short enough): the stream is ended with the
        rest of the text and the buttons. Otherwise as mrkdwn, split into as many posts as Slack
        needs, in order; a stream this process can no longer vouch for (a crash mid-stream, an
        append of unknown outcome) is stopped and its message replaced by the first part, so
        the customer never sees two answers; other abandoned streams are stopped and deleted."""
        message_id = message.id if message else None
        streams = await outbox_posts.open_streams(session, conversation.id)
        own = next((s for s in streams if streamed and s.key == streamed.key), None)
        if own is not None and streamed is not None and not own.slack_ts and streamed.ts:
            own.slack_ts = streamed.ts  # started, but its ts was not recorded
        markdown = neutralise_mentions(text)
        if (own is not None and streamed is not None and streamed.clean and own.slack_ts
                and len(markdown) <= STREAM_MAX_CHARS
                and (markdown.startswith(streamed.appended)
                     # the stored answer lost only trailing space (a citation tag removed)
                     or markdown == streamed.appended.rstrip())):
            for stale in streams:
                if stale is not own:
                    await self._end_stream(session, conversation, stale, key=key, delete=True)
            own.status = "sent"
            args: dict[str, Any] = {"channel": conversation.channel_id, "ts": own.slack_ts}
            if rest := markdown[len(streamed.appended):]:
                args["markdown_text"] = rest
            if message_id is not None:
                args["blocks"] = [feedback_block(message_id)]
            await outbox_posts.add_post(
                session, key=f"{key}:0", method="chat.stopStream",
                conversation_id=conversation.id, args=args,
                on_sent={"message_id": message_id} if message_id else None)
            return
        chunks = split_message(neutralise_mentions(to_mrkdwn(text)))
        if message_id is not None and len(chunks[-1]) > SECTION_MAX_CHARS:
            chunks = chunks[:-1] + split_message(chunks[-1], SECTION_MAX_CHARS)
        adopted = next((s for s in ([own] if own else []) + streams if s.slack_ts), None)
        for stale in streams:
            if stale is not adopted:
                await self._end_stream(session, conversation, stale, key=key, delete=True)
        for index, chunk in enumerate(chunks):
            blocks = answer_blocks(chunk, message_id) if index == len(chunks) - 1 else None
            if index == 0 and adopted is not None:
                await self._end_stream(session, conversation, adopted, key=key, delete=False)
                args = {"channel": conversation.channel_id, "ts": adopted.slack_ts,
                        "text": chunk}
                if blocks:
                    args["blocks"] = blocks
                await outbox_posts.add_post(
                    session, key=f"{key}:{index}", method="chat.update",
                    conversation_id=conversation.id, args=args,
                    on_sent={"message_id": message_id} if message_id else None)
                continue
            await self.to_customer(session, conversation, chunk, key=f"{key}:{index}",
                                   message=message, blocks=blocks)

    async def close_streams(self, session: AsyncSession, conversation: Conversation, *,
                            key: str) -> None:
        """End every stream of the conversation still open and delete its partial message (the
        bot gave up on the answer it was writing)."""
        for stale in await outbox_posts.open_streams(session, conversation.id):
            await self._end_stream(session, conversation, stale, key=key, delete=True)

    async def _end_stream(self, session: AsyncSession, conversation: Conversation,
                          stream: OutboxPost, *, key: str, delete: bool) -> None:
        """Queue the stop of a stream (then, if `delete`, the deletion of its message)."""
        stream.status = "sent" if stream.slack_ts else "skipped"
        if not stream.slack_ts:
            # Its start's outcome is unknown (the process died while Slack answered): if a
            # message was started, the outbox finds it in the thread and removes it.
            await outbox_posts.add_post(
                session, key=f"{key}:orphan:{stream.id}", method=STREAM_ORPHAN,
                conversation_id=conversation.id,
                args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                      "after": stream.created_at.timestamp()})
            return
        where = {"channel": conversation.channel_id, "ts": stream.slack_ts}
        await outbox_posts.add_post(session, key=f"{key}:stop:{stream.id}",
                                    method="chat.stopStream", conversation_id=conversation.id,
                                    args=dict(where))
        if delete:
            await outbox_posts.add_post(session, key=f"{key}:drop:{stream.id}",
                                        method="chat.delete", conversation_id=conversation.id,
                                        args=dict(where))

    async def put_holding_reaction(self, session: AsyncSession, *, conversation_id: int,
                                   channel: str, customer_ts: str) -> int | None:
        """Queue the ⏳ reaction on a customer's message that has no answer yet; the post's id,
        or None when its answer came first (then no ⏳ ever comes). The post is outside the
        conversation's queue so that it never waits behind the answer it announces."""
        return await outbox_posts.add_post_once(
            session, key=holding_key(conversation_id, customer_ts), method="reactions.add",
            args={"channel": channel, "ts": customer_ts, "name": texts.holding_reaction()})

    async def clear_holding_reaction(self, session: AsyncSession, conversation: Conversation,
                                     customer_ts: str | None, *, key: str) -> None:
        """The customer has an answer: remove the ⏳ from their message if it was put there; if
        not yet, leave a marker so that it never is."""
        if not customer_ts:
            return
        holding = holding_key(conversation.id, customer_ts)
        if await outbox_posts.add_post_once(
                session, key=holding, method="reactions.add", status="skipped",
                args={"channel": conversation.channel_id, "ts": customer_ts,
                      "name": texts.holding_reaction()}) is not None:
            return  # answered before the ⏳: nothing to take away
        put = await outbox_posts.find_post(session, holding)
        if put is None or put.status == "skipped":
            return
        # Removed only after it was added (the removal refers to the addition's post).
        await outbox_posts.add_post(
            session, key=f"unreact:{conversation.id}:{customer_ts}:{key}",
            method="reactions.remove", conversation_id=conversation.id,
            args={"channel": conversation.channel_id, "ts": post_ref(holding),
                  "name": texts.holding_reaction()})

    # the support channel -----------------------------------------------------------------------
    async def open_case_thread(self, session: AsyncSession, conversation: Conversation, *,
                               reason: str, excerpt: list[str] | None = None) -> None:
        """Queue the case card that opens the support thread, unless the case has one."""
        key = case_thread_key(conversation)
        if conversation.support_thread_ts or await post_exists(session, key):
            return
        await conversations.number_case(session, conversation)
        await outbox_posts.add_post(
            session, key=key, method="chat.postMessage", conversation_id=conversation.id,
            on_sent={"support_thread": True},
            args={"channel": self.support_channel,
                  "text": f"{texts.case_label(conversation.case_number)}: {reason}",
                  "blocks": case_card_blocks(
                      case_number=conversation.case_number,
                      customer_name=conversation.customer_name or "Customer",
                      channel_id=conversation.channel_id, thread_ts=conversation.thread_ts,
                      reason=reason, excerpt=excerpt or [],
                      drawn_for=conversation.assignee,
                      account=self.account_for(conversation.channel_id))})

    async def to_case_thread(self, session: AsyncSession, conversation: Conversation,
                             text: str, *, key: str, blocks: Blocks | None = None,
                             on_sent: dict[str, Any] | None = None) -> None:
        """A post in the case's support thread (or at the top of the support channel while the
        case has no thread yet: that post then opens it when `on_sent` says so)."""
        args: dict[str, Any] = {"channel": self.support_channel, "thread_ts": SUPPORT_THREAD,
                                "text": text}
        if blocks:
            args["blocks"] = blocks
        await outbox_posts.add_post(session, key=key, method="chat.postMessage",
                                    conversation_id=conversation.id, args=args, on_sent=on_sent)

    async def note_in_case_thread(self, session: AsyncSession, conversation: Conversation,
                                  text: str, *, key: str, blocks: Blocks | None = None) -> None:
        """A note in the case's thread, queued once per key, sent by a worker soon."""
        if await post_exists(session, key):
            return
        await self.to_case_thread(session, conversation, text, key=key, blocks=blocks)
        await wake(session, conversation.id)

    async def to_support_channel(self, session: AsyncSession, text: str, *, key: str,
                                 conversation: Conversation | None = None) -> None:
        """A top-level post in the support channel (a failure staff must see at once)."""
        await outbox_posts.add_post(
            session, key=key, method="chat.postMessage",
            conversation_id=conversation.id if conversation else None,
            args={"channel": self.support_channel, "text": text})

    async def to_escalation_channel(self, session: AsyncSession, conversation: Conversation,
                                    text: str, *, key: str) -> None:
        await outbox_posts.add_post(
            session, key=key, method="chat.postMessage", conversation_id=conversation.id,
            args={"channel": self.escalation_channel or self.support_channel, "text": text})

    # changes to earlier posts ------------------------------------------------------------------
    async def update_support_post(self, session: AsyncSession, conversation_id: int, *,
                                  key: str, of_key: str, ts: str | None, text: str,
                                  blocks: Blocks | None = None) -> None:
        """Replace a post of the support channel: by its ts, or once the post queued under
        `of_key` is sent."""
        args: dict[str, Any] = {"channel": self.support_channel, "ts": ts or post_ref(of_key),
                                "text": text}
        if blocks:
            args["blocks"] = blocks
        await outbox_posts.add_post(session, key=key, method="chat.update",
                                    conversation_id=conversation_id, args=args)

    async def update_customer_post(self, session: AsyncSession, conversation: Conversation, *,
                                   key: str, of_key: str, text: str,
                                   blocks: Blocks | None = None) -> None:
        """Replace a post of the customer's thread once the post queued under `of_key` is sent."""
        args: dict[str, Any] = {"channel": conversation.channel_id, "ts": post_ref(of_key),
                                "text": text}
        if blocks:
            args["blocks"] = blocks
        await outbox_posts.add_post(session, key=key, method="chat.update",
                                    conversation_id=conversation.id, args=args)

    async def update_post(self, session: AsyncSession, conversation_id: int, *, key: str,
                          channel: str, ts: str, text: str) -> None:
        await outbox_posts.add_post(session, key=key, method="chat.update",
                                    conversation_id=conversation_id,
                                    args={"channel": channel, "ts": ts, "text": text})

    async def delete_post(self, session: AsyncSession, conversation_id: int, *, key: str,
                          channel: str, ts: str) -> None:
        await outbox_posts.add_post(session, key=key, method="chat.delete",
                                    conversation_id=conversation_id,
                                    args={"channel": channel, "ts": ts})
