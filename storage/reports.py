"""The figures of `python -m bot report`: what happened to the conversations opened in a period.

A conversation counts in the period it was opened in, with everything that happened to it since
(answers, handoffs, model calls), so that figures per case add up. A case *needed a person* when
the model asked staff (askHuman), the case was transferred to the team (transferToHuman, a
router), or a staff member took it over (took, was assigned, answered in the thread). The *first
human answer* is the earliest staff answer to an askHuman question or staff reply relayed to
the customer, counted from the conversation's start; *resolution* is when it was resolved
(`/handoff resolve`, ✅). *Ratings* are the satisfaction prompts sent when cases were resolved
and the customers' clicks (3 good, 2 OK, 1 bad); the average is over the given ratings.
*Answer feedback* is the 👍/👎 clicks on bot answers made in the period, per week (by click time).
Percentiles use the nearest-rank method (p90 of 10 values is the 9th).

*Without a person*, per week (weeks start on Monday, UTC, by when the case was opened) is the
share of conversations that did not need a person: the number a support lead watches to see
the bot learn. *Knowledge*: the cases where the model cited a saved entry, and the entries
cited most in the period (`storage.knowledge`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import knowledge
from storage.models import (
    AnswerFeedback,
    AssignmentChange,
    Conversation,
    HumanRequest,
    KnowledgeUse,
    Message,
    Rating,
    utcnow,
)


@dataclass
class CaseFigures:
    conversation_id: int
    case_number: int | None
    opened_at: datetime
    asked: bool = False
    transferred: bool = False
    taken_over: bool = False
    first_human_answer_at: datetime | None = None
    resolved_at: datetime | None = None
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    ratings_asked: int = 0
    scores: list[int] = field(default_factory=list)
    from_knowledge: bool = False

    @property
    def week(self) -> date:
        """The Monday (UTC) of the week the case was opened in."""
        day = self.opened_at.date()
        return day - timedelta(days=day.weekday())

    @property
    def needed_person(self) -> bool:
        return self.asked or self.transferred or self.taken_over

    @property
    def first_human_answer_seconds(self) -> float | None:
        if self.first_human_answer_at is None:
            return None
        return max(0.0, (self.first_human_answer_at - self.opened_at).total_seconds())

    @property
    def resolution_seconds(self) -> float | None:
        if self.resolved_at is None:
            return None
        return max(0.0, (self.resolved_at - self.opened_at).total_seconds())


@dataclass(frozen=True)
class Spread:
    """How many values, their median and 90th percentile (None without values)."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls(0, None, None)
        ordered = sorted(values)
        rank = max(1, math.ceil(0.9 * len(ordered)))
        return cls(len(ordered), float(statistics.median(ordered)), float(ordered[rank - 1]))


@dataclass(frozen=True)
class Week:
    """The cases opened in one week (starting Monday) and how many needed no person."""

    starts: date
    conversations: int
    without_person: int

    @property
    def without_person_share(self) -> float | None:
        return self.without_person / self.conversations if self.conversations else None


@dataclass(frozen=True)
class EntryUses:
    entry_id: int
    question: str
    uses: int


@dataclass
class FeedbackWeek:
    """👍/👎 clicks on bot answers in one week (Monday 00:00 UTC onwards)."""

    week_of: date
    up: int = 0
    down: int = 0


@dataclass
class Report:
    since: datetime
    until: datetime
    cases: list[CaseFigures] = field(default_factory=list)
    # Clicks made in the period (on any answer), by week, oldest first.
    feedback_weeks: list[FeedbackWeek] = field(default_factory=list)

    @property
    def feedback_up(self) -> int:
        return sum(week.up for week in self.feedback_weeks)

    @property
    def feedback_down(self) -> int:
        return sum(week.down for week in self.feedback_weeks)
    # The knowledge entries the model cited most in the period, most first.
    top_entries: list[EntryUses] = field(default_factory=list)

    @property
    def without_person(self) -> int:
        return self.conversations - self.needed_person

    @property
    def weeks(self) -> list[Week]:
        """Per week, oldest first: conversations and those answered without a person."""
        weeks: dict[date, list[CaseFigures]] = {}
        for case in self.cases:
            weeks.setdefault(case.week, []).append(case)
        return [Week(starts, len(cases), sum(1 for c in cases if not c.needed_person))
                for starts, cases in sorted(weeks.items())]

    @property
    def from_knowledge(self) -> int:
        """Cases where the model cited a saved knowledge entry."""
        return self._count("from_knowledge")

    @property
    def conversations(self) -> int:
        return len(self.cases)

    def _count(self, attribute: str) -> int:
        return sum(1 for case in self.cases if getattr(case, attribute))

    @property
    def needed_person(self) -> int:
        return self._count("needed_person")

    @property
    def needed_person_share(self) -> float | None:
        return self.needed_person / self.conversations if self.cases else None

    @property
    def asked(self) -> int:
        return self._count("asked")

    @property
    def transferred(self) -> int:
        return self._count("transferred")

    @property
    def taken_over(self) -> int:
        return self._count("taken_over")

    @property
    def resolved(self) -> int:
        return sum(1 for case in self.cases if case.resolved_at is not None)

    @property
    def first_human_answer(self) -> Spread:
        return Spread.of([s for c in self.cases
                          if (s := c.first_human_answer_seconds) is not None])

    @property
    def resolution(self) -> Spread:
        return Spread.of([s for c in self.cases if (s := c.resolution_seconds) is not None])

    @property
    def model_calls(self) -> int:
        return sum(case.model_calls for case in self.cases)

    @property
    def prompt_tokens(self) -> int:
        return sum(case.prompt_tokens for case in self.cases)

    @property
    def completion_tokens(self) -> int:
        return sum(case.completion_tokens for case in self.cases)

    @property
    def cost_usd(self) -> float:
        return sum(case.cost_usd for case in self.cases)

    @property
    def unpriced_calls(self) -> int:
        return sum(case.unpriced_calls for case in self.cases)

    @property
    def ratings_asked(self) -> int:
        return sum(case.ratings_asked for case in self.cases)

    @property
    def ratings(self) -> list[int]:
        return [score for case in self.cases for score in case.scores]

    def ratings_of(self, score: int) -> int:
        return sum(1 for given in self.ratings if given == score)

    @property
    def ratings_average(self) -> float | None:
        given = self.ratings
        return sum(given) / len(given) if given else None

    @property
    def tokens_per_case(self) -> float | None:
        if not self.cases:
            return None
        return (self.prompt_tokens + self.completion_tokens) / self.conversations

    @property
    def cost_per_case(self) -> float | None:
        return self.cost_usd / self.conversations if self.cases else None


