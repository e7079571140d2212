"""Duration parsing and business-hours arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.toolkit.business_time import (
    AlwaysOpen,
    BusinessHours,
    WorkingTime,
    always_open,
    parse_duration,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def office() -> BusinessHours:
    """Berlin office, Monday to Friday 9:00-17:00, Good Friday and Easter Monday 2024 off."""
    return BusinessHours(
        timezone="Europe/Berlin",
        days=WEEKDAYS,
        start=time(9),
        end=time(17),
        holidays=frozenset({date(2024, 3, 29), date(2024, 4, 1)}),
    )


# --- parse_duration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        (" 2H ", timedelta(hours=2)),
        ("45", timedelta(seconds=45)),
        ("0", timedelta(0)),
        (45, timedelta(seconds=45)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "1.5h", "-5", "10x", "h", "30m1h", "1 hour", -5, 1.5, None, True],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError) as error:
        parse_duration(text)  # type: ignore[arg-type]
    assert repr(text) in str(error.value)
    assert "expected a duration such as 90s, 10m, 2h or 1h30m" in str(error.value)


# --- BusinessHours -------------------------------------------------------------------------------


def test_weekend_is_skipped(office: BusinessHours) -> None:
    friday = berlin(2024, 3, 8, 16, 30)
    result = office.add(friday, timedelta(hours=1))
    assert result == berlin(2024, 3, 11, 9, 30)
    assert result.tzinfo is UTC
    assert not office.is_open(berlin(2024, 3, 9, 12))
    assert office.next_open(berlin(2024, 3, 9, 12)) == berlin(2024, 3, 11, 9)


def test_holidays_are_skipped(office: BusinessHours) -> None:
    thursday = berlin(2024, 3, 28, 16)
    assert office.add(thursday, timedelta(hours=2)) == berlin(2024, 4, 2, 10)
    assert not office.is_open(berlin(2024, 3, 29, 10))
    assert office.next_open(berlin(2024, 3, 29, 10)) == berlin(2024, 4, 2, 9)


def test_ending_exactly_at_closing_stays_on_that_day(office: BusinessHours) -> None:
    assert office.add(berlin(2024, 3, 5, 16, 30), timedelta(minutes=30)) == berlin(2024, 3, 5, 17)


def test_open_and_closing_boundaries(office: BusinessHours) -> None:
    opening, closing = berlin(2024, 3, 5, 9), berlin(2024, 3, 5, 17)
    assert office.is_open(opening)
    assert office.next_open(opening) == opening
    assert not office.is_open(closing)
    assert office.next_open(closing) == berlin(2024, 3, 6, 9)
    assert office.next_open(berlin(2024, 3, 5, 12)).tzinfo is UTC


def test_start_before_opening(office: BusinessHours) -> None:
    assert office.add(berlin(2024, 3, 5, 7), timedelta(minutes=30)) == berlin(2024, 3, 5, 9, 30)


def test_start_after_closing(office: BusinessHours) -> None:
    assert office.add(berlin(2024, 3, 5, 18), timedelta(minutes=30)) == berlin(2024, 3, 6, 9, 30)


def test_long_durations_span_several_days(office: BusinessHours) -> None:
    monday = berlin(2024, 3, 4, 9)
    assert office.add(monday, timedelta(hours=8)) == berlin(2024, 3, 4, 17)
    assert office.add(monday, timedelta(hours=41)) == berlin(2024, 3, 11, 10)


def test_zero_duration_is_the_start_itself(office: BusinessHours) -> None:
    saturday = berlin(2024, 3, 9, 12)
    assert office.add(saturday, timedelta(0)) == saturday


def test_new_york_hours_from_utc_instants() -> None:
    hours = BusinessHours(timezone="America/New_York", days=WEEKDAYS, start=time(9), end=time(17))
    monday_winter = datetime(2024, 1, 15, 13, 59, tzinfo=UTC)  # 8:59 EST
    assert not hours.is_open(monday_winter)
    assert hours.is_open(monday_winter + timedelta(minutes=1))
    assert hours.is_open(datetime(2024, 7, 15, 13, 30, tzinfo=UTC))  # 9:30 EDT
    late_monday = datetime(2024, 1, 16, 3, 0, tzinfo=UTC)  # Monday 22:00 EST, Tuesday in UTC
    assert hours.next_open(late_monday) == datetime(2024, 1, 16, 14, 0, tzinfo=UTC)
    friday_afternoon = datetime(2024, 1, 19, 21, 30, tzinfo=UTC)  # 16:30 EST
    monday_morning = datetime(2024, 1, 22, 14, 30, tzinfo=UTC)  # 9:30 EST
    assert hours.add(friday_afternoon, timedelta(hours=1)) == monday_morning
    tokyo = ZoneInfo("Asia/Tokyo")
    assert hours.is_open(datetime(2024, 1, 16, 1, 0, tzinfo=tokyo))  # Monday 11:00 EST
    assert not hours.is_open(datetime(2024, 1, 15, 22, 0, tzinfo=tokyo))  # Monday 08:00 EST


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2024, 3, 31), datetime(2024, 3, 31, 9, 0, tzinfo=UTC)),  # spring forward, CEST
        (date(2024, 10, 27), datetime(2024, 10, 27, 10, 0, tzinfo=UTC)),  # fall back, CET
    ],
)
def test_dst_change_days_in_berlin(day: date, expected_utc: datetime) -> None:
    hours = BusinessHours(timezone="Europe/Berlin", days=EVERY_DAY, start=time(9), end=time(17))
    request = datetime.combine(day, time(8), tzinfo=BERLIN)
    result = hours.add(request, timedelta(hours=2))
    assert result == datetime.combine(day, time(11), tzinfo=BERLIN)
    assert result == expected_utc
    midnight = datetime.combine(day, time(0), tzinfo=BERLIN)
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=BERLIN)
    assert hours.business_time_between(midnight, next_midnight) == timedelta(hours=8)
    assert hours.add(midnight, timedelta(hours=8)) == datetime.combine(day, time(17), tzinfo=BERLIN)


def test_dst_offset_is_taken_per_day() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", days=EVERY_DAY, start=time(9), end=time(17))
    saturday = berlin(2024, 3, 30, 16)  # CET, the night before the change
    assert hours.add(saturday, timedelta(hours=2)) == datetime(2024, 3, 31, 8, 0, tzinfo=UTC)
    assert hours.add(berlin(2024, 3, 30, 9), timedelta(hours=16)) == berlin(2024, 3, 31, 17)


@pytest.mark.parametrize(
    ("start", "duration"),
    [
        (berlin(2024, 3, 5, 10), timedelta(hours=3)),
        (berlin(2024, 3, 8, 16, 30), timedelta(hours=1)),
        (berlin(2024, 3, 9, 12), timedelta(hours=20, minutes=15)),
        (berlin(2024, 3, 28, 16), timedelta(hours=2)),
        (berlin(2024, 3, 5, 7), timedelta(minutes=1)),
    ],
)
def test_business_time_between_inverts_add(
    office: BusinessHours, start: datetime, duration: timedelta,
) -> None:
    end = office.add(start, duration)
    assert office.business_time_between(start, end) == duration
    assert office.business_time_between(end, start) == -duration


def test_business_time_between_outside_hours_is_zero(office: BusinessHours) -> None:
    assert office.business_time_between(berlin(2024, 3, 9, 8), berlin(2024, 3, 10, 20)) == (
        timedelta(0)
    )


def test_rejects_bad_input(office: BusinessHours) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        office.is_open(datetime(2024, 3, 5, 10))
    with pytest.raises(ValueError, match="negative"):
        office.add(berlin(2024, 3, 5, 10), timedelta(hours=-1))
    with pytest.raises(ValueError, match="time zone"):
        BusinessHours(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="before"):
        BusinessHours(timezone="UTC", start=time(17), end=time(9))
    with pytest.raises(ValueError, match="working day"):
        BusinessHours(timezone="UTC", days=frozenset())
    with pytest.raises(ValueError, match="0 \\(Monday\\) to 6"):
        BusinessHours(timezone="UTC", days=frozenset({7}))


def test_business_hours_are_hashable_values() -> None:
    assert BusinessHours(timezone="UTC") == BusinessHours(timezone="UTC")
    assert len({BusinessHours(timezone="UTC"), BusinessHours(timezone="UTC")}) == 1


# --- always_open ---------------------------------------------------------------------------------


def test_always_open_add_is_plain_addition() -> None:
    clock = always_open()
    at = datetime(2024, 3, 9, 23, 30, tzinfo=UTC)  # a Saturday night
    for duration in (timedelta(0), timedelta(minutes=10), timedelta(days=3, hours=5)):
        assert clock.add(at, duration) == at + duration
    assert clock.is_open(at)
    assert clock.next_open(at) == at
    assert clock.business_time_between(at, at + timedelta(hours=5)) == timedelta(hours=5)


def test_always_open_counts_elapsed_time_across_dst() -> None:
    before_change = berlin(2024, 3, 31, 1, 30)
    assert always_open().add(before_change, timedelta(hours=1)) == berlin(2024, 3, 31, 3, 30)


def test_both_satisfy_working_time(office: BusinessHours) -> None:
    assert isinstance(office, WorkingTime)
    assert isinstance(always_open(), WorkingTime)
    assert isinstance(always_open(), AlwaysOpen)
