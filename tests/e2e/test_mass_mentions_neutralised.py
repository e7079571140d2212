"""Issue 10: words the bot did not write (a customer's, the model's) never ping anyone.

Broadcasts, user group and user mentions in them reach the customer channel and the support
channel as readable text without the mention syntax; the bot's own mentions (the case owner in
an assignment note) and staff words relayed to the customer stay as they were written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.model_server import Reply, ToolCalls, last_user_text
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT
from tests.e2e.helpers import support_thread_posts

MENTIONS = f"<!channel> <!here> <!everyone> <!subteam^S123> <@{STAFF}>"
WJ = "\u2060"  # what keeps `@channel` from being a mention
READABLE = f"@{WJ}channel @{WJ}here @{WJ}everyone @{WJ}S123 @{WJ}{STAFF}"
# Slack's mention syntax, or a typed broadcast word that a mrkdwn block could turn into one.
LIVE = re.compile(r"<@|<!(?!date\^)|(?<![\w@])@(?:channel|here|everyone)\b")


def live_mentions(post: dict[str, Any]) -> list[str]:
    """Every live mention in a post's text and blocks."""
    return LIVE.findall(json.dumps([post.get("text"), post.get("blocks")], ensure_ascii=False))


def echo(request: dict[str, Any]) -> Reply:
    """The model repeats what the customer wrote."""
    return Reply(f"You wrote: {last_user_text(request)}")


async def test_model_answer_echoing_the_customer_pings_nobody(bot, slack, model):
    model.script(echo)
    # As Slack delivers it: mentions in Slack's syntax, `&` and `<` already escaped.
    text = f"Hey {MENTIONS}, help &amp; &lt;fast&gt;"
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text)

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)

    assert reply["text"] == f"You wrote: Hey {READABLE}, help &amp; &lt;fast&gt;"
    assert live_mentions(reply) == []
    # The model itself saw what the customer wrote.
    assert model.requests[0]["messages"][-1]["content"] == text


async def test_ask_human_card_and_interim_copy_ping_nobody(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": f"They wrote {MENTIONS}; refund?"})],
                           text=f"Checking with {MENTIONS}"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, f"Refund please {MENTIONS}")

    card = await slack.wait_for_message(SUPPORT)
    holding = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert live_mentions(card) == [] and live_mentions(holding) == []
    blocks = json.dumps(card["blocks"], ensure_ascii=False)
    assert f"Refund please {READABLE}" in blocks  # the excerpt, still readable
    assert f"They wrote {READABLE}; refund?" in blocks  # the question

    await slack.user_posts(CUSTOMERS, CUSTOMER, f"Also {MENTIONS} hurry", thread_ts=ts)
    copy = await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                        predicate=lambda m: "hurry" in m["text"])
    assert live_mentions(copy) == []
    assert f"Also {READABLE} hurry" in copy["text"]
    await bot.services.idle()
    assert all(live_mentions(post) == [] for post in support_thread_posts(slack, card["ts"]))


async def test_forward_to_the_owner_pings_nobody_but_staff_words_stay(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Which plan?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "What plan am I on?")
    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    taken = await slack.slash_command("/handoff", "take 1", user=STAFF, channel=SUPPORT)
    assert taken.status == 200
    # The bot's own mention of the new owner stays a mention.
    note = await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                        predicate=lambda m: "→" in m["text"])
    assert f"<@{STAFF}>" in note["text"]

    await slack.user_posts(CUSTOMERS, CUSTOMER, f"Hello? {MENTIONS}", thread_ts=ts)
    forward = await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                           predicate=lambda m: "Hello?" in m["text"])
    assert live_mentions(forward) == []
    assert f"Hello? {READABLE}" in forward["text"]

    # Staff are trusted: their reply reaches the customer exactly as written.
    staff_text = f"<@{CUSTOMER}> you are on Pro & all set"
    await slack.user_posts(SUPPORT, STAFF, staff_text, thread_ts=card["ts"])
    relayed = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                           predicate=lambda m: "Pro" in m["text"])
    assert relayed["text"] == staff_text


async def test_transfer_reason_from_the_model_pings_nobody(bot, slack, model):
    model.script(ToolCalls([("transferToHuman", {"reason": f"asked for {MENTIONS}"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "A person please")

    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()

    assert live_mentions(card) == []
    assert f"asked for {READABLE}" in json.dumps(card["blocks"], ensure_ascii=False)
    assert all(live_mentions(post) == [] for post in support_thread_posts(slack, card["ts"]))
