"""Issue 6: business hours from app.yaml (`timers.business_hours`) and the due times they give."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.config import AppConfig, ConfigError, load_config, parse_config
from bot.toolkit import texts
from bot.toolkit.business_time import AlwaysOpen, BusinessHours, business_hours
from bot.toolkit.due_times import (
    next_reminder_at,
    request_due_times,
    working_time,
    working_zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")

APP_YAML = """
timers:
  remind_after: 10m
  escalate_after: 30m
  give_up_after: 4h
  business_hours:
    timezone: Europe/Berlin
    days: [mon, tue, wed, thu, fri]
    start: 9:00          # unquoted: YAML 1.1 reads this as the number 540
    end: "17:00"
    holidays: [2026-12-25, "2026-12-26"]
"""


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def load_config_text(text: str) -> AppConfig:
    return parse_config(yaml.safe_load(text))


def hours(**settings: object) -> BusinessHours:
    config = parse_config({"timers": {"business_hours": settings}})
    working = working_time(config)
    assert isinstance(working, BusinessHours)
    return working


@pytest.fixture
def office(tmp_path: Path) -> BusinessHours:
    path = tmp_path / "app.yaml"
    path.write_text(APP_YAML, encoding="utf-8")
    working = working_time(load_config(path))
    assert isinstance(working, BusinessHours)
    return working


def test_app_yaml_business_hours_become_business_hours(office: BusinessHours) -> None:
    assert office.timezone == "Europe/Berlin"
    assert office.days == frozenset({0, 1, 2, 3, 4})
    assert (office.start, office.end) == (time(9), time(17))
    assert office.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})


def test_without_business_hours_time_is_plain_elapsed_time() -> None:
    config = parse_config({})
    working = working_time(config)
    assert isinstance(working, AlwaysOpen)
    now = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # a Saturday night
    assert working.is_open(now)
    assert working.add(now, timedelta(minutes=10)) == now + timedelta(minutes=10)
    assert working_zone(config) == "UTC"


def test_friday_evening_counts_on_monday_morning(office: BusinessHours) -> None:
    friday = berlin(2026, 3, 13, 16, 30)
    assert office.add(friday, timedelta(hours=1)) == berlin(2026, 3, 16, 9, 30)


def test_weekends_are_closed(office: BusinessHours) -> None:
    saturday = berlin(2026, 3, 14, 12, 0)
    assert not office.is_open(saturday)
    assert office.next_open(saturday) == berlin(2026, 3, 16, 9, 0)
    assert office.is_open(berlin(2026, 3, 16, 9, 0))


def test_holidays_from_config_are_closed(office: BusinessHours) -> None:
    christmas_eve = berlin(2026, 12, 24, 16, 45)  # Thursday; Friday 25th is a holiday
    assert not office.is_open(berlin(2026, 12, 25, 10, 0))
    assert office.add(christmas_eve, timedelta(minutes=30)) == berlin(2026, 12, 28, 9, 15)


def test_dst_spring_forward_over_the_weekend(office: BusinessHours) -> None:
    # Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday 29 March 2026.
    friday = berlin(2026, 3, 27, 16, 0)
    due = office.add(friday, timedelta(hours=2))
    assert due == berlin(2026, 3, 30, 10, 0)
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert friday.astimezone(UTC) == datetime(2026, 3, 27, 15, 0, tzinfo=UTC)


def test_dst_fall_back_in_another_time_zone() -> None:
    # New York leaves EDT (UTC-4) for EST (UTC-5) on Sunday 1 November 2026.
    every_day = hours(timezone="America/New_York",
                      days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                      start="09:00", end="17:00")
    saturday = datetime(2026, 10, 31, 16, 0, tzinfo=NEW_YORK)
    due = every_day.add(saturday, timedelta(hours=2))
    assert due == datetime(2026, 11, 1, 10, 0, tzinfo=NEW_YORK)
    assert due == datetime(2026, 11, 1, 15, 0, tzinfo=UTC)


def test_hours_are_local_to_the_configured_time_zone() -> None:
    tokyo = hours(timezone="Asia/Tokyo")
    monday_late_utc = datetime(2026, 3, 16, 23, 30, tzinfo=UTC)  # Tuesday 08:30 in Tokyo
    assert not tokyo.is_open(monday_late_utc)
    assert tokyo.next_open(monday_late_utc) == datetime(2026, 3, 17, 9, 0, tzinfo=TOKYO)
    assert tokyo.next_open(monday_late_utc) == datetime(2026, 3, 17, 0, 0, tzinfo=UTC)
    assert hours(timezone="UTC").is_open(monday_late_utc) is False


def test_request_due_times_are_counted_in_business_hours(office: BusinessHours) -> None:
    config = load_config_text(APP_YAML)
    asked = berlin(2026, 3, 13, 16, 55)  # Friday, five minutes before closing
    due = request_due_times(config.timers, office, asked)
    assert due.remind_at == berlin(2026, 3, 16, 9, 5)
    assert due.escalate_at == berlin(2026, 3, 16, 9, 25)
    assert due.give_up_at == berlin(2026, 3, 16, 12, 55)
    # The next reminder counts from the one just sent, until max_reminders were sent.
    assert next_reminder_at(config.timers, office, now=berlin(2026, 3, 16, 9, 5),
                            reminders_sent=1) == berlin(2026, 3, 16, 9, 15)
    assert next_reminder_at(config.timers, office, now=berlin(2026, 3, 16, 9, 5),
                            reminders_sent=3) is None


def test_no_reminders_when_max_reminders_is_zero() -> None:
    config = parse_config({"timers": {"max_reminders": 0}})
    now = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    due = request_due_times(config.timers, working_time(config), now)
    assert due.remind_at is None
    assert due.escalate_at == now + timedelta(minutes=30)


def test_opening_time_is_shown_in_the_teams_time_zone() -> None:
    opening = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert texts.team_back_at(opening, "Europe/Berlin") == "Monday 30 March, 09:00 (Europe/Berlin)"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"holidays": ["Christmas"]}, "holiday 'Christmas' is not a date"),
        ({"start": "18:00", "end": "09:00"}, "must be before end"),
        ({"days": []}, "at least one working day"),
        ({"end": 99 * 60}, "expected a time"),
    ],
)
def test_unusable_business_hours_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"timers": {"business_hours": settings}})
    assert "timers.business_hours" in str(error.value) and message in str(error.value)


def test_unknown_day_names_are_config_errors() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"timers": {"business_hours": {"days": ["monday"]}}})
    assert "timers.business_hours.days.0" in str(error.value)


def test_check_interval_and_retention() -> None:
    timers = parse_config({"timers": {"check_every": 0.5, "retention": "3d"}}).timers
    assert timers.check_every == timedelta(seconds=0.5)
    assert timers.retention == timedelta(days=3)
    assert parse_config({}).timers.check_every == timedelta(seconds=15)
    with pytest.raises(ConfigError, match=r"timers\.check_every"):
        parse_config({"timers": {"check_every": "0s"}})


def test_business_hours_helper_takes_day_names() -> None:
    config = parse_config({"timers": {"business_hours": {"days": ["sat", "sun"]}}})
    working = business_hours(config.timers.business_hours)
    assert working.days == frozenset({5, 6})
