"""The model's answer streamed into the customer's thread while it is written (Slack's
`chat.startStream` / `appendStream`), on top of the outbox; and the thinking status.

A stream is an outbox row (`stream:<message id>`, method `chat.startStream`, status
`streaming`) written before Slack is called, with the stream's ts recorded once Slack gave it.
Appends are direct calls, buffered (one per `slack.stream_buffer_chars` of text, cut at a space),
and touch no database row. The answer itself is still stored whole and queued by
`PostQueue.answer_customer`, which ends the stream through the outbox (`chat.stopStream` with the
rest of the text and the feedback buttons), or, when this process can no longer tell what Slack
shows (a crash mid-stream, an append that may or may not have landed), stops it and replaces its
text with `chat.update`. Streaming refused (an older workspace, a channel without it, a rate
limit on the start) costs nothing: the answer is posted whole, once. See docs/streaming.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SlackSettings
from bot.toolkit import texts
from bot.toolkit.ids import KNOWLEDGE_TAG
from bot.toolkit.mrkdwn import neutralise_mentions
from bot.toolkit.posts import STREAM_MAX_CHARS, Streamed, stream_key
from bot.toolkit.slack_api import SlackGateway, failure_of, slack_error_code
from storage import outbox_posts
from storage.models import Conversation

log = logging.getLogger(__name__)


class LiveStream:
    """One answer being streamed; `feed` the model's text, then `finish`."""

    def __init__(self, streams: AnswerStreams, conversation: Conversation, message_id: int,
                 on_start: Callable[[], None] | None = None) -> None:
        self._streams = streams
        self._on_start = on_start
        self._channel = conversation.channel_id
        self._thread_ts = conversation.thread_ts
        self._conversation_id = conversation.id
        self._recipient = (conversation.customer_user_id, conversation.team_id)
        self._key = stream_key(message_id)
        self._buffer = ""
        self._appended = ""  # what Slack shows, exactly, while `_clean`
        self._ts: str | None = None
        self._clean = True
        self._stopped = False  # no more calls: refused, paused by a rate limit, or too long
        self._started = False

    async def feed(self, piece: str) -> None:
        """More answer text; sent when enough has gathered (no call per token)."""
        if self._stopped:
            return
        self._buffer += piece
        if len(self._buffer) >= self._streams.buffer_chars:
            try:
                await self._flush()
            except Exception:  # a database hiccup must not fail the model call: no stream
                log.exception("streaming to %s stopped", self._channel)
                self._stopped = True

    async def _flush(self) -> None:
        # Nothing from a knowledge citation on (nor the space before it) is streamed: the
        # stored answer has it removed, and what Slack shows must stay a prefix of it.
        tag = self._buffer.find(KNOWLEDGE_TAG)
        sendable = self._buffer if tag < 0 else self._buffer[:tag].rstrip()
        cut = max(sendable.rfind(" "), sendable.rfind("\n"))
        if cut <= 0:
            if tag >= 0 or len(self._buffer) < 4 * self._streams.buffer_chars:
                return  # a very long word: wait for its end (a mention is never cut)
            cut = len(self._buffer) - 1
        text, self._buffer = self._buffer[:cut + 1], self._buffer[cut + 1:]
        text = neutralise_mentions(text)
        if len(self._appended) + len(text) > STREAM_MAX_CHARS:
            self._stopped = True  # the stop (or a replacement) carries the rest
            self._buffer = ""
            return
        if not self._started:
            await self._start(text)
        else:
            await self._append(text)

    async def _start(self, text: str) -> None:
        self._started = True
        if self._on_start is not None:
            self._on_start()  # the answer is showing: no thinking status now
        streams = self._streams
        async with streams.sessions() as session:
            if await outbox_posts.has_unfinished_posts(session, self._conversation_id):
                self._stopped = True  # earlier posts go first: the answer waits its turn
                return
            args: dict[str, Any] = {"channel": self._channel, "thread_ts": self._thread_ts}
            user, team = self._recipient
            if user and team:
                args.update(recipient_user_id=user, recipient_team_id=team)
            row_id = await outbox_posts.add_post(
                session, key=self._key, method="chat.startStream", args=args,
                conversation_id=self._conversation_id, status="streaming")
            await session.commit()
        try:
            response = await streams.slack.client.chat_startStream(**args, markdown_text=text)
        except Exception as error:  # noqa: BLE001 - refused or failed: the answer goes whole
            failure = failure_of(error)
            log.info("no streaming in %s (%s): the answer is posted whole",
                     self._channel, failure.code)
            self._stopped = True
            await self._record_start(row_id, None, failure.code)
            return
        self._ts = str(response["ts"])
        self._appended = text
        await self._record_start(row_id, self._ts, None)

    async def _record_start(self, row_id: int, ts: str | None, error: str | None) -> None:
        async with self._streams.sessions() as session:
            await outbox_posts.record_stream_start(session, row_id, ts=ts, error=error)
            await session.commit()

    async def _append(self, text: str) -> None:
        if self._ts is None:
            self._stopped = True
            return
        try:
            await self._streams.slack.client.chat_appendStream(
                channel=self._channel, ts=self._ts, markdown_text=text)
        except Exception as error:  # noqa: BLE001 - the outbox ends the stream
            failure = failure_of(error)
            # A rate limit or a refusal changed nothing: the stop carries the rest. Anything
            # else may have landed: the final text then replaces the message's.
            if failure.may_have_reached_slack:
                self._clean = False
            log.info("append to stream %s stopped: %s", self._ts, failure.code)
            self._stopped = True
            return
        self._appended += text

    def finish(self) -> Streamed | None:
        """What the customer's thread shows of the answer, or None when nothing was started."""
        if self._ts is None:
            return None
        return Streamed(key=self._key, appended=self._appended, clean=self._clean,
                        ts=self._ts)


