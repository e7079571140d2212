"""The bot learns from staff: a resolved case proposes a knowledge entry distilled from what
staff said; a staff member saves, edits or discards it; saved entries are managed with
`/handoff kb`.

`queue_proposal` runs in the resolving transaction and only queues a `kb-propose` work item:
the model call that distills the entry runs in the worker, never in a listener. The proposal is
stored before its card is queued (one per resolution: `source_key` is unique, so a retry or a
second replica proposes nothing more). A case where no staff member answered (no askHuman
answer, no reply relayed as the agent) proposes nothing.

The clicks are conditional updates (`proposed` → `saved` / `discarded`): exactly one wins, a
double click or a second replica is told who was first. The click is recorded before it is
acknowledged: a crash before the commit leaves the entry proposed and its buttons in place, so
the click can be made again. The embedding of a saved entry is a work item of the same
transaction, so a crash after the click computes it at the next sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.knowledge import (
    KnowledgeBase,
    conflict_key,
    contradicts,
    distill_request,
    parse_distilled,
)
from bot.agent.model import ModelClient, ModelError
from bot.errors import BadCommand, StaleAction
from bot.toolkit import texts
from bot.toolkit.blocks import knowledge_outcome_blocks, knowledge_proposal_blocks
from bot.toolkit.mrkdwn import neutralise_mentions
from bot.toolkit.posts import PostQueue, find_post, wake
from storage import conversations, knowledge, messages, work_items
from storage.models import Conversation, HumanRequest, KnowledgeEntry, WorkItem, utcnow

log = logging.getLogger(__name__)

PROPOSE = "kb-propose"
EMBED = "kb-embed"


def proposal_key(entry_id: int) -> str:
    return f"kb-proposal:{entry_id}"


@dataclass(frozen=True)
class StaffSaid:
    customer: str
    staff: list[str]


def parse_expiry(value: str) -> datetime | None:
    """`2027-01-31` (the end of that day, UTC) or `never` (None)."""
    if value.lower() in ("never", "none", "-"):
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise BadCommand(texts.knowledge_bad_date(value)) from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


class Knowledge:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], model: ModelClient,
                 base: KnowledgeBase, posts: PostQueue, *, command: str = "/handoff") -> None:
        self._sessions = sessions
        self._model = model
        self._base = base
        self._posts = posts
        self._command = command

    # on resolve -------------------------------------------------------------------------------
    async def queue_proposal(self, session: AsyncSession, conversation: Conversation) -> None:
        """In the resolving transaction: have the worker propose an entry from this case."""
        if not self._base.enabled:
            return
        when = conversation.resolved_at or utcnow()
        await work_items.add_work(session, conversation_id=conversation.id, kind=PROPOSE,
                                  payload={"source": f"{conversation.id}:{when.timestamp()}"})

    async def what_staff_said(self, session: AsyncSession, conversation_id: int) -> StaffSaid:
        history = await messages.list_history(session, conversation_id)
        customer = "\n".join(m.text or "" for m in history if m.role == "user").strip()
        answered = (await session.execute(
            select(HumanRequest).where(HumanRequest.conversation_id == conversation_id,
                                       HumanRequest.status == "answered")
            .order_by(HumanRequest.id))).scalars()
        staff = [r.answer for r in answered if r.answer]
        staff += [m.text for m in history
                  if m.role == "assistant" and m.text and m.slack_user_id
                  and (m.meta or {}).get("provider") == "human"]
        return StaffSaid(customer[:1500], [s.strip()[:1000] for s in staff if s.strip()])

    async def propose(self, item: WorkItem) -> None:
        """The worker's `kb-propose`: distill, store, post the card (or nothing)."""
        async with self._sessions() as session:
            said = await self.what_staff_said(session, item.conversation_id)
        if not said.staff or not said.customer:
            log.info("conversation %s: no staff answer, no knowledge proposal",
                     item.conversation_id)
            return
        question, answer = await self._distill(said)
        async with self._sessions() as session:
            conversation = await conversations.get_conversation(session, item.conversation_id)
            entry = await knowledge.propose(
                session, conversation_id=conversation.id, source_key=item.payload["source"],
                question=neutralise_mentions(question), answer=neutralise_mentions(answer))
            if entry is None:
                return
            header = texts.knowledge_proposal_header(conversation.case_number, entry.id)
            await self._posts.note_in_case_thread(
                session, conversation, header, key=proposal_key(entry.id),
                blocks=knowledge_proposal_blocks(entry_id=entry.id, header=header,
                                                 question=entry.question,
                                                 answer=entry.answer))
            await self._flag_conflicts(session, conversation, entry)
            await session.commit()

    async def _distill(self, said: StaffSaid) -> tuple[str, str]:
        """The model's short Q&A; what was said, as it is, when the model fails."""
        try:
            result = await self._model.complete(distill_request(said.customer, said.staff))
            distilled = parse_distilled(result.text)
        except ModelError as error:
            log.warning("knowledge: distilling failed, proposing the words as they are: %s",
                        error)
            distilled = None
        if distilled is None:
            return said.customer[:500], "\n".join(said.staff)[:2000]
        return distilled

    async def _flag_conflicts(self, session: AsyncSession, conversation: Conversation,
                              entry: KnowledgeEntry) -> None:
        """A staff answer to a question a saved entry answers differently is shown to staff."""
        try:
            matches = await self._base.closest(session, entry.question, limit=3)
        except ModelError as error:
            log.warning("knowledge: cannot check the proposal against saved entries: %s", error)
            return
        for match in matches:
            saved = match.entry
            if saved.id == entry.id or not contradicts(entry.answer, saved.answer):
                continue
            await self._posts.note_in_case_thread(
                session, conversation,
                texts.knowledge_conflict(saved.id, saved.question, saved.answer, entry.answer),
                key=conflict_key(conversation.id, saved.id))

    # clicks ----------------------------------------------------------------------------------
    async def entry_words(self, entry_id: int) -> tuple[str, str]:
        async with self._sessions() as session:
            entry = await self._entry(session, entry_id)
            if entry.status not in ("proposed", "saved"):
                raise StaleAction(texts.knowledge_not_pending(entry.id, entry.status, None))
            return entry.question, entry.answer

    async def save(self, *, entry_id: int, user_id: str, name: str,
                   question: str | None = None, answer: str | None = None) -> int:
        """Save a proposal (with the staff member's corrections); the case's id."""
        async with self._sessions() as session:
            entry = await self._entry(session, entry_id)
            words_given = question is not None and answer is not None
            edited = words_given and (question or "", answer or "") != (entry.question,
                                                                        entry.answer)
            if words_given and entry.status == "saved":  # the modal of `kb edit`
                if not edited:
                    return entry.conversation_id or 0
                return await self._edit_saved(session, entry, question or "", answer or "")
            if edited:
                await knowledge.edit(session, entry_id, question=question or "",
                                     answer=answer or "")
            if not await knowledge.change_status(session, entry_id, from_statuses=("proposed",),
                                                 to="saved", by=user_id, by_name=name):
                await session.rollback()
                raise StaleAction(await self._not_pending(entry_id))
            await session.refresh(entry)
            await self._close_card(session, entry, texts.knowledge_saved(name, entry_id, edited))
            await self._queue_embedding(session, entry)
            await session.commit()
            return entry.conversation_id or 0

    async def discard(self, *, entry_id: int, user_id: str, name: str) -> int:
        async with self._sessions() as session:
            entry = await self._entry(session, entry_id)
            if not await knowledge.change_status(session, entry_id, from_statuses=("proposed",),
                                                 to="discarded", by=user_id, by_name=name):
                await session.rollback()
                raise StaleAction(await self._not_pending(entry_id))
            await self._close_card(session, entry, texts.knowledge_discarded(name, entry_id))
            await session.commit()
            return entry.conversation_id or 0

    async def _edit_saved(self, session: AsyncSession, entry: KnowledgeEntry, question: str,
                          answer: str) -> int:
        if not await knowledge.edit(session, entry.id, question=question, answer=answer):
            await session.rollback()
            raise StaleAction(await self._not_pending(entry.id))
        await session.refresh(entry)
        await self._queue_embedding(session, entry)
        await session.commit()
        return entry.conversation_id or 0

    async def _queue_embedding(self, session: AsyncSession, entry: KnowledgeEntry) -> None:
        if self._base.embedding_model is not None and entry.conversation_id is not None:
            await work_items.add_work(session, conversation_id=entry.conversation_id,
                                      kind=EMBED, payload={"entry_id": entry.id})

    async def embed(self, item: WorkItem) -> None:
        """The worker's `kb-embed`: the saved entry's question placed by the embedding model
        (a model failure fails the item, which the worker retries)."""
        async with self._sessions() as session:
            entry = await knowledge.get_entry(session, int(item.payload["entry_id"]))
        if entry is None or entry.status != "saved" or self._base.embedding_model is None:
            return
        vector = await self._base.embed(entry.question)
        async with self._sessions() as session:
            await knowledge.set_embedding(session, entry.id, question=entry.question,
                                          vector=vector or [],
                                          model=self._base.embedding_model)
            await session.commit()

    async def _close_card(self, session: AsyncSession, entry: KnowledgeEntry,
                          outcome: str) -> None:
        card = await find_post(session, proposal_key(entry.id))
        if card is None or entry.conversation_id is None:
            return
        await self._posts.update_support_post(
            session, entry.conversation_id, key=f"kb-closed:{entry.id}",
            of_key=card.key, ts=card.slack_ts, text=outcome,
            blocks=knowledge_outcome_blocks(header=card.args.get("text", ""),
                                            question=entry.question, answer=entry.answer,
                                            outcome=outcome))
        await wake(session, entry.conversation_id)

    async def _entry(self, session: AsyncSession, entry_id: int) -> KnowledgeEntry:
        entry = await knowledge.get_entry(session, entry_id)
        if entry is None:
            raise BadCommand(texts.knowledge_unknown(str(entry_id)))
        return entry

    async def _not_pending(self, entry_id: int) -> str:
        async with self._sessions() as session:
            entry = await knowledge.get_entry(session, entry_id)
        status = entry.status if entry else "removed"
        by = entry.saved_by_name if entry and entry.status == "saved" else None
        return texts.knowledge_not_pending(entry_id, status, by)

    # /handoff kb -------------------------------------------------------------------------------
    async def command(self, args: list[str], *, user_id: str) -> str:
        """`kb list`, `kb show N`, `kb retire N`, `kb expire N <date>` (edit opens a modal)."""
        verb = args[0].lower() if args else "list"
        if verb == "list" and len(args) <= 1:
            return await self._list()
        if len(args) < 2 or not args[1].lstrip("#").isdigit():
            raise BadCommand(texts.knowledge_usage(self._command))
        entry_id = int(args[1].lstrip("#"))
        if verb == "show" and len(args) == 2:
            return await self._show(entry_id)
        if verb == "retire" and len(args) == 2:
            async with self._sessions() as session:
                await self._entry(session, entry_id)
                if not await knowledge.change_status(session, entry_id,
                                                     from_statuses=("saved", "proposed"),
                                                     to="retired", by=user_id):
                    raise StaleAction(await self._not_pending(entry_id))
                await session.commit()
            return f"Knowledge entry #{entry_id} is retired; the bot no longer uses it."
        if verb == "expire" and len(args) == 3:
            expires = parse_expiry(args[2])
            async with self._sessions() as session:
                await self._entry(session, entry_id)
                await knowledge.set_expiry(session, entry_id, expires)
                await session.commit()
            when = "never expires" if expires is None else f"expires {expires:%Y-%m-%d}"
            return f"Knowledge entry #{entry_id} {when}."
        raise BadCommand(texts.knowledge_usage(self._command))

    async def _list(self) -> str:
        async with self._sessions() as session:
            entries = await knowledge.list_entries(session, statuses=("saved", "proposed"))
            uses = await knowledge.use_counts(session, [e.id for e in entries])
        if not entries:
            return "No knowledge entries yet: they are proposed when cases are resolved."
        now = utcnow()
        lines = ["*Knowledge entries*"]
        for entry in entries:
            state = entry.status
            if entry.expires_at is not None:
                state += (" · expired" if entry.expires_at <= now
                          else f" · expires {entry.expires_at:%Y-%m-%d}")
            lines.append(f"• #{entry.id} {neutralise_mentions(entry.question)[:120]} "
                         f"({state}, used {uses.get(entry.id, 0)}×)")
        return "\n".join(lines)

    async def _show(self, entry_id: int) -> str:
        async with self._sessions() as session:
            entry = await self._entry(session, entry_id)
            uses = (await knowledge.use_counts(session, [entry_id])).get(entry_id, 0)
            case_number = await knowledge.case_number_of(session, entry)
        lines = [f"*Knowledge entry #{entry.id}* · {entry.status}",
                 neutralise_mentions(texts.knowledge_entry_text(entry.question, entry.answer))]
        if case_number:
            lines.append(f"From case #{case_number}")
        if entry.saved_by:
            lines.append(f"Saved by {texts.who(entry.saved_by)} on {entry.saved_at:%Y-%m-%d}")
        if entry.expires_at is not None:
            lines.append(f"Expires {entry.expires_at:%Y-%m-%d}")
        if self._base.embedding_model is not None and entry.status == "saved":
            lines.append("Embedded" if entry.embedding else "Not embedded yet")
        lines.append(f"Used {uses}×")
        return "\n".join(lines)
