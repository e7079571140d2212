"""Durations from config text and business-hours arithmetic for reminder and escalation timers.

`parse_duration` reads values such as `90s` or `1h30m`. `BusinessHours` answers "is support open
now", "when does it open next" and "when has N hours of business time passed", in the configured
IANA time zone and across nights, weekends, holidays and DST changes. `always_open()` gives the same
interface for deployments without business hours, where business time is plain elapsed time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION_FORMAT = "expected a duration such as 90s, 10m, 2h or 1h30m"
_DURATION_PATTERN = re.compile(
    r"(?:(?P<w>\d+)w)?\s*(?:(?P<d>\d+)d)?\s*(?:(?P<h>\d+)h)?\s*(?:(?P<m>\d+)m)?\s*(?:(?P<s>\d+)s)?",
    re.ASCII,
)
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int) -> timedelta:
    """Parse `90s`, `10m`, `2h`, `1d`, `1w`, `1h30m` or plain seconds (`"45"`, `45`)."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return _seconds(text, text)
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: {_DURATION_FORMAT}")
    value = text.strip().lower()
    if value.isascii() and value.isdigit():
        return _seconds(int(value), text)
    match = _DURATION_PATTERN.fullmatch(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ValueError(f"invalid duration {text!r}: {_DURATION_FORMAT}")
    parts = match.groupdict().items()
    total = sum(int(amount) * _UNIT_SECONDS[unit] for unit, amount in parts if amount)
    return _seconds(total, text)


def _seconds(seconds: int, text: str | int) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError as error:
        raise ValueError(f"duration {text!r} is too long") from error


@runtime_checkable
class WorkingTime(Protocol):
    """When support works: business hours, or always (no business hours configured)."""

    def is_open(self, at: datetime) -> bool: ...

    def next_open(self, at: datetime) -> datetime: ...

    def add(self, at: datetime, duration: timedelta) -> datetime: ...


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {at.isoformat()}")


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in one IANA time zone: weekdays (0=Mon..6=Sun), daily start/end, holidays.

    Hours and holidays are local wall-clock times in `timezone`; business time is real elapsed time
    inside those hours, so 9:00-17:00 is 8 hours even on DST change days. Results are UTC-aware.
    """

    timezone: str
    days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if not self.days:
            raise ValueError("business hours need at least one working day")
        if not self.days <= set(range(7)):
            raise ValueError(f"days must be 0 (Monday) to 6 (Sunday), got {sorted(self.days)}")
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (aware, any zone) falls inside business hours."""
        _require_aware(at)
        interval = self._interval(at.astimezone(self._zone).date())
        return interval is not None and interval[0] <= at < interval[1]

    def next_open(self, at: datetime) -> datetime:
        """`at` itself if open, else the next opening instant; UTC-aware either way."""
        opening, _ = next(self._intervals_from(at))
        return max(opening, at.astimezone(UTC))

    def add(self, at: datetime, duration: timedelta) -> datetime:
        """The UTC instant at which `duration` of business time has elapsed after `at`."""
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        _require_aware(at)
        at = at.astimezone(UTC)
        if not duration:
            return at
        remaining = duration
        for opening, closing in self._intervals_from(at):
            opening = max(opening, at)
            available = closing - opening
            if remaining <= available:
                return opening + remaining
            remaining -= available
        raise AssertionError("unreachable: _intervals_from is infinite")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from `start` to `end`; negative when `end` is before `start`."""
        _require_aware(start)
        _require_aware(end)
        if end < start:
            return -self.business_time_between(end, start)
        total = timedelta(0)
        for opening, closing in self._intervals_from(start):
            if opening >= end:
                break
            total += min(closing, end) - max(opening, start)
        return total

    def _interval(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC opening interval of local date `day`, or None when closed all day."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        opening = datetime.combine(day, self.start, tzinfo=self._zone).astimezone(UTC)
        closing = datetime.combine(day, self.end, tzinfo=self._zone).astimezone(UTC)
        return (opening, closing) if opening < closing else None

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals (UTC) in order, starting with the first that closes after `at`."""
        _require_aware(at)
        day = at.astimezone(self._zone).date()
        closed_days = 0
        while True:
            interval = self._interval(day)
            day += timedelta(days=1)
            if interval is None:
                closed_days += 1
                if closed_days > 7 * (len(self.holidays) + 1):
                    raise ValueError("business hours never open")
                continue
            closed_days = 0
            if interval[1] > at:
                yield interval


class AlwaysOpen:
    """Working time without business hours: always open, business time is elapsed time."""

    def is_open(self, at: datetime) -> bool:
        _require_aware(at)
        return True

    def next_open(self, at: datetime) -> datetime:
        _require_aware(at)
        return at.astimezone(UTC)

    def add(self, at: datetime, duration: timedelta) -> datetime:
        _require_aware(at)
        return at.astimezone(UTC) + duration

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        _require_aware(start)
        _require_aware(end)
        return end - start

    def __repr__(self) -> str:
        return "AlwaysOpen()"


def always_open() -> AlwaysOpen:
    """Working time for deployments with no business hours configured."""
    return AlwaysOpen()


class HoursSettings(Protocol):
    """The shape of `timers.business_hours` in app.yaml (`bot.config.BusinessHoursSettings`)."""

    timezone: str
    days: list[str]
    start: time
    end: time
    holidays: list[str]


DAY_NUMBERS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

def parse_holiday(text: str) -> date:
    """`2026-12-25` → that date; anything else is a ValueError naming the value."""
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(f"holiday {text!r} is not a date such as 2026-12-25") from None


def business_hours(settings: HoursSettings) -> BusinessHours:
    """The `BusinessHours` of `timers.business_hours`; ValueError when they cannot be used."""
    unknown = [day for day in settings.days if day not in DAY_NUMBERS]
    if unknown:
        raise ValueError(f"unknown day names {unknown}; use mon, tue, wed, thu, fri, sat, sun")
    return BusinessHours(
        timezone=settings.timezone,
        days=frozenset(DAY_NUMBERS[day] for day in settings.days),
        start=_naive(settings.start),
        end=_naive(settings.end),
        holidays=frozenset(parse_holiday(day) for day in settings.holidays),
    )


def _naive(value: time) -> time:
    # Hours are wall-clock times in the configured zone; an offset on them would be ambiguous.
    return value.replace(tzinfo=None)
