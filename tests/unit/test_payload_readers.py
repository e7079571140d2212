"""Pure readers of Slack payloads and of what staff type, on recorded shapes."""

from __future__ import annotations

import pytest

from bot.errors import BadCommand
from bot.services.human_requests import parse_numbered_reply
from bot.slack.commands import Command, parse_command
from bot.slack.payloads import (
    author_name_from_event,
    display_name,
    is_new_human_message,
    is_thread_reply,
    message_dedupe_key,
    strip_bot_mention,
    thread_root_ts,
)


def test_new_human_messages_and_everything_else():
    assert is_new_human_message(CUSTOMER_MESSAGE)
    assert is_new_human_message({**CUSTOMER_MESSAGE, "subtype": "thread_broadcast"})
    assert not is_new_human_message(BOT_MESSAGE)
    assert not is_new_human_message(EDIT)
    assert not is_new_human_message({**CUSTOMER_MESSAGE, "subtype": "channel_join"})
    assert not is_new_human_message({**CUSTOMER_MESSAGE, "subtype": "message_deleted"})


def test_thread_root_and_replies():
    assert thread_root_ts(CUSTOMER_MESSAGE) == "1700000000.000100"
    reply = {**CUSTOMER_MESSAGE, "ts": "1700000001.000200", "thread_ts": "1700000000.000100"}
    assert thread_root_ts(reply) == "1700000000.000100"
    assert is_thread_reply(reply) and not is_thread_reply(CUSTOMER_MESSAGE)


def test_one_key_per_message_for_message_and_app_mention():
    assert message_dedupe_key("C1", "1.2") == message_dedupe_key("C1", "1.2")
    assert message_dedupe_key("C1", "1.2") != message_dedupe_key("C2", "1.2")


def test_names_fall_back_to_what_the_event_carries():
    assert author_name_from_event(CONNECT_MESSAGE) == "Gus from Acme"
    assert display_name({"id": "U1", "team_id": "T2", "is_stranger": True}, "Gus") == "Gus"
    assert display_name({"profile": {"display_name": "", "real_name": "Sam Staff"}}, "x") == (
        "Sam Staff")
    assert strip_bot_mention("<@U0BOT> help me", "U0BOT") == "help me"


def test_numbered_staff_replies():
    assert parse_numbered_reply("#2 no, all paid") == (2, "no, all paid")
    assert parse_numbered_reply("#2: yes") == (2, "yes")
    assert parse_numbered_reply("Pro plan") == (None, "Pro plan")
    assert parse_numbered_reply("#3") == (None, "#3")


def test_handoff_command_parsing():
    assert parse_command("take 42", "/handoff") == Command("take", 42)
    assert parse_command("take #42", "/handoff") == Command("take", 42)
    assert parse_command("assign 7 <@U0SKY|sky>", "/handoff") == Command("assign", 7, "U0SKY")
    assert parse_command("", "/handoff") == Command("help")
    assert parse_command("list", "/handoff") == Command("list")
    for bad in ("take", "take 1 2", "assign 7 sky", "dance", "list all"):
        with pytest.raises(BadCommand):
            parse_command(bad, "/handoff")


CUSTOMER_MESSAGE = {
    "type": "message", "channel": "C0ACME", "user": "U0CUSTOMER", "text": "hello",
    "ts": "1700000000.000100", "team": "T0ACME", "channel_type": "channel",
    "client_msg_id": "0b0e3c1a-0000-0000-0000-000000000000",
}
BOT_MESSAGE = {
    "type": "message", "channel": "C0ACME", "user": "U0BOT", "bot_id": "B0BOT",
    "text": "answer", "ts": "1700000000.000200", "app_id": "A0APP",
}
EDIT = {
    "type": "message", "subtype": "message_changed", "hidden": True, "channel": "C0ACME",
    "ts": "1700000000.000300", "message": {"user": "U0CUSTOMER", "text": "hello (edited)"},
}
CONNECT_MESSAGE = {
    "type": "message", "channel": "C0ACME", "user": "U0GUEST", "text": "hi",
    "ts": "1700000000.000400", "user_team": "T0ACME", "source_team": "T0ACME",
    "user_profile": {"display_name": "Gus from Acme", "real_name": "Gus Guest", "name": "gus"},
}
