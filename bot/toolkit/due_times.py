"""Due times of follow-ups in the team's working time (business hours from app.yaml, or always).

`working_time()` picks the business hours of `timers.business_hours` or `always_open()`. The
agent stores the due times it computes here on each human request, and the follow-up rules
compute the next reminder, the customer's holding notice and the release of idle cases with the
same working time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.toolkit.business_time import AlwaysOpen, BusinessHours, always_open, business_hours

if TYPE_CHECKING:
    from bot.config import AppConfig, TimerSettings

WorkingTime = BusinessHours | AlwaysOpen


def working_time(config: AppConfig | TimerSettings) -> WorkingTime:
    """Business hours when app.yaml sets `timers.business_hours`, else always open."""
    timers: Any = getattr(config, "timers", config)
    if timers.business_hours is None:
        return always_open()
    return business_hours(timers.business_hours)


def working_zone(config: AppConfig | TimerSettings) -> str:
    """The time zone in which opening times are shown to customers."""
    timers: Any = getattr(config, "timers", config)
    return timers.business_hours.timezone if timers.business_hours else "UTC"


@dataclass(frozen=True)
class RequestDueTimes:
    remind_at: datetime | None
    escalate_at: datetime
    give_up_at: datetime


def request_due_times(timers: TimerSettings, working: WorkingTime,
                      now: datetime) -> RequestDueTimes:
    """When a question asked at `now` is first reminded, escalated and given up, in working
    time: asked on Friday evening, the first reminder comes on Monday morning."""
    return RequestDueTimes(
        remind_at=working.add(now, timers.remind_after) if timers.max_reminders > 0 else None,
        escalate_at=working.add(now, timers.escalate_after),
        give_up_at=working.add(now, timers.give_up_after),
    )


def next_reminder_at(timers: TimerSettings, working: WorkingTime, *, now: datetime,
                     reminders_sent: int) -> datetime | None:
    """The due time after the `reminders_sent`-th reminder, or None when that was the last."""
    if reminders_sent >= timers.max_reminders:
        return None
    return working.add(now, timers.remind_after)


def working_time_between(working: WorkingTime, start: datetime, end: datetime) -> timedelta:
    """How much working time passed from `start` to `end` (elapsed time when always open)."""
    return working.business_time_between(start, end)
