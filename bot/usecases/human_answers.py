"""Answers to askHuman questions: from a support-thread reply, the modal, the buttons, or the
scheduler giving up on one.

Each closes one pending request exactly once (a conditional update), stores the tool result with
`provider: human` metadata in the turn of its call, updates the question's card, and then asks
the agent loop's one rule whether the model continues (`bot.agent.loop.queue_next_step`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.loop import queue_next_step
from bot.agent.tools import ASK_HUMAN
from bot.errors import CaseNotFound, RequestClosed
from bot.toolkit import texts
from bot.toolkit.blocks import case_header_text, closed_request_blocks
from bot.toolkit.case_card import is_card_root, refresh_case_card
from bot.toolkit.posts import PostQueue, find_post
from bot.usecases.relay import relay_to_customer
from storage import conversations, events, human_requests, messages
from storage.models import Conversation, HumanRequest

_NUMBERED_REPLY = re.compile(r"^\s*#(\d+)\b[\s:,.-]*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Closed:
    """A question closed by this call; its conversation has work for a worker."""

    conversation_id: int


@dataclass(frozen=True)
class AnswerForm:
    """What the answer modal of one pending question shows."""

    request_id: int
    number: int
    question: str
    case_number: int
    suggestion: str | None = None


def suggestion_outcome(suggestion: str | None, answer: str | None, *,
                       from_suggestion: bool) -> str | None:
    """What staff did with the model's suggested answer: `used` (sent as it was), `edited`
    (changed first), `ignored` (answered otherwise, let the bot answer, cancelled, took the
    case over, or nobody answered); None when there was no suggestion."""
    if not suggestion:
        return None
    if answer is not None and answer.strip() == suggestion.strip():
        return "used"
    return "edited" if from_suggestion else "ignored"


def parse_numbered_reply(text: str) -> tuple[int | None, str]:
    """`#2 the answer` → (2, "the answer"); anything else → (None, text)."""
    match = _NUMBERED_REPLY.match(text)
    if match and match.group(2).strip():
        return int(match.group(1)), match.group(2).strip()
    return None, text.strip()


class HumanAnswers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], posts: PostQueue) -> None:
        self._sessions = sessions
        self._posts = posts

    async def pending_for_support_thread(
        self, support_thread_ts: str
    ) -> tuple[Conversation | None, list[HumanRequest]]:
        async with self._sessions() as session:
            conversation = await conversations.find_conversation_by_support_thread(
                session, support_thread_ts=support_thread_ts)
            if conversation is None:
                return None, []
            return conversation, await human_requests.pending_requests(session, conversation.id)

    async def awaits_late_answer(self, conversation_id: int) -> bool:
        """A question of this case timed out and nobody has answered it since."""
        async with self._sessions() as session:
            return await human_requests.latest_unanswered_expired(
                session, conversation_id) is not None

    async def adopt_support_thread(
        self, outbox_key: str | None, support_thread_ts: str
    ) -> tuple[Conversation | None, list[HumanRequest]]:
        """Find the case of a support thread from its root post's outbox key."""
        if not outbox_key:
            return None, []
        async with self._sessions() as session:
            post = await find_post(session, outbox_key)
            if post is None or post.conversation_id is None:
                return None, []
            conversation = await conversations.get_conversation(session, post.conversation_id)
            if conversation.support_thread_ts is None:
                conversation.support_thread_ts = support_thread_ts
            for request_id in (post.on_sent or {}).get("human_request_ids", []):
                request = await human_requests.get_request(session, request_id)
                if request and not request.support_ts:
                    request.support_ts = support_thread_ts
            await session.commit()
            return conversation, await human_requests.pending_requests(session, conversation.id)

    async def answer_from_reply(self, *, conversation_id: int, text: str, user_id: str,
                                name: str, reply_key: str) -> Closed | None:
        """A staff reply in the support thread answers the oldest pending question, or `#N`.
        None for a delivery already handled (Slack's retry of the same reply)."""
        number, answer = parse_numbered_reply(text)
        async with self._sessions() as session:
            if not await events.accept_once(session, reply_key):
                return None
            if number is None:
                pending = await human_requests.pending_requests(session, conversation_id)
                late = await human_requests.latest_unanswered_expired(session, conversation_id)
                if not pending and late is None:
                    raise RequestClosed(texts.no_pending_question(conversation_id))
                request = pending[0] if pending else late
            else:
                request = await human_requests.find_request_by_number(
                    session, conversation_id=conversation_id, number=number)
                if request is None:
                    raise CaseNotFound(texts.no_pending_question(conversation_id))
            return await self._close(session, request, status="answered", result=answer,
                                     answer=answer, user_id=user_id, name=name, human=True)

    async def answer_form(self, request_id: int) -> AnswerForm:
        """What the answer modal needs, or RequestClosed once the question is not pending."""
        async with self._sessions() as session:
            request = await human_requests.get_request(session, request_id)
            if request is None or request.status != "pending":
                raise RequestClosed("That question is no longer waiting for an answer.")
            conversation = await conversations.get_conversation(session,
                                                                 request.conversation_id)
            return AnswerForm(request_id=request.id, number=request.number,
                              question=request.question, case_number=conversation.case_number,
                              suggestion=request.suggested_answer)

    async def answer(self, *, request_id: int, text: str, user_id: str, name: str,
                     from_suggestion: bool = False) -> Closed:
        """The answer typed in the modal; `from_suggestion` when it was opened with the model's
        suggestion to edit."""
        async with self._sessions() as session:
            request = await human_requests.get_request(session, request_id)
            if request is None:
                raise RequestClosed("That question no longer exists.")
            return await self._close(session, request, status="answered", result=text,
                                     answer=text, user_id=user_id, name=name, human=True,
                                     from_suggestion=from_suggestion)

    async def use_suggestion(self, *, request_id: int, user_id: str, name: str) -> Closed:
        """*Use this*: the model's suggested answer becomes the answer, approved by `name`."""
        async with self._sessions() as session:
            request = await human_requests.get_request(session, request_id)
            if request is None:
                raise RequestClosed("That question no longer exists.")
            if not request.suggested_answer:
                raise RequestClosed(texts.no_suggestion(request.number))
            suggestion = request.suggested_answer
            return await self._close(session, request, status="answered", result=suggestion,
                                     answer=suggestion, user_id=user_id, name=name, human=True,
                                     from_suggestion=True)

    async def let_bot_answer(self, *, request_id: int, user_id: str, name: str) -> Closed:
        async with self._sessions() as session:
            request = await human_requests.get_request(session, request_id)
            if request is None:
                raise RequestClosed("That question no longer exists.")
            return await self._close(session, request, status="answered",
                                     result=texts.bot_answers_alone_result(name),
                                     answer="(let the bot answer)", user_id=user_id, name=name,
                                     human=True)

    async def cancel(self, *, request_id: int, user_id: str, name: str) -> Closed:
        async with self._sessions() as session:
            request = await human_requests.get_request(session, request_id)
            if request is None:
                raise RequestClosed("That question no longer exists.")
            return await self._close(session, request, status="cancelled",
                                     result=texts.request_cancelled_result(name), answer=None,
                                     user_id=user_id, name=name, human=True)

    async def close_in_session(self, session: AsyncSession, request: HumanRequest, *,
                               status: str, result: str, by: str, name: str,
                               human: bool) -> bool:
        """Close one request inside the caller's transaction (a take-over, a resolve); the
        caller decides what follows."""
        if not await human_requests.close_request(session, request_id=request.id, status=status,
                                                  answer=None, by_user=by, by_name=name):
            return False
        request.suggestion_outcome = suggestion_outcome(request.suggested_answer, None,
                                                        from_suggestion=False)
        await self._store_result(session, request, result, by, name, human)
        await self._queue_closed_post(session, request, status, name, None)
        return True

    async def expire(self, session: AsyncSession, request: HumanRequest, *,
                     staff_note: str) -> bool:
        """The scheduler gives up on a question: the model hears nobody answered and goes on
        (telling the customer), staff get `staff_note`. False when an answer won the race."""
        if not await self.close_in_session(session, request, status="expired",
                                           result=texts.request_expired_result(),
                                           by="scheduler", name="scheduler", human=False):
            return False
        conversation = await conversations.get_conversation(session, request.conversation_id)
        await self._posts.to_case_thread(session, conversation, staff_note,
                                         key=f"expired:{request.id}")
        await self._after_close(session, conversation)
        return True

    async def _after_close(self, session: AsyncSession, conversation: Conversation) -> bool:
        """What follows every closed question: the model continues once no question is left,
        and the customer stops waiting on staff. True when the model continues."""
        if not await human_requests.pending_requests(session, conversation.id):
            conversations.set_waiting_on_humans(conversation, False)
        await refresh_case_card(session, self._posts, conversation)
        return await queue_next_step(session, conversation)

    async def _close(self, session: AsyncSession, request: HumanRequest, *, status: str,
                     result: str, answer: str | None, user_id: str, name: str,
                     human: bool, from_suggestion: bool = False) -> Closed:
        number, conversation_id, request_id = request.number, request.conversation_id, request.id
        won = await human_requests.close_request(
            session, request_id=request.id, status=status, answer=answer, by_user=user_id,
            by_name=name)
        if not won and status == "answered" and answer and await self._answer_late(
                session, request, answer, user_id, name):
            return Closed(conversation_id)
        if not won:
            await session.rollback()
            fresh = await human_requests.get_request(session, request_id)
            raise RequestClosed(texts.request_already_closed(
                number, fresh.status if fresh else "closed",
                fresh.answered_by_name if fresh else None))
        request.suggestion_outcome = suggestion_outcome(request.suggested_answer, answer,
                                                        from_suggestion=from_suggestion)
        await self._store_result(session, request, result, user_id, name, human)
        await self._queue_closed_post(session, request, status, name, answer)
        conversation = await conversations.get_conversation(session, request.conversation_id)
        await self._after_close(session, conversation)
        await session.commit()
        return Closed(request.conversation_id)

    async def _answer_late(self, session: AsyncSession, request: HumanRequest, answer: str,
                           user_id: str, name: str) -> bool:
        """An answer to a question that timed out still reaches the customer, as the staff
        member's own message (the model already told the customer the team would follow up)."""
        await session.refresh(request)
        if request.status != "expired" or request.answered_by not in (None, "scheduler"):
            return False
        conversation = await conversations.get_conversation(session, request.conversation_id)
        request.answer = answer
        request.answered_by = user_id
        request.answered_by_name = name
        await relay_to_customer(session, self._posts, conversation=conversation, text=answer,
                                user_id=user_id, name=name, key=f"late:{request.id}",
                                extra_meta={"late_answer_to": request.number})
        # The card keeps saying the question expired; its own post shows the late answer.
        await self._queue_closed_post(session, request, "answered", name, answer,
                                      card_redrawn=False)
        await session.commit()
        return True

    async def _store_result(self, session: AsyncSession, request: HumanRequest, result: str,
                            user_id: str, name: str, human: bool) -> None:
        call_message = await messages.get_message(session, request.message_id)
        meta = messages.human_metadata(name, user_id) if human else {"provider": "system"}
        if request.suggestion_outcome:
            meta["suggestion"] = request.suggestion_outcome
        await messages.add_tool_result(
            session, call_message=call_message, tool_call_id=request.tool_call_id,
            tool_name=ASK_HUMAN, text=result, agent_name=name if human else None, meta=meta,
            status="success")

    async def _queue_closed_post(self, session: AsyncSession, request: HumanRequest,
                                 status: str, name: str, answer: str | None, *,
                                 card_redrawn: bool = True) -> None:
        """Show the question's outcome on its post. When that post is the case card and the
        caller redraws the card (`refresh_case_card`), the redraw shows it: no second update."""
        conversation = await conversations.get_conversation(session, request.conversation_id)
        if card_redrawn and await is_card_root(session, conversation, request):
            return
        header = None
        if conversation.support_thread_ts == request.support_ts:
            header = case_header_text(
                case_number=conversation.case_number,
                customer_name=conversation.customer_name or "Customer",
                channel_id=conversation.channel_id, thread_ts=conversation.thread_ts,
                account=self._posts.account_for(conversation.channel_id))
        outcome = texts.question_outcome(request.number, status, name, answer)
        await self._posts.update_support_post(
            session, request.conversation_id, key=f"closed:{request.id}:{status}",
            of_key=f"ask:{request.id}", ts=request.support_ts, text=outcome,
            blocks=closed_request_blocks(
                number=request.number, question=request.question, outcome=outcome,
                case_number=conversation.case_number, drawn_for=conversation.assignee,
                header=header))