class AnswerStreams:
    """Starts live streams and sets the thinking status; one per process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], slack: SlackGateway,
                 settings: SlackSettings, *, busy: Callable[[], bool] = lambda: False) -> None:
        self.sessions = sessions
        self.slack = slack
        self.buffer_chars = settings.stream_buffer_chars
        self.streaming = settings.streaming
        self._busy = busy
        self.thinking_status = settings.thinking_status
        self._no_status: set[str] = set()  # channels where Slack refused the status

    def open(self, conversation: Conversation, message_id: int,
             on_start: Callable[[], None] | None = None) -> LiveStream | None:
        """A stream for the answer of the model call about to start; None when streaming is
        off, or while the process is `busy` (a burst: conversations wait for a worker), when
        the answer is called for unstreamed and posted whole: a streamed call costs several
        times the CPU of a plain one, and nobody watches an answer grow in a burst's queue."""
        if not self.streaming or self._busy():
            return None
        return LiveStream(self, conversation, message_id, on_start)

    def thinking_later(self, conversation: Conversation, *, after: timedelta
                       ) -> ThinkingLater | None:
        """Show the thinking status if the model is still at work `after` from now (the same
        "slow" as the ⏳): a quick answer costs no call. `cancel()` it once the answer shows."""
        if not self.thinking_status or conversation.channel_id in self._no_status:
            return None
        return ThinkingLater(asyncio.create_task(self._think_after(conversation, after)))

    async def _think_after(self, conversation: Conversation, after: timedelta) -> None:
        if after.total_seconds() > 0:
            await asyncio.sleep(after.total_seconds())
        await self.show_thinking(conversation)

    async def show_thinking(self, conversation: Conversation) -> None:
        """The thinking status under the customer's thread while the model works, where Slack
        shows it (a channel that refused it once is not asked again; the ⏳ stays there). Slack
        clears it when the answer is posted in the thread."""
        channel = conversation.channel_id
        if not self.thinking_status or channel in self._no_status:
            return
        try:
            await self.slack.client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=conversation.thread_ts,
                status=texts.thinking_status(), loading_messages=texts.thinking_messages())
        except SlackApiError as error:
            code = slack_error_code(error)
            if failure_of(error).permanent:
                self._no_status.add(channel)
            log.info("no thinking status in %s: %s", channel, code)
        except Exception as error:  # noqa: BLE001 - a status is a courtesy, never a failure
            log.info("no thinking status in %s: %s", channel, type(error).__name__)



class ThinkingLater:
    """A thinking status due later; cancelled when the answer shows or the step ends."""

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> None:
        self._task.cancel()

    async def done(self) -> None:
        """Cancel it (if still waiting) and let it finish."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
