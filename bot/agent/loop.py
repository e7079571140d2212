"""The agent loop: when the model takes the next step, the step itself, and what its result
queues. Every caller that may let the model continue (a staff answer, a give-up, a release, a
case given back to the bot) asks `queue_next_step`, so the rule lives here once.

Record before attempt: a `pending` assistant row is saved before litellm is called and replaced
by the result; a crash leaves the work item open and the next attempt fails the stale row first.
A step that ends in askHuman calls simply ends: the human request rows are the state, and a
staff answer later queues a new step.

Bad model output never goes silent or loops: an empty answer is retried a few times, an unknown
tool or unreadable arguments get a tool error the model can recover from, and the steps of one
customer message are bounded (`bot.agent.limits`, counted from stored rows). Past a bound the
bot gives up on the message: the customer is told a person will follow up and staff get a post
naming the case, as for a model that cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent import limits
from bot.agent.context import build_model_messages
from bot.agent.knowledge import (
    KnowledgeBase,
    Offered,
    cited_entries,
    conflict_key,
    contradicts,
    knowledge_context,
    staff_answers_since_customer,
)
from bot.agent.model import ModelClient, ModelError, ModelResult, ToolCall
from bot.agent.tools import (
    ASK_HUMAN,
    TRANSFER_TO_HUMAN,
    readable_question,
    suggested_answer,
    tool_names,
    tools_for,
)
from bot.agent.triage import STRUCTURED_INSTRUCTIONS, Router, parse_structured_answer
from bot.config import AppConfig
from bot.pipeline.outbox import Outbox
from bot.pipeline.streaming import AnswerStreams
from bot.toolkit import texts
from bot.toolkit.blocks import draft_blocks, human_request_blocks
from bot.toolkit.case_card import conversation_excerpt, refresh_case_card
from bot.toolkit.due_times import request_due_times, working_time, working_zone
from bot.toolkit.mrkdwn import neutralise_mentions, to_mrkdwn
from bot.toolkit.posts import PostQueue, Streamed, post_exists
from storage import conversations, human_requests, knowledge, messages, work_items
from storage.models import Conversation, Message, utcnow

log = logging.getLogger(__name__)


class Handover(Protocol):
    """Gives a case to the support team (the use case `Handoff` does it)."""

    async def hand_to_humans(self, session: AsyncSession, conversation: Conversation,
                             reason: str, *, category: str = "router") -> None: ...


def needs_reply(history: list[Message]) -> bool:
    """True when the last entry is the customer's or a tool result the model has not seen."""
    if not history:
        return False
    return history[-1].role in ("user", "tool")


def model_continues(conversation: Conversation, *, questions_pending: bool,
                    history: list[Message]) -> bool:
    """The one rule for "does the model take the next step?": the bot answers the case, no
    question waits for staff, and the history ends with something the model has not seen."""
    return conversation.assignee == "bot" and not questions_pending and needs_reply(history)


async def queue_next_step(session: AsyncSession, conversation: Conversation) -> bool:
    """Queue the model's next step if the rule says it continues, else only the sending of
    what was queued; True when the model continues."""
    pending = await human_requests.pending_requests(session, conversation.id)
    history = await messages.list_history(session, conversation.id)
    continues = model_continues(conversation, questions_pending=bool(pending), history=history)
    await work_items.add_work(session, conversation_id=conversation.id,
                              kind="respond" if continues else "flush")
    return continues


def store_completion(message: Message, result: ModelResult, *, status: str) -> None:
    """Replace a step's pending row with what the model returned, and what it cost."""
    message.status = status
    message.text = result.text
    message.model = result.model
    message.prompt_tokens = result.prompt_tokens
    message.completion_tokens = result.completion_tokens
    message.cost_usd = result.cost_usd


def draft_key(message_id: int) -> str:
    """The outbox key of the draft card of a model answer held in draft mode."""
    return f"draft:{message_id}"