def _is_human(meta: dict[str, object] | None) -> bool:
    return isinstance(meta, dict) and meta.get("provider") == "human"


async def build_report(session: AsyncSession, *, since: datetime,
                       until: datetime | None = None) -> Report:
    """The figures of the conversations opened from `since` (to `until`, default now)."""
    until = until or utcnow()
    rows = (await session.execute(
        select(Conversation.id, Conversation.case_number, Conversation.created_at,
               Conversation.status, Conversation.resolved_at)
        .where(Conversation.created_at >= since, Conversation.created_at <= until)
        .order_by(Conversation.id))).all()
    cases = {row.id: CaseFigures(row.id, row.case_number, row.created_at,
                                 resolved_at=row.resolved_at if row.status == "resolved"
                                 else None)
             for row in rows}
    report = Report(since=since, until=until, cases=list(cases.values()),
                    feedback_weeks=await _feedback_weeks(session, since, until))
    report.top_entries = [EntryUses(*row) for row in await knowledge.top_used(
        session, since=since, until=until)]
    if not cases:
        return report
    ids = list(cases)

    def earliest(case: CaseFigures, when: datetime | None) -> None:
        if when is not None and (case.first_human_answer_at is None
                                 or when < case.first_human_answer_at):
            case.first_human_answer_at = when

    for chunk in _chunks(ids):
        requests = await session.execute(
            select(HumanRequest.conversation_id, HumanRequest.status, HumanRequest.answered_at)
            .where(HumanRequest.conversation_id.in_(chunk)))
        for conversation_id, status, answered_at in requests:
            case = cases[conversation_id]
            case.asked = True
            if status == "answered":
                earliest(case, answered_at)
        changes = await session.execute(
            select(AssignmentChange.conversation_id, AssignmentChange.to_assignee)
            .where(AssignmentChange.conversation_id.in_(chunk)))
        for conversation_id, to in changes:
            if to == "humans":
                cases[conversation_id].transferred = True
            elif to != "bot":
                cases[conversation_id].taken_over = True
        staff_replies = await session.execute(
            select(Message.conversation_id, Message.created_at, Message.meta)
            .where(Message.conversation_id.in_(chunk), Message.role == "assistant",
                   Message.status == "success", Message.slack_user_id.is_not(None)))
        for conversation_id, created_at, meta in staff_replies:
            if _is_human(meta):
                earliest(cases[conversation_id], created_at)
        calls = await session.execute(
            select(Message.conversation_id, Message.prompt_tokens, Message.completion_tokens,
                   Message.cost_usd)
            .where(Message.conversation_id.in_(chunk), Message.model.is_not(None)))
        for conversation_id, prompt, completion, cost in calls:
            case = cases[conversation_id]
            case.model_calls += 1
            case.prompt_tokens += prompt or 0
            case.completion_tokens += completion or 0
            if cost is None:
                case.unpriced_calls += 1
            else:
                case.cost_usd += cost
        cited = await session.execute(
            select(KnowledgeUse.conversation_id).where(KnowledgeUse.conversation_id.in_(chunk)))
        for (conversation_id,) in cited:
            cases[conversation_id].from_knowledge = True
        prompts = await session.execute(
            select(Rating.conversation_id, Rating.score)
            .where(Rating.conversation_id.in_(chunk)))
        for conversation_id, score in prompts:
            case = cases[conversation_id]
            case.ratings_asked += 1
            if score is not None:
                case.scores.append(score)
    return report


async def _feedback_weeks(session: AsyncSession, since: datetime, until: datetime
                          ) -> list[FeedbackWeek]:
    """The 👍/👎 clicks made from `since` to `until`, counted per week (in Python: the same
    on every database)."""
    weeks: dict[date, FeedbackWeek] = {}
    clicks = await session.execute(
        select(AnswerFeedback.created_at, AnswerFeedback.positive)
        .where(AnswerFeedback.created_at >= since, AnswerFeedback.created_at <= until))
    for created_at, positive in clicks:
        day = created_at.date()
        monday = day - timedelta(days=day.weekday())
        week = weeks.setdefault(monday, FeedbackWeek(monday))
        if positive:
            week.up += 1
        else:
            week.down += 1
    return [weeks[monday] for monday in sorted(weeks)]


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[start:start + size] for start in range(0, len(ids), size)]
