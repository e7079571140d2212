"""Who responds next: staff take cases over, assign them, give them back, resolve them.

Every change is recorded (who, when, from what to what, why) and shown in the case's support
thread. Taking a case over closes its pending askHuman requests with a tool result saying a
human took over, so the history stays valid for the model when the case returns to the bot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.loop import queue_next_step
from bot.config import AppConfig
from bot.errors import BadCommand, CaseNotFound, StaleAction
from bot.toolkit import metrics, texts
from bot.toolkit.case_card import conversation_excerpt, refresh_case_card
from bot.toolkit.mrkdwn import neutralise_mentions
from bot.toolkit.posts import PostQueue
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.knowledge import Knowledge
from bot.usecases.ratings import Ratings
from storage import conversations, human_requests, messages
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
        raise BadCommand(texts.unknown_case(text))
    return int(cleaned)


def handoff_category(*, by: str, to: str) -> str:
    """The bounded reason of a handoff for the metric: who decided it, never who they are."""
    if by == "scheduler":
        return "idle_release"
    if by in ("router", "model"):
        return by
    return "staff_takeover" if by == to else "staff_assign"


class Handoff:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 answers: HumanAnswers, posts: PostQueue,
                 ratings: Ratings | None = None, knowledge: Knowledge | None = None) -> None:
        self._config = config
        self._knowledge = knowledge
        self._sessions = sessions
        self._answers = answers
        self._posts = posts
        self._ratings = ratings

    async def _case(self, session: AsyncSession, case_number: int) -> Conversation:
        conversation = await conversations.get_conversation_by_case(session, case_number)
        if conversation is None:
            raise CaseNotFound(texts.unknown_case(f"#{case_number}"))
        return conversation

    async def assign(self, *, case_number: int, to: str, by: str, reason: str,
                     expect: str | None = None) -> Changed:
        """Make `to` (`bot`, `humans` or a user id) respond next. `expect` is the assignee a
        button was drawn for: a stale card changes nothing and says who has the case now."""
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            if expect is not None and conversation.assignee not in (expect, to):
                raise StaleAction(texts.stale_button(case_number, conversation.assignee,
                                                     self._config.slack.command))
            try:
                await self.assign_in_session(session, conversation, to=to, by=by,
                                             reason=reason)
            except conversations.AssigneeChanged as changed:  # someone else was quicker
                await session.rollback()
                raise StaleAction(texts.stale_button(case_number, changed.now_with or "bot",
                                                     self._config.slack.command)) from None
            await session.commit()
            return Changed(conversation.id, case_number, to)

    async def assign_in_session(self, session: AsyncSession, conversation: Conversation, *,
                                to: str, by: str, reason: str, category: str | None = None
                                ) -> None:
        """`category`: why, for the handoff metric (bounded); derived from `by` when not given."""
        case_number = await conversations.number_case(session, conversation)
        old = conversation.assignee
        if old == to:
            raise BadCommand(texts.already_assigned(case_number, to))
        change = await conversations.change_assignee(session, conversation, to=to, by=by,
                                                     reason=reason)
        await session.flush()
        history = await messages.list_history(session, conversation.id)
        if conversation.status != "open":
            conversation.status = "open"
            conversation.resolved_at = None
        if to != "bot":
            metrics.handoff(category or handoff_category(by=by, to=to))
            owner_name = texts.who(to) if to != "humans" else "the support team"
            for request in await human_requests.pending_requests(session, conversation.id):
                await self._answers.close_in_session(
                    session, request, status="cancelled", result=texts.took_over_result(owner_name),
                    by=by, name=owner_name, human=True)
            if history and history[-1].role == "user":
                conversations.set_waiting_on_humans(conversation, True)
        else:
            conversations.set_waiting_on_humans(conversation, False)
            await queue_next_step(session, conversation)
        await self._posts.open_case_thread(session, conversation,
                                           reason=texts.who(to) + ": " + reason,
                                           excerpt=conversation_excerpt(history))
        await self._posts.note_in_case_thread(
            session, conversation, texts.assignment_note(case_number, old, to, by, reason),
            key=f"assign:{change.id}")
        await refresh_case_card(session, self._posts, conversation)

    async def hand_to_humans(self, session: AsyncSession, conversation: Conversation,
                             reason: str, *, by: str = "router", category: str = "router"
                             ) -> None:
        """A router or the model's transferToHuman (`category` "model") sends the case to
        staff; the customer is told a person will answer."""
        if conversation.assignee != "bot":
            return
        reason = neutralise_mentions(reason)  # a model's or router's words, shown to staff
        await self.assign_in_session(session, conversation, to="humans", by=by, reason=reason,
                                     category=category)
        await self._posts.to_customer(session, conversation, texts.customer_handed_to_humans(),
                                      key=f"handed:{conversation.id}:{utcnow().timestamp()}")

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
                raise BadCommand(texts.case_already_resolved(case_number))
            conversation.status = "resolved"
            conversation.resolved_at = utcnow()
            conversations.set_waiting_on_humans(conversation, False)
            # The bot owns a resolved case; the question posts are redrawn for that owner.
            if conversation.assignee != "bot":
                await conversations.change_assignee(session, conversation, to="bot", by=by,
                                                    reason="case resolved")
            for request in await human_requests.pending_requests(session, conversation.id):
                await self._answers.close_in_session(
                    session, request, status="cancelled",
                    result=texts.request_cancelled_result(texts.who(by)), by=by,
                    name=texts.who(by), human=True)
            await self._posts.note_in_case_thread(
                session, conversation, texts.case_resolved(case_number, by),
                key=f"resolved:{conversation.id}:{utcnow().timestamp()}")
            if self._ratings is not None:
                await self._ratings.offer(session, conversation)
            if self._knowledge is not None:  # what staff said may become knowledge
                await self._knowledge.queue_proposal(session, conversation)
            await refresh_case_card(session, self._posts, conversation)
            await session.commit()
            return Changed(conversation.id, case_number, conversation.assignee)

    async def reopen(self, *, case_number: int, by: str) -> Changed:
        """A resolved case is open again, with the bot; its card offers the usual buttons."""
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            if conversation.status != "resolved":
                raise BadCommand(texts.case_not_resolved(case_number))
            conversation.status = "open"
            conversation.resolved_at = None
            await self._posts.note_in_case_thread(
                session, conversation, texts.case_reopened(case_number, by),
                key=f"reopened:{conversation.id}:{utcnow().timestamp()}")
            await refresh_case_card(session, self._posts, conversation)
            await session.commit()
            return Changed(conversation.id, case_number, conversation.assignee)

    async def status(self, *, case_number: int) -> str:
        async with self._sessions() as session:
            conversation = await self._case(session, case_number)
            pending = await human_requests.pending_requests(session, conversation.id)
        waiting = conversations.waiting_time(conversation)
        lines = [f"*Case #{case_number}* · {conversation.customer_name or 'Customer'} in "
                 f"<#{conversation.channel_id}> · {conversation.status}",
                 f"Assigned to {texts.who(conversation.assignee)}"]
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
                         f"<#{case.channel_id}> → {texts.who(case.assignee)}"
                         f"{wait_text}, {pending.get(case.id, 0)} pending question(s)")
        return "\n".join(lines)
