"""Issue 6: outside business hours the customer is told when the team is back, and follow-up
timers count business time only."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.toolkit import texts
from bot.toolkit.due_times import working_time
from tests.conftest import CUSTOMERS
from tests.e2e.followup_helpers import ask, the_request, timers
from tests.e2e.helpers import conversation

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def closed_today_and_tomorrow() -> dict:
    """Business hours open only the day after tomorrow (UTC): certainly closed now."""
    day = DAYS[(datetime.now(UTC).weekday() + 2) % 7]
    return {"timezone": "UTC", "days": [day], "start": "09:00", "end": "17:00"}


async def test_out_of_hours_the_customer_hears_when_the_team_is_back(start, slack, model):
    bot = await start(timers=timers(remind_after="1s", escalate_after="2s", give_up_after="3s",
                                    notify_customer_after="1s",
                                    business_hours=closed_today_and_tomorrow()))
    working = working_time(bot.services.config)
    ts, _ = await ask(slack, model, holding="Let me check with the team.")

    request = await the_request(bot)
    opening = working.next_open(request.created_at)
    assert opening > request.created_at
    away = texts.team_away_note(texts.team_back_at(opening, "UTC"))
    note = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                        predicate=lambda m: m["text"] == away)
    assert note and f"{opening:%H:%M} (UTC)" in note["text"]

    # Due times count from the opening: seconds of business time, days of wall time away.
    timers_ = bot.services.config.timers
    assert request.remind_at == opening + timers_.remind_after
    assert request.escalate_at == opening + timers_.escalate_after
    assert request.give_up_at == opening + timers_.give_up_after
    # So nothing is due yet, though every timer's wall-clock duration has passed.
    assert await bot.followups.run_due() == 0
    await bot.services.idle()
    customer_posts = [m["text"] for m in slack.messages(CUSTOMERS, thread_ts=ts)]
    assert customer_posts.count(away) == 1
    assert texts.customer_holding_notice() not in customer_posts
    assert (await conversation(bot)).customer_notified_at is None


def zone_where_it_is_noon() -> str:
    """An Etc/GMT zone whose local time is 12:xx now (Etc/GMT-3 is UTC+3)."""
    ahead = 12 - datetime.now(UTC).hour
    return "Etc/GMT" if ahead == 0 else f"Etc/GMT{-ahead:+d}"


async def test_in_hours_there_is_no_away_note(start, slack, model):
    office = {"timezone": zone_where_it_is_noon(), "days": DAYS, "start": "09:00", "end": "17:00"}
    bot = await start(timers=timers(business_hours=office))
    assert working_time(bot.services.config).is_open(datetime.now(UTC))
    ts, _ = await ask(slack, model, holding="Let me check with the team.")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    assert [m["text"] for m in slack.messages(CUSTOMERS, thread_ts=ts)][1:] == [
        "Let me check with the team."]
