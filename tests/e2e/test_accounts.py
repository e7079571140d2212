"""Issue 13: account context. A customer channel mapped to an account in app.yaml shows the
account (name, tier, notes; mentions neutralised) on its case card and question cards in
#support, and the account's tier may set its own follow-up times. Through the real app, on both
databases."""

from __future__ import annotations

from datetime import timedelta

from sandbox.model_server import Reply, ToolCalls
from storage.models import HumanRequest
from tests.conftest import CUSTOMER, CUSTOMERS, OTHER_CUSTOMERS, STAFF, SUPPORT
from tests.e2e.followup_helpers import QUESTION, ask, thread_posts_with, timers
from tests.e2e.helpers import all_rows

ACCOUNTS = {CUSTOMERS: {"name": "Acme <!channel>", "tier": "gold",
                        "notes": "Renewal in March; ask <@U0BOSS> before discounts"}}


async def test_the_question_card_shows_the_account_without_pinging_anyone(start, slack, model):
    await start(accounts=ACCOUNTS)
    _, post = await ask(slack, model)
    header = str(post["blocks"][0])
    assert "*Account:* Acme" in header and "tier gold" in header
    assert "Renewal in March" in header
    assert "<!channel>" not in str(post["blocks"]) and "<@U0BOSS>" not in str(post["blocks"])


async def test_the_case_card_shows_the_account_only_for_mapped_channels(start, slack, model):
    bot = await start(accounts=ACCOUNTS)
    for channel in (CUSTOMERS, OTHER_CUSTOMERS):
        model.script(Reply("bot answer"))
        ts = await slack.user_posts(channel, CUSTOMER, "hello")
        await slack.wait_for_message(channel, thread_ts=ts)
        await bot.services.idle()
        await slack.message_shortcut("case-take-shortcut", user=STAFF, channel=channel,
                                     message_ts=ts)
        await bot.services.idle()
    cards = [m for m in slack.messages(SUPPORT) if "Case #" in str(m.get("blocks"))]
    acme = next(m for m in cards if f"<#{CUSTOMERS}>" in str(m["blocks"]))
    globex = next(m for m in cards if f"<#{OTHER_CUSTOMERS}>" in str(m["blocks"]))
    header = acme["blocks"][0]["text"]["text"]
    assert "*Account:* Acme @\u2060channel · tier gold" in header
    assert "<!channel>" not in str(acme["blocks"])
    assert "Account:" not in str(globex["blocks"])


async def test_a_gold_account_is_reminded_on_its_tiers_timer(start, slack, model):
    bot = await start(accounts=ACCOUNTS,
                      timers=timers(remind_after="1h", tiers={"gold": {"remind_after": "1s"}}))
    _, post = await ask(slack, model)  # in the gold account's channel
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 1/3" in m["text"])
    # The same question from a channel without an account keeps the default hour.
    model.script(ToolCalls([("askHuman", {"question": QUESTION})]))
    await slack.user_posts(OTHER_CUSTOMERS, CUSTOMER, "Same question here")
    await slack.wait_for_message(SUPPORT, predicate=lambda m: OTHER_CUSTOMERS in str(m))
    await bot.services.idle()
    gold, default = await all_rows(bot, HumanRequest)
    assert gold.reminders_sent >= 1
    assert default.remind_at - default.created_at > timedelta(minutes=59)
    assert default.escalate_at - default.created_at > timedelta(hours=1, minutes=59)
    assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) >= 1