def latest_customer_ts(history: list[Message]) -> str | None:
    for message in reversed(history):
        if message.role == "user" and message.slack_ts:
            return message.slack_ts
    return None



class Agent:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 model: ModelClient, posts: PostQueue, handover: Handover, *,
                 router: Router | None = None, streams: AnswerStreams | None = None,
                 knowledge_base: KnowledgeBase | None = None,
                 outbox: Outbox | None = None) -> None:
        """`outbox`: the worker's, which sends a step's posts right after it (the answer's
        post is then claimed with the answer, see `_record_result`)."""
        self._config = config
        self._outbox = outbox
        self._streams = streams
        self._knowledge = knowledge_base
        self._sessions = sessions
        self._model = model
        self._posts = posts
        self._handover = handover
        self._router = router

    async def step(self, conversation_id: int, *, upto_message_id: int | None = None) -> None:
        """Answer the conversation, or only up to one customer message: two quick messages
        get two answers, in order, the second seeing the first."""
        # Without a router, the read and the step's pending row are one transaction, which
        # locks the conversation first (its read, and whether staff owe an answer, are the
        # lock's RETURNING); the rows read under the lock give the history, the turn's bounds
        # and the new step's position.
        one_transaction = self._router is None
        async with self._sessions() as session:
            if one_transaction:
                locked = await conversations.lock_for_step(session, conversation_id)
                if locked is None:
                    return
                conversation, questions_pending = locked
            else:
                conversation = await conversations.get_conversation(session, conversation_id)
                if conversation is None:
                    return
                questions_pending = bool(
                    await human_requests.pending_requests(session, conversation_id))
            rows = await messages.conversation_rows(session, conversation_id)
            history = messages.successful(rows)
            turn_order = None
            if upto_message_id is not None:
                upto = await messages.get_message(session, upto_message_id)
                if upto is not None:
                    turn_order = upto.order
                    history = [m for m in history if m.order <= upto.order]
            if not model_continues(conversation, questions_pending=questions_pending,
                                   history=history):
                return
            pending_row = (await self._begin_call(session, conversation_id, turn_order,
                                                  history, locked_rows=rows)
                           if one_transaction else None)
        if self._router is not None:
            if not await self._routed_to_bot(conversation_id, history):
                return
            async with self._sessions() as session:
                pending_row = await self._begin_call(session, conversation_id, turn_order,
                                                     history)
        if pending_row is None:
            return
        live = (self._streams is not None
                and not self._config.channels.is_draft(conversation.channel_id))
        thinking = (self._streams.thinking_later(
            conversation, after=self._config.slack.holding_reaction_after)
            if live and self._streams is not None else None)
        try:
            await self._call_model(pending_row, history, turn_order,
                                   conversation if live else None,
                                   thinking.cancel if thinking is not None else None)
        finally:
            if thinking is not None:
                await thinking.done()

    async def _routed_to_bot(self, conversation_id: int, history: list[Message]) -> bool:
        """Ask the router about the latest customer message; False when it gave the case to
        staff."""
        assert self._router is not None
        if history[-1].role != "user":
            return True
        decision = await self._router.decide(history[-1].text or "")
        if decision.usage is not None:
            await self._record_router_usage(history[-1].id, decision.usage)
        if decision.needs_human:
            await self._route_to_humans(conversation_id, self._router.name, decision.reason)
            return False
        return True

    async def _begin_call(self, session: AsyncSession, conversation_id: int,
                          turn_order: int | None, history: list[Message], *,
                          locked_rows: list[Message] | None = None) -> Message | None:
        """Store the model call's pending row (committed), or None at a bound; `locked_rows`:
        the conversation's rows, read in this transaction under its lock."""
        rows = locked_rows
        if rows is None or any(row.status == "pending" for row in rows):
            await messages.fail_pending(session, conversation_id)  # a crashed attempt's row
            rows = None  # their statuses changed: read again
        pending_row = await self._start_attempt(session, conversation_id, turn_order, history,
                                                locked=locked_rows is not None, rows=rows)
        await session.commit()
        return pending_row

    async def _call_model(self, pending: Message, history: list[Message],
                          turn_order: int | None,
                          streamed_to: Conversation | None = None,
                          answer_shows: Callable[[], None] | None = None) -> None:
        """Call the model until it gives a usable answer or the bounds say stop; store it."""
        conversation_id = pending.conversation_id
        structured = self._config.routing.router == "structured"
        system_prompt = self._config.llm.system_prompt
        if structured:
            system_prompt += "\n\n" + STRUCTURED_INSTRUCTIONS
        offered = await self._knowledge_for(history)
        if offered:
            system_prompt += "\n\n" + knowledge_context(offered)
        prompt = build_model_messages(history, system_prompt=system_prompt,
                                      budget_tokens=self._config.llm.context_tokens)
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if structured else {}
        attempts = 0
        while True:
            attempts += 1
            live = (self._streams.open(streamed_to, pending.id, answer_shows)
                    if self._streams is not None and streamed_to is not None and not structured
                    else None)
            try:
                if live is not None:
                    result = await self._model.complete_streaming(
                        prompt, tools_for(self._config.routing.router), live.feed, **extra)
                else:
                    result = await self._model.complete(
                        prompt, tools_for(self._config.routing.router), **extra)
            except ModelError as error:
                log.error("model failed for conversation %s: %s", conversation_id, error)
                await self._record_failure(pending.id, history, str(error))
                return
            if structured and not result.tool_calls:
                answer, decision = parse_structured_answer(result.text)
                result = replace(result, text=answer)
                if decision.needs_human:
                    await self._record_structured_transfer(pending.id, result, decision.reason)
                    return
            if result.usable:
                await self._record_result(pending.id, history, result,
                                          live.finish() if live is not None else None,
                                          offered=offered)
                return
            log.warning("unusable model answer for conversation %s (try %s)",
                        conversation_id, attempts)
            next_pending = await self._record_unusable(pending.id, history, result, attempts,
                                                       turn_order)
            if next_pending is None:
                return
            pending = next_pending

    async def _knowledge_for(self, history: list[Message]) -> list[Offered]:
        """Saved entries close to the customer's latest question (none on any failure); the
        embedding call is measured on that message, as a router's is."""
        if self._knowledge is None:
            return []
        customer = next((m for m in reversed(history) if m.role == "user"), None)
        if customer is None:
            return []
        found = await self._knowledge.relevant(customer.text or "")
        if found.usage is not None:
            await self._add_usage(customer.id, found.usage)
        return found.offered

    async def _add_usage(self, message_id: int, usage: ModelResult) -> None:
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            message.model = message.model or usage.model
            message.prompt_tokens = (message.prompt_tokens or 0) + (usage.prompt_tokens or 0)
            message.completion_tokens = ((message.completion_tokens or 0)
                                         + (usage.completion_tokens or 0))
            message.cost_usd = (message.cost_usd or 0.0) + (usage.cost_usd or 0.0)
            await session.commit()

    async def _start_attempt(self, session: AsyncSession, conversation_id: int,
                             turn_order: int | None, history: list[Message], *,
                             locked: bool = False, rows: list[Message] | None = None
                             ) -> Message | None:
        """The pending row of a model call, or None when the turn reached a bound (the bot
        gave up on the message instead); `locked` and `rows` as `messages.add_step` takes
        them."""
        pending, before = await messages.add_step(
            session, conversation_id=conversation_id, role="assistant", status="pending",
            in_order=turn_order, locked=locked, rows=rows)
        limit = limits.reached(before, self._config.llm)
        if limit is None:
            return pending
        pending.status = "failed"
        conversation = await conversations.get_conversation(session, conversation_id)
        await self._give_up(session, conversation, pending, history, limit.reason)
        return None

    async def _record_unusable(self, message_id: int, history: list[Message],
                               result: ModelResult, attempts: int, turn_order: int | None,
                               ) -> Message | None:
        """Keep an unusable answer as a failed row (it counts as a step); the next attempt's
        pending row, or None when the retries are spent and the bot gave up."""
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            store_completion(message, result, status="failed")
            limits.mark(message, limits.UNUSABLE)
            pending = None
            if attempts <= self._config.llm.empty_answer_retries:
                pending = await self._start_attempt(session, message.conversation_id,
                                                    turn_order, history)
            else:
                conversation = await conversations.get_conversation(
                    session, message.conversation_id)
                await self._give_up(session, conversation, message, history,
                                    texts.model_no_usable_answer(attempts))
            await session.commit()
            return pending

    async def _record_router_usage(self, message_id: int, usage: ModelResult) -> None:
        """The router's call is measured on the customer message it classified."""
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            message.model = usage.model
            message.prompt_tokens = usage.prompt_tokens
            message.completion_tokens = usage.completion_tokens
            message.cost_usd = usage.cost_usd
            await session.commit()

    async def _route_to_humans(self, conversation_id: int, router: str, reason: str) -> None:
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            await self._handover.hand_to_humans(session, conversation,
                                                f"router {router}: {reason}")
            await session.commit()

    async def _record_structured_transfer(self, message_id: int, result: ModelResult,
                                          reason: str) -> None:
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            message.status = "failed"  # the answer is withheld: a person takes over
            message.text = result.text
            message.model = result.model
            message.prompt_tokens = result.prompt_tokens
            message.completion_tokens = result.completion_tokens
            message.cost_usd = result.cost_usd
            conversation = await conversations.get_conversation(session, message.conversation_id)
            await self._handover.hand_to_humans(session, conversation,
                                                f"router structured: {reason}")
            await session.commit()

    async def _record_result(self, message_id: int, history: list[Message],
                             result: ModelResult, streamed: Streamed | None = None, *,
                             offered: list[Offered] | None = None) -> None:
        """Store the answer, queue its posts, and decide what comes next: ask staff, hand over,
        continue after tool errors, or give up when the turn reached a bound."""
        cited: list[int] = []
        if offered and result.text:
            text, cited = cited_entries(result.text, {o.entry_id for o in offered})
            result = replace(result, text=text or None)
        async with self._sessions() as session:
            message, conversation = await messages.get_with_conversation(session, message_id)
            store_completion(message, result, status="success")
            if offered:
                message.meta = {**(message.meta or {}), "knowledge": {
                    "offered": [o.entry_id for o in offered], "cited": cited}}
            for entry_id in cited:
                await knowledge.record_use(session, entry_id=entry_id,
                                           conversation_id=conversation.id,
                                           message_id=message.id)
            if offered:
                await self._flag_contradictions(session, conversation, history, offered)
            message.tool_calls = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls
            ] or None
            asks = [c for c in result.tool_calls if c.name == ASK_HUMAN]
            transfers = [c for c in result.tool_calls
                         if c.name == TRANSFER_TO_HUMAN and c.malformed is None]
            errors = [c for c in result.tool_calls if c not in asks and c not in transfers]
            for call in errors:
                await self._tool_error(session, message, call)
            if result.text:
                await self._queue_customer_post(session, conversation, message, result.text,
                                                streamed=streamed)
            if transfers:
                await self._transfer(session, conversation, message, transfers[0], history)
            elif asks:
                team_away = await self._ask_humans(session, conversation, message, asks,
                                                   history)
                if not result.text and not team_away:
                    await self._queue_customer_post(session, conversation, None,
                                                    texts.waiting_on_team_note())
            elif errors:
                rows = await messages.turn_rows(session, conversation.id, message.order)
                limit = limits.reached(rows, self._config.llm)
                if limit is None:
                    await work_items.add_work(session, conversation_id=conversation.id,
                                        kind="respond")
                else:
                    await self._give_up(session, conversation, message, history, limit.reason,
                                        clear_holding=False)  # cleared below
            if not self._config.channels.is_draft(conversation.channel_id):
                await self._clear_holding_reaction(session, conversation, history)
            # The worker sends these posts next: their first one's claim commits here.
            early = (await self._outbox.claim_first_in(session, conversation.id)
                     if self._outbox is not None else None)
            await session.commit()
        if self._outbox is not None:
            self._outbox.keep_early_claim(early)

    async def _flag_contradictions(self, session: AsyncSession, conversation: Conversation,
                                   history: list[Message], offered: list[Offered]) -> None:
        """A staff answer to a question close to a saved entry that says something else is
        shown in the case's thread: the entry may be out of date."""
        for answer in staff_answers_since_customer(history):
            for entry in offered:
                if contradicts(answer, entry.answer):
                    await self._posts.note_in_case_thread(
                        session, conversation,
                        texts.knowledge_conflict(entry.entry_id, entry.question, entry.answer,
                                                 neutralise_mentions(answer)),
                        key=conflict_key(conversation.id, entry.entry_id))

    async def _tool_error(self, session: AsyncSession, message: Message, call: ToolCall) -> None:
        """A tool result the model can recover from, marked as a tool error for the bounds."""
        known = tool_names(tools_for(self._config.routing.router))
        if call.name in (ASK_HUMAN, TRANSFER_TO_HUMAN):
            text = texts.bad_arguments_result(call.name, call.malformed or "")
            error = texts.bad_arguments_error(call.name)
        else:
            text = texts.unknown_tool_result(call.name, known)
            error = texts.unknown_tool_error(call.name[:60])
        await messages.add_tool_result(
            session, call_message=message, tool_call_id=call.id, tool_name=call.name[:64],
            text=text, meta={"provider": "system", limits.TOOL_ERROR: error})

    async def _queue_customer_post(self, session: AsyncSession, conversation: Conversation,
                                   message: Message | None, text: str, *,
                                   streamed: Streamed | None = None) -> None:
        if self._config.channels.is_draft(conversation.channel_id):
            if message is not None and not message.tool_calls:
                await self._propose_draft(session, conversation, message)
            return  # holding lines of askHuman steps are not sent in draft mode
        key = (f"answer:{message.id}" if message
               else f"note:{conversation.id}:{utcnow().timestamp()}")
        await self._posts.answer_customer(session, conversation, text, key=key, message=message,
                                          streamed=streamed)

    async def _propose_draft(self, session: AsyncSession, conversation: Conversation,
                             message: Message) -> None:
        """Draft mode: hold the answer as a card with Send, Edit and Discard in the case thread
        (the `Drafts` use case handles the clicks); the customer hears the team is on it."""
        message.status = "draft"
        history = await messages.list_history(session, conversation.id)
        header = texts.draft_header(await conversations.number_case(session, conversation))
        await self._posts.open_case_thread(session, conversation,
                                           reason="draft mode: answers wait for approval",
                                           excerpt=conversation_excerpt(history))
        await self._posts.note_in_case_thread(
            session, conversation, header, key=draft_key(message.id),
            blocks=draft_blocks(message_id=message.id, header=header,
                                text=to_mrkdwn(message.text or "")))
        notice_key = f"on-it:{conversation.id}"
        if not await post_exists(session, notice_key):
            await self._posts.to_customer(session, conversation,
                                          texts.customer_team_is_on_it(), key=notice_key)

    async def _ask_humans(self, session: AsyncSession, conversation: Conversation,
                          message: Message, asks: list[ToolCall], history: list[Message]) -> bool:
        """Post the questions to staff; True when the customer was told the team is away."""
        await conversations.number_case(session, conversation)
        now = utcnow()
        working = working_time(self._config)
        due = request_due_times(self._config.timers_for(conversation.channel_id), working, now)
        first = conversation.support_thread_ts is None
        for index, call in enumerate(asks):
            request = await human_requests.create_request(
                session, conversation_id=conversation.id, message_id=message.id,
                tool_call_id=call.id, question=readable_question(call.arguments),
                suggested_answer=suggested_answer(call.arguments),
                remind_at=due.remind_at, escalate_at=due.escalate_at, give_up_at=due.give_up_at,
            )
            opens_thread = first and index == 0
            blocks = human_request_blocks(
                case_number=conversation.case_number,
                customer_name=conversation.customer_name or "Customer",
                channel_id=conversation.channel_id, thread_ts=conversation.thread_ts,
                excerpt=conversation_excerpt(history) if opens_thread else [],
                request_id=request.id, number=request.number, question=request.question,
                first=opens_thread, drawn_for=conversation.assignee,
                suggestion=request.suggested_answer,
                account=self._config.account_for(conversation.channel_id),
            )
            await self._posts.to_case_thread(
                session, conversation,
                texts.human_request_notification(conversation.case_number, request.question),
                key=f"ask:{request.id}", blocks=blocks,
                on_sent={"human_request_ids": [request.id], "support_thread": opens_thread})
        starts_waiting = conversation.waiting_on_humans_since is None
        conversations.set_waiting_on_humans(conversation, True, now)
        await refresh_case_card(session, self._posts, conversation)
        if starts_waiting and not working.is_open(now):
            back = texts.team_back_at(working.next_open(now), working_zone(self._config))
            await self._posts.to_customer(session, conversation, texts.team_away_note(back),
                                          key=f"away:{conversation.id}:{message.id}")
            return True
        return False

    async def _transfer(self, session: AsyncSession, conversation: Conversation,
                        message: Message, call: ToolCall, history: list[Message]) -> None:
        reason = str(call.arguments.get("reason") or "the model asked for a human")
        await messages.add_tool_result(
            session, call_message=message, tool_call_id=call.id, tool_name=TRANSFER_TO_HUMAN,
            text="The conversation was handed to the human support team.")
        await self._handover.hand_to_humans(session, conversation,
                                            f"the model called transferToHuman: {reason}",
                                            category="model")

    async def _clear_holding_reaction(self, session: AsyncSession, conversation: Conversation,
                                      history: list[Message]) -> None:
        await self._posts.clear_holding_reaction(session, conversation,
                                                 latest_customer_ts(history),
                                                 key=str(utcnow().timestamp()))

    async def _record_failure(self, message_id: int, history: list[Message], error: str) -> None:
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            message.status = "failed"
            conversation = await conversations.get_conversation(session, message.conversation_id)
            await self._give_up(session, conversation, message, history, None, error=error)
            await session.commit()

    async def _give_up(self, session: AsyncSession, conversation: Conversation,
                       marker: Message, history: list[Message], reason: str | None, *,
                       error: str | None = None, clear_holding: bool = True) -> None:
        """Stop working on the customer's message: they are told a person will follow up, staff
        get a post naming the case, and `marker` ends the turn's count (see `limits`)."""
        limits.mark(marker, limits.GAVE_UP, reason or error or "failed")
        case_number = await conversations.number_case(session, conversation)
        # An answer streamed before the model failed is taken back: the customer gets the note.
        await self._posts.close_streams(session, conversation, key=f"failed:{marker.id}")
        staff = (texts.model_failed_staff(case_number, error) if reason is None else
                 texts.model_gave_up_staff(case_number, reason, self._config.slack.command))
        await self._posts.to_customer(session, conversation, texts.model_failed_customer(),
                                      key=f"failed:{marker.id}")
        await self._posts.to_support_channel(session, staff, key=f"failed-staff:{marker.id}",
                                             conversation=conversation)
        if clear_holding:
            await self._clear_holding_reaction(session, conversation, history)
