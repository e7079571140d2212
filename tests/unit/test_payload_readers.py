"""Pure readers of Slack payloads and of what staff type, on recorded shapes."""

from __future__ import annotations

import pytest

from bot.errors import BadCommand
from bot.listeners.commands import Command, parse_command
from bot.process.http_server import body_problem
from bot.toolkit.ids import CaseButtonValue
from bot.toolkit.payloads import (
    attached_file_names,
    author_name_from_event,
    clean_payload,
    clean_text,
    display_name,
    is_new_human_message,
    is_thread_reply,
    message_dedupe_key,
    message_words,
    strip_bot_mention,
    thread_root_ts,
)
from bot.usecases.human_answers import parse_numbered_reply


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


def test_words_of_a_message_come_from_its_text_first():
    assert message_words(CUSTOMER_MESSAGE) == "hello"
    assert message_words({**RICH_TEXT_ONLY, "text": "typed text"}) == "typed text"


def test_words_of_rich_text_blocks_read_like_slack_text():
    assert message_words(RICH_TEXT_ONLY) == (
        "Hi <@U0STAFF>, is 2 &lt; 3 &amp; <https://e.com|the docs> ok? :wave:\n"
        "• first\n"
        "• second\n"
        "&gt; quoted <!here>\n"
        "```x = 1```")


def test_words_of_sections_and_attachments():
    section = {"text": "", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Q&A"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Order* 42"},
         "fields": [{"type": "mrkdwn", "text": "late"}]},
        {"type": "image", "image_url": "https://e.com/x.png", "alt_text": "x"}]}
    assert message_words(section) == "Q&amp;A\n*Order* 42\nlate"
    assert message_words(ATTACHMENTS_ONLY) == (
        "Forwarded from Globex\nInvoice 42\nThe invoice is wrong\nAmount: $10")
    assert message_words({"text": "", "attachments": [{"fallback": "only fallback"}]}) == (
        "only fallback")


def test_messages_without_words_and_their_files():
    assert message_words(FILES_ONLY) == ""
    assert attached_file_names(FILES_ONLY) == ["invoice.pdf", "Screenshot"]
    assert attached_file_names(CUSTOMER_MESSAGE) == []
    # Odd shapes read as no words, never as a crash.
    for odd in ({"text": None}, {"text": 3, "blocks": "x", "attachments": [None, 1]},
                {"blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_list"}]}]}):
        assert message_words(odd) == ""


def test_text_a_database_cannot_hold_is_cleaned():
    assert clean_text("a\x00b") == "ab"
    assert clean_text("x\ud800y") == "x\ufffdy"
    assert clean_text("fine 😀 ünïcode") == "fine 😀 ünïcode"
    cleaned, changed = clean_payload({"event": {"text": "a\x00", "n": 1,
                                                "blocks": [{"k\udc00": ["\ud83d"]}]}})
    assert changed
    assert cleaned == {"event": {"text": "a", "n": 1, "blocks": [{"k\ufffd": ["\ufffd"]}]}}
    assert clean_payload({"text": "ok", "list": [1, None]}) == ({"text": "ok", "list": [1, None]},
                                                                 False)


def test_bodies_bolt_cannot_read():
    form = "application/x-www-form-urlencoded"
    assert body_problem(b'{"type": "event_callback"}', "application/json") is None
    assert body_problem(b"command=%2Fhandoff&text=list", form) is None
    assert body_problem(b'{"type": ', "application/json") == "the body is not valid JSON"
    assert body_problem(b"[1, 2]", "application/json") == "the body is not a JSON object"
    assert body_problem(b"payload=%7Bnot", form) == "the body is not valid JSON"
    assert body_problem(b"\xff\xfe", "application/json") == "the body is not UTF-8"


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
RICH_TEXT_ONLY = {
    "type": "message", "channel": "C0ACME", "user": "U0CUSTOMER", "text": "",
    "ts": "1700000000.000500", "blocks": [{"type": "rich_text", "block_id": "b1", "elements": [
        {"type": "rich_text_section", "elements": [
            {"type": "text", "text": "Hi "}, {"type": "user", "user_id": "U0STAFF"},
            {"type": "text", "text": ", is 2 < 3 & "},
            {"type": "link", "url": "https://e.com", "text": "the docs"},
            {"type": "text", "text": " ok? "}, {"type": "emoji", "name": "wave"}]},
        {"type": "rich_text_list", "style": "bullet", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "first"}]},
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "second"}]}]},
        {"type": "rich_text_quote", "elements": [
            {"type": "text", "text": "quoted "}, {"type": "broadcast", "range": "here"}]},
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = 1"}]},
    ]}],
}
ATTACHMENTS_ONLY = {
    "type": "message", "channel": "C0ACME", "user": "U0CUSTOMER", "text": "",
    "ts": "1700000000.000600", "attachments": [{
        "pretext": "Forwarded from Globex", "title": "Invoice 42",
        "text": "The invoice is wrong", "fallback": "[no preview]",
        "fields": [{"title": "Amount", "value": "$10", "short": True}]}],
}
FILES_ONLY = {
    "type": "message", "subtype": "file_share", "channel": "C0ACME", "user": "U0CUSTOMER",
    "text": "", "ts": "1700000000.000700", "upload": False,
    "files": [{"id": "F1", "name": "invoice.pdf", "mimetype": "application/pdf"},
              {"id": "F2", "title": "Screenshot", "mimetype": "image/png"}],
}


def test_case_button_values_carry_the_assignee_the_card_was_drawn_for() -> None:
    assert CaseButtonValue(7, "U0STAFF").encode() == "7:U0STAFF"
    assert CaseButtonValue.decode("7:humans") == CaseButtonValue(7, "humans")
    # Cards drawn before buttons carried it: no expectation.
    assert CaseButtonValue.decode("7") == CaseButtonValue(7, None)
    assert CaseButtonValue(7).encode() == "7"
