"""Decides what a Slack message means: a customer question, a staff agent's words in a customer
thread, or a staff reply in a case's support thread; and hands it to the right service."""

from __future__ import annotations

import logging
from typing import Any

from bot.config import AppConfig
from bot.errors import UserFacingError
from bot.pipeline.worker import Worker
from bot.toolkit import texts
from bot.toolkit.payloads import (
    attached_file_names,
    author_name_from_event,
    event_dedupe_key,
    event_team_id,
    is_new_human_message,
    is_thread_reply,
    message_dedupe_key,
    message_words,
    strip_bot_mention,
    thread_root_ts,
)
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.handoff import Handoff
from bot.usecases.holding import HoldingReaction
from bot.usecases.human_answers import HumanAnswers, parse_numbered_reply
from bot.usecases.intake import IncomingMessage, Intake
from bot.usecases.people import People
from bot.usecases.staff_replies import StaffReplies
from storage.inbound import StoredDelivery

log = logging.getLogger(__name__)

_CHANNEL_TYPES = frozenset({"channel", "group", None})


class Inbox:
    def __init__(self, *, config: AppConfig, slack: SlackGateway, people: People, intake: Intake,
                 human_answers: HumanAnswers, staff_replies: StaffReplies, handoff: Handoff,
                 holding: HoldingReaction, worker: Worker) -> None:
        self._config = config
        self._slack = slack
        self._people = people
        self._intake = intake
        self._answers = human_answers
        self._staff_replies = staff_replies
        self._handoff = handoff
        self._holding = holding  # the ⏳ on slow answers
        self._worker = worker

    async def on_message_event(self, body: dict[str, Any], event: dict[str, Any], *,
                               delivery: StoredDelivery | None = None) -> None:
        """`delivery`: the stored Slack delivery the event came in, deleted with its record."""
        channel = event.get("channel", "")
        if event.get("channel_type") not in _CHANNEL_TYPES:
            return
        if channel == self._config.channels.support:
            if event.get("subtype") in ("message_changed", "message_deleted"):
                self._kick(await self._staff_replies.on_edit_or_delete(event))
                return
            if is_new_human_message(event) and is_thread_reply(event):
                await self._on_support_reply(body, event)
            return
        if not is_new_human_message(event):
            return
        if not self._config.channels.is_customer_channel(channel):
            return
        bot_user_id, _ = await self._slack.identity()
        words = strip_bot_mention(message_words(event), bot_user_id)
        incoming = IncomingMessage(
            team_id=event_team_id(body, event), channel_id=channel,
            thread_ts=thread_root_ts(event), ts=event["ts"], user_id=event["user"],
            user_name=await self._people.name(event["user"], author_name_from_event(event)),
            text=words or texts.message_without_words(attached_file_names(event)),
            event_key=event_dedupe_key(body), has_words=bool(words), delivery=delivery,
        )
        if await self._people.is_staff(incoming.user_id):
            conversation_id = await self._intake.record_staff_message(incoming)
            # A staff member answering in the customer's thread takes the case over at once.
            if conversation_id is not None and await self._handoff.claim_unowned(
                    conversation_id, user_id=incoming.user_id,
                    reason="answered directly in the customer's thread"):
                self._worker.kick(conversation_id)
            return
        conversation_id = await self._intake.record_customer_message(incoming)
        if conversation_id is None:
            return
        if incoming.has_words:
            self._holding.schedule(conversation_id=conversation_id, channel=channel,
                                  ts=incoming.ts)
        self._worker.kick(conversation_id)

    async def _on_support_reply(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        user_id = event["user"]
        conversation, pending = await self._answers.pending_for_support_thread(
            event["thread_ts"])
        if conversation is None:
            # The reply may beat our record of the thread's ts (or a crash lost it): the
            # thread's first post carries its outbox key in Slack message metadata.
            key = await self._outbox_key_of(event["channel"], event["thread_ts"])
            conversation, pending = await self._answers.adopt_support_thread(
                key, event["thread_ts"])
        if conversation is None:
            return
        if not await self._people.is_staff(user_id):
            if pending:
                await self._slack.post_ephemeral(channel=event["channel"], user=user_id,
                                                 thread_ts=event["thread_ts"],
                                                 text=texts.not_staff_answer())
            return
        name = await self._people.name(user_id, author_name_from_event(event))
        numbered, _ = parse_numbered_reply(event.get("text", ""))
        late = (not pending and numbered is None
                and await self._answers.awaits_late_answer(conversation.id))
        if not pending and numbered is None and not late:
            self._kick(await self._staff_replies.on_reply(conversation, event, name))
            return
        try:
            closed = await self._answers.answer_from_reply(
                conversation_id=conversation.id, text=event.get("text", ""), user_id=user_id,
                name=name, reply_key=message_dedupe_key(event["channel"], event["ts"]))
        except UserFacingError as error:
            await self._slack.post_ephemeral(channel=event["channel"], user=user_id,
                                             thread_ts=event["thread_ts"], text=str(error))
            return
        if closed is not None:
            self._worker.kick(closed.conversation_id)

    async def _outbox_key_of(self, channel: str, ts: str) -> str | None:
        try:
            replies = await self._slack.thread_replies(channel=channel, ts=ts)
        except Exception:  # noqa: BLE001 - without the root post there is nothing to adopt
            return None
        root = next((m for m in replies if m.get("ts") == ts), None)
        payload = ((root or {}).get("metadata") or {}).get("event_payload") or {}
        return payload.get("outbox_key")

    def _kick(self, conversation_id: int | None) -> None:
        if conversation_id is not None:
            self._worker.kick(conversation_id)
