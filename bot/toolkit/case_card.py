"""The case card: the first post of a case's support thread shows the case as it is now.

Status (the bot answering, waiting on staff, owned by @person, unclaimed, resolved), the
customer, how long the oldest question has waited, and only the buttons that make sense in that
state. Every change queues a redraw of that post through the outbox (`refresh_case_card`), in
order with the thread's other posts; it is drawn from the database as the change commits, so the
last redraw shows the last state. The first post is the case card (`case:<id>`), or the card of
the question that opened the thread (`ask:<request id>`), whose question is drawn too.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bot.toolkit import texts
from bot.toolkit.blocks import QuestionPart, case_root_blocks
from bot.toolkit.posts import PostQueue, case_thread_key, post_exists
from storage import conversations, home, human_requests, messages
from storage.models import Conversation, HumanRequest, Message, utcnow


def conversation_excerpt(history: list[Message], limit: int = 6) -> list[str]:
    """The last lines of what the customer and the agent said, for staff."""
    lines = []
    for message in history:
        if message.text and message.role in ("user", "assistant"):
            who = "Customer" if message.role == "user" else (message.agent_name or "Bot")
            lines.append(texts.excerpt_line(who, message.text))
    return lines[-limit:]


async def _opening_question(session: AsyncSession,
                            conversation: Conversation) -> HumanRequest | None:
    """The question whose post opened the thread, when no case card did."""
    first = await human_requests.first_request(session, conversation.id)
    if first is None or not await post_exists(session, f"ask:{first.id}"):
        return None
    return first


async def is_card_root(session: AsyncSession, conversation: Conversation,
                       request: HumanRequest) -> bool:
    """True when this question's post is the case card (it opened the thread): a redraw of the
    card shows its outcome, so it needs no update of its own."""
    if await post_exists(session, case_thread_key(conversation)):
        return False
    opening = await _opening_question(session, conversation)
    return opening is not None and opening.id == request.id


async def refresh_case_card(session: AsyncSession, posts: PostQueue,
                            conversation: Conversation) -> None:
    """Queue a redraw of the case thread's first post with the case's current state; nothing
    while the case has no thread (its first post will be drawn with it). The staff queue on
    the Home tab is told too (`storage.home.note_change`, one insert in this transaction)."""
    await home.note_change(session)
    question = None
    if await post_exists(session, case_thread_key(conversation)):
        root_key = case_thread_key(conversation)
    else:
        question = await _opening_question(session, conversation)
        if question is None:
            return
        root_key = f"ask:{question.id}"
    now = utcnow()
    pending = await human_requests.pending_requests(session, conversation.id)
    history = await messages.list_history(session, conversation.id)
    case_number = await conversations.number_case(session, conversation)
    status = texts.case_status(
        status=conversation.status, assignee=conversation.assignee, pending=len(pending),
        waiting=conversations.waiting_time(conversation, now),
        oldest_question=now - pending[0].created_at if pending else None)
    part = None
    if question is not None:
        closed = question.status != "pending"
        part = QuestionPart(
            request_id=question.id, number=question.number, question=question.question,
            suggestion=question.suggested_answer,
            outcome=texts.question_outcome(question.number, question.status,
                                           question.answered_by_name, question.answer)
            if closed else None)
    blocks = case_root_blocks(
        case_number=case_number, customer_name=conversation.customer_name or "Customer",
        channel_id=conversation.channel_id, thread_ts=conversation.thread_ts, status=status,
        excerpt=conversation_excerpt(history), assignee=conversation.assignee,
        resolved=conversation.status == "resolved", question=part,
        account=posts.account_for(conversation.channel_id))
    if part is None:
        text = f"{texts.case_label(case_number)}: {status}"
    elif part.outcome is None:
        text = texts.human_request_notification(case_number, part.question)
    else:
        text = part.outcome
    await posts.update_support_post(
        session, conversation.id, key=f"card:{conversation.id}:{uuid.uuid4().hex[:12]}",
        of_key=root_key, ts=conversation.support_thread_ts, text=text, blocks=blocks)
