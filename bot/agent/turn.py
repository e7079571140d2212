"""One model step for a conversation, from stored history to stored result and queued posts.

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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.agent import limits
from bot.agent.context import build_model_messages
from bot.agent.model import ModelClient, ModelError, ModelResult, ToolCall
from bot.agent.tools import (
    ASK_HUMAN,
    TRANSFER_TO_HUMAN,
    readable_question,
    tool_names,
    tools_for,
)
from bot.config import AppConfig
from bot.followup_times import request_due_times, working_time, working_zone
from bot.routing import STRUCTURED_INSTRUCTIONS, parse_structured_answer
from bot.services.customer_thread import queue_answer, queue_clear_holding
from bot.services.outbox import SUPPORT_THREAD
from bot.slack.blocks import human_request_blocks
from storage import conversations, human_requests, messages, work
from storage.models import Conversation, Message, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """What a step did: `answered`, `asked`, `transferred`, `failed` or `idle`."""

    kind: str


def needs_reply(history: list[Message]) -> bool:
    """True when the last entry is the customer's or a tool result the model has not seen."""
    if not history:
        return False
    return history[-1].role in ("user", "tool")


def latest_customer_ts(history: list[Message]) -> str | None:
    for message in reversed(history):
        if message.role == "user" and message.slack_ts:
            return message.slack_ts
    return None


def conversation_excerpt(history: list[Message], limit: int = 6) -> list[str]:
    lines = []
    for message in history:
        if message.text and message.role in ("user", "assistant"):
            who = "Customer" if message.role == "user" else (message.agent_name or "Bot")
            lines.append(texts.excerpt_line(who, message.text))
    return lines[-limit:]


