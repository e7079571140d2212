"""Who responds next: staff take cases over, assign them, give them back, resolve them.

Every change is recorded (who, when, from what to what, why) and shown in the case's support
thread. Taking a case over closes its pending askHuman requests with a tool result saying a
human took over, so the history stays valid for the model when the case returns to the bot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts, texts_handoff
from bot.agent.turn import conversation_excerpt, needs_reply
from bot.config import AppConfig
from bot.errors import BadCommand, CaseNotFound
from bot.services.case_thread import ensure_case_thread, post_in_case_thread
from bot.services.human_requests import HumanRequests
from bot.slack.mrkdwn import neutralise_mentions
from storage import conversations, human_requests, messages, work
from storage.models import Conversation, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Changed:
    conversation_id: int
    case_number: int
    assignee: str


def parse_case_number(text: str) -> int:
    cleaned = text.strip().lstrip("#")
    if not cleaned.isdigit():
        raise BadCommand(texts_handoff.unknown_case(text))
    return int(cleaned)


class Handoff:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 human_requests_service: HumanRequests) -> None:
        self._config = config
        self._sessions = sessions
        self._requests = human_requests_service
        self._support = config.channels.support

    async def _case(self, session: AsyncSession, case_number: int) -> Conversation:
        conversation = await conversations.get_conversation_by_case(session, case_number)
        if conversation is None:
            raise CaseNotFound(texts_handoff.unknown_case(f"#{case_number}"))
        return conversation

    async def assign(self, *, case_number: int, to: str, by: str, reason: str,
                     expect: str | None = None) -> Changed:
        """Make `to` (`bot`, `humans` or a user id) respond next. `expect` is the assignee a
        button was drawn for: a stale card changes nothing."""
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            if expect is not None and conversation.assignee != expect:
                raise BadCommand(texts_handoff.stale_button())
            await self.assign_in_session(session, conversation, to=to, by=by, reason=reason)
            await session.commit()
            return Changed(conversation.id, case_number, to)

    async def assign_in_session(self, session: AsyncSession, conversation: Conversation, *,
                                to: str, by: str, reason: str) -> None:
        case_number = conversation.case_number or conversation.id
        old = conversation.assignee
        if old == to:
            raise BadCommand(texts_handoff.already_assigned(case_number, to))
        change = await conversations.change_assignee(session, conversation, to=to, by=by,
                                                     reason=reason)
        await session.flush()
        history = await messages.list_history(session, conversation.id)
        if conversation.status != "open":
            conversation.status = "open"
        if to != "bot":
            owner_name = texts_handoff.who(to) if to != "humans" else "the support team"
            for request in await human_requests.pending_requests(session, conversation.id):
                await self._requests.close_in_session(
                    session, request, status="cancelled", result=texts.took_over_result(owner_name),
                    by=by, name=owner_name, human=True)
            if history and history[-1].role == "user" and not conversation.waiting_on_humans_since:
                conversation.waiting_on_humans_since = utcnow()
        else:
            conversation.waiting_on_humans_since = None
            conversation.customer_notified_at = None
            if needs_reply(history):
                await work.add_work(session, conversation_id=conversation.id, kind="respond")
        await ensure_case_thread(session, conversation, support_channel=self._support,
                                 reason=texts_handoff.who(to) + ": " + reason,
                                 excerpt=conversation_excerpt(history))
        await post_in_case_thread(
            session, conversation, support_channel=self._support, key=f"assign:{change.id}",
            text=texts_handoff.assignment_note(case_number, old, to, by, reason))

    async def hand_to_humans(self, session: AsyncSession, conversation: Conversation,
                             reason: str, *, by: str = "router") -> None:
        """A router or the model's transferToHuman sends the case to staff; the customer is
        told a person will answer."""
        if conversation.assignee != "bot":
            return
        reason = neutralise_mentions(reason)  # a model's or router's words, shown to staff
        await self.assign_in_session(session, conversation, to="humans", by=by, reason=reason)
        await work.add_post(
            session, key=f"handed:{conversation.id}:{utcnow().timestamp()}",
            method="chat.postMessage", conversation_id=conversation.id,
            args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                  "text": texts_handoff.customer_handed_to_humans()})

    async def claim_unowned(self, conversation_id: int, *, user_id: str, reason: str) -> bool:
        """A staff member acting on a case the bot or nobody owns becomes its owner."""
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            if conversation is None or conversation.assignee not in ("bot", "humans"):
                return False
            await self.assign_in_session(session, conversation, to=user_id, by=user_id,
                                         reason=reason)
            await session.commit()
            return True

    async def resolve(self, *, case_number: int, by: str) -> Changed:
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            if conversation.status == "resolved":
                raise BadCommand(texts_handoff.case_already_resolved(case_number))
            conversation.status = "resolved"
            conversation.waiting_on_humans_since = None
            for request in await human_requests.pending_requests(session, conversation.id):
                await self._requests.close_in_session(
                    session, request, status="cancelled",
                    result=texts.request_cancelled_result(texts_handoff.who(by)), by=by,
                    name=texts_handoff.who(by), human=True)
            if conversation.assignee != "bot":
                await conversations.change_assignee(session, conversation, to="bot", by=by,
                                                    reason="case resolved")
            await post_in_case_thread(
                session, conversation, support_channel=self._support,
                key=f"resolved:{conversation.id}:{utcnow().timestamp()}",
                text=texts_handoff.case_resolved(case_number, by))
            await session.commit()
            return Changed(conversation.id, case_number, conversation.assignee)

    async def status(self, *, case_number: int) -> str:
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            pending = await human_requests.pending_requests(session, conversation.id)
        waiting = conversations.waiting_time(conversation)
        lines = [f"*Case #{case_number}* · {conversation.customer_name or 'Customer'} in "
                 f"<#{conversation.channel_id}> · {conversation.status}",
                 f"Assigned to {texts_handoff.who(conversation.assignee)}"]
        if waiting is not None:
            lines.append(f"Customer waiting on staff for {texts.format_duration(waiting)}")
        for request in pending:
            lines.append(f"Pending question #{request.number}: {request.question}")
        return "\n".join(lines)

    async def list_open(self) -> str:
        async with self._sessions() as session:
            cases = await conversations.list_open_conversations(session)
            pending = await conversations.count_pending_requests(session, [c.id for c in cases])
        if not cases:
            return "No open cases with a support thread."
        lines = ["*Open cases*"]
        for case in cases:
            waiting = conversations.waiting_time(case)
            wait_text = f", waiting {texts.format_duration(waiting)}" if waiting else ""
            lines.append(f"• #{case.case_number} {case.customer_name or 'Customer'} in "
                         f"<#{case.channel_id}> → {texts_handoff.who(case.assignee)}"
                         f"{wait_text}, {pending.get(case.id, 0)} pending question(s)")
        return "\n".join(lines)