class Agent:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 model: ModelClient, *, handoff: Any = None, drafts: Any = None,
                 router: Any = None) -> None:
        self._config = config
        self._sessions = sessions
        self._model = model
        self._handoff = handoff
        self._drafts = drafts
        self._router = router

    async def step(self, conversation_id: int, *, upto_message_id: int | None = None,
                   ) -> StepOutcome:
        """Answer the conversation, or only up to one customer message: two quick messages
        get two answers, in order, the second seeing the first."""
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            if conversation is None or conversation.assignee != "bot":
                return StepOutcome("idle")
            if await human_requests.pending_requests(session, conversation_id):
                return StepOutcome("idle")
            history = await messages.list_history(session, conversation_id)
            turn_order = None
            if upto_message_id is not None:
                upto = await messages.get_message(session, upto_message_id)
                if upto is not None:
                    turn_order = upto.order
                    history = [m for m in history if m.order <= upto.order]
            if not needs_reply(history):
                return StepOutcome("idle")
        if self._router is not None and history[-1].role == "user":
            decision = await self._router.decide(history[-1].text or "")
            if decision.needs_human:
                await self._route_to_humans(conversation_id, self._router.name, decision.reason)
                return StepOutcome("transferred")
        async with self._sessions() as session:
            await self._fail_stale_pending(session, conversation_id)
            pending = await self._start_attempt(session, conversation_id, turn_order, history)
            await session.commit()
        if pending is None:
            return StepOutcome("failed")
        structured = self._config.routing.router == "structured"
        system_prompt = self._config.llm.system_prompt
        if structured:
            system_prompt += "\n\n" + STRUCTURED_INSTRUCTIONS
        prompt = build_model_messages(history, system_prompt=system_prompt,
                                      budget_tokens=self._config.llm.context_tokens)
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if structured else {}
        attempts = 0
        while True:
            attempts += 1
            try:
                result = await self._model.complete(
                    prompt, tools_for(self._config.routing.router), **extra)
            except ModelError as error:
                log.error("model failed for conversation %s: %s", conversation_id, error)
                await self._record_failure(pending.id, history, str(error))
                return StepOutcome("failed")
            if structured and not result.tool_calls:
                answer, decision = parse_structured_answer(result.text)
                result = replace(result, text=answer)
                if decision.needs_human:
                    await self._record_structured_transfer(pending.id, result, decision.reason)
                    return StepOutcome("transferred")
            if result.usable:
                return await self._record_result(pending.id, history, result)
            log.warning("unusable model answer for conversation %s (try %s)",
                        conversation_id, attempts)
            pending = await self._record_unusable(pending.id, history, result, attempts,
                                                  turn_order)
            if pending is None:
                return StepOutcome("failed")

    async def _start_attempt(self, session: AsyncSession, conversation_id: int,
                             turn_order: int | None, history: list[Message]) -> Message | None:
        """The pending row of a model call, or None when the turn reached a bound (the bot
        gave up on the message instead)."""
        pending = await messages.add_message(
            session, conversation_id=conversation_id, role="assistant", status="pending",
            in_order=turn_order)
        rows = await limits.turn_rows(session, conversation_id, pending.order)
        limit = limits.reached([r for r in rows if r.id != pending.id], self._config.llm)
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
            message.status = "failed"
            message.text = result.text
            message.model = result.model
            message.prompt_tokens = result.prompt_tokens
            message.completion_tokens = result.completion_tokens
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

    async def _route_to_humans(self, conversation_id: int, router: str, reason: str) -> None:
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            await self._handoff.hand_to_humans(session, conversation,
                                               f"router {router}: {reason}")
            await session.commit()

    async def _record_structured_transfer(self, message_id: int, result: ModelResult,
                                          reason: str) -> None:
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            message.status = "failed"  # the answer is withheld: a person takes over
            message.text = result.text
            conversation = await conversations.get_conversation(session, message.conversation_id)
            await self._handoff.hand_to_humans(session, conversation,
                                               f"router structured: {reason}")
            await session.commit()

    async def _fail_stale_pending(self, session: AsyncSession, conversation_id: int) -> None:
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.status == "pending")
            .values(status="failed")
        )

    async def _record_result(self, message_id: int, history: list[Message],
                             result: ModelResult) -> StepOutcome:
        """Store the answer, queue its posts, and decide what comes next: ask staff, hand over,
        continue after tool errors, or give up when the turn reached a bound."""
        async with self._sessions() as session:
            message = await messages.get_message(session, message_id)
            conversation = await conversations.get_conversation(session, message.conversation_id)
            message.status = "success"
            message.text = result.text
            message.model = result.model
            message.prompt_tokens = result.prompt_tokens
            message.completion_tokens = result.completion_tokens
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
                await self._queue_customer_post(session, conversation, message, result.text)
            outcome = "answered"
            if transfers:
                outcome = "transferred"
                await self._transfer(session, conversation, message, transfers[0], history)
            elif asks:
                outcome = "asked"
                team_away = await self._ask_humans(session, conversation, message, asks,
                                                   history)
                if not result.text and not team_away:
                    await self._queue_customer_post(session, conversation, None,
                                                    texts.waiting_on_team_note())
            elif errors:
                rows = await limits.turn_rows(session, conversation.id, message.order)
                limit = limits.reached(rows, self._config.llm)
                if limit is None:
                    await work.add_work(session, conversation_id=conversation.id,
                                        kind="respond")
                else:
                    outcome = "failed"
                    await self._give_up(session, conversation, message, history, limit.reason,
                                        clear_holding=False)  # cleared below
            if not self._config.channels.is_draft(conversation.channel_id):
                await self._clear_holding_reaction(session, conversation, history)
            await session.commit()
            return StepOutcome(outcome)

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
                                   message: Message | None, text: str) -> None:
        if self._config.channels.is_draft(conversation.channel_id):
            if message is not None and not message.tool_calls:
                history = await messages.list_history(session, conversation.id)
                await self._drafts.propose(session, conversation, message,
                                           conversation_excerpt(history))
            return  # holding lines of askHuman steps are not sent in draft mode
        key = (f"answer:{message.id}" if message
               else f"note:{conversation.id}:{utcnow().timestamp()}")
        await queue_answer(session, conversation, text, key=key, message=message)

    async def _ask_humans(self, session: AsyncSession, conversation: Conversation,
                          message: Message, asks: list[Any], history: list[Message]) -> bool:
        """Post the questions to staff; True when the customer was told the team is away."""
        now = utcnow()
        working = working_time(self._config)
        due = request_due_times(self._config.timers, working, now)
        first = conversation.support_thread_ts is None
        for index, call in enumerate(asks):
            request = await human_requests.create_request(
                session, conversation_id=conversation.id, message_id=message.id,
                tool_call_id=call.id, question=readable_question(call.arguments),
                remind_at=due.remind_at, escalate_at=due.escalate_at, give_up_at=due.give_up_at,
            )
            opens_thread = first and index == 0
            blocks = human_request_blocks(
                case_number=conversation.case_number or conversation.id,
                customer_name=conversation.customer_name or "Customer",
                channel_id=conversation.channel_id, thread_ts=conversation.thread_ts,
                excerpt=conversation_excerpt(history) if opens_thread else [],
                request_id=request.id, number=request.number, question=request.question,
                first=opens_thread,
            )
            await work.add_post(
                session, key=f"ask:{request.id}", method="chat.postMessage",
                conversation_id=conversation.id,
                on_sent={"human_request_ids": [request.id], "support_thread": opens_thread},
                args={"channel": self._config.channels.support, "thread_ts": SUPPORT_THREAD,
                      "text": texts.human_request_notification(conversation.case_number or 0,
                                                               request.question),
                      "blocks": blocks},
            )
        if conversation.waiting_on_humans_since is None:
            conversation.waiting_on_humans_since = now
            conversation.customer_notified_at = None
            if not working.is_open(now):
                back = texts.team_back_at(working.next_open(now), working_zone(self._config))
                await work.add_post(
                    session, key=f"away:{conversation.id}:{message.id}",
                    method="chat.postMessage", conversation_id=conversation.id,
                    args={"channel": conversation.channel_id,
                          "thread_ts": conversation.thread_ts,
                          "text": texts.team_away_note(back)})
                return True
        return False

    async def _transfer(self, session: AsyncSession, conversation: Conversation,
                        message: Message, call: Any, history: list[Message]) -> None:
        reason = str(call.arguments.get("reason") or "the model asked for a human")
        await messages.add_tool_result(
            session, call_message=message, tool_call_id=call.id, tool_name=TRANSFER_TO_HUMAN,
            text="The conversation was handed to the human support team.")
        if self._handoff is not None:
            await self._handoff.hand_to_humans(session, conversation,
                                               f"the model called transferToHuman: {reason}")

    async def _clear_holding_reaction(self, session: AsyncSession, conversation: Conversation,
                                      history: list[Message]) -> None:
        await queue_clear_holding(session, conversation, latest_customer_ts(history),
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
        case_number = conversation.case_number or 0
        staff = (texts.model_failed_staff(case_number, error) if reason is None else
                 texts.model_gave_up_staff(case_number, reason, self._config.slack.command))
        await work.add_post(
            session, key=f"failed:{marker.id}", method="chat.postMessage",
            conversation_id=conversation.id,
            args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                  "text": texts.model_failed_customer()})
        await work.add_post(
            session, key=f"failed-staff:{marker.id}", method="chat.postMessage",
            conversation_id=conversation.id,
            args={"channel": self._config.channels.support, "text": staff})
        if clear_holding:
            await self._clear_holding_reaction(session, conversation, history)
