"""Issue 10: odd or broken payloads never crash the bot and never lose a customer's message.

Text a database cannot hold is stored cleaned and answered; a body Bolt cannot read gets 400
(401 when its signature is wrong) with one warning and no traceback; words that live only in
blocks or attachments are read; a message with only files gets a plain reply.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.toolkit import texts
from sandbox import slack_payloads
from sandbox.model_server import Reply, last_user_text
from storage.models import Message
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import stored_messages


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in caplog.text


def warnings_naming(caplog: pytest.LogCaptureFixture, event_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and event_id in r.getMessage()]


def answer_with_what_was_read(request: dict[str, Any]) -> Reply:
    return Reply(f"I read: {last_user_text(request)}")


async def customer_sends(slack, **fields: Any) -> str:
    """A customer's message with exactly these fields (no words in `text` unless given)."""
    channel = slack.ws.channel(CUSTOMERS)
    message = {"type": "message", "user": CUSTOMER, "ts": slack.ws.next_ts(), "text": "",
               **fields}
    slack.ws.store(channel, message)
    result = await slack.send_event(slack_payloads.message_event(slack.ws, channel, message))
    assert result.status == 200
    return message["ts"]


async def message_count(bot) -> int:
    async with bot.services.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Message))).scalar_one()


async def test_nul_and_lone_surrogate_are_stored_cleaned_and_answered(bot, slack, model,
                                                                     warnings_log):
    model.script(answer_with_what_was_read, answer_with_what_was_read)
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello\x00world")
    second = await slack.user_posts(CUSTOMERS, CUSTOMER, "broken \ud800 text")

    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=first))["text"] == (
        "I read: helloworld")
    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=second))["text"] == (
        "I read: broken \ufffd text")
    await bot.services.idle()
    stored = [m.text for m in await stored_messages(bot) if m.role == "user"]
    assert stored == ["helloworld", "broken \ufffd text"]
    for ts in (first, second):
        [delivery] = [d for d in slack.deliveries if d.payload.get("event", {}).get("ts") == ts]
        assert delivery.status == 200
        assert len(warnings_naming(warnings_log, delivery.event_id)) == 1
    assert_no_traceback(warnings_log)


async def test_unreadable_bodies_get_400_and_one_warning_without_traceback(bot, slack, model,
                                                                          warnings_log):
    broken = await slack.send_raw_body(
        b'{"type": "event_callback", "event_id": "Ev0BROKEN1", "event": {"text": "hi')
    not_an_object = await slack.send_raw_body(b'["event_callback"]')
    broken_form = await slack.send_raw_body(b"payload=%7B%22type%22%3A+%22block_actions",
                                            content_type="application/x-www-form-urlencoded")
    forged = await slack.send_raw_body(b'{"event_id": "Ev0FORGED1", ', signed=False)

    assert [broken.status, not_an_object.status, broken_form.status] == [400, 400, 400]
    assert broken.headers.get("X-Slack-No-Retry") == "1"
    assert forged.status == 401  # the signature is checked first
    assert len(warnings_naming(warnings_log, "Ev0BROKEN1")) == 1
    assert warnings_naming(warnings_log, "Ev0FORGED1") == []
    assert_no_traceback(warnings_log)
    await bot.services.idle()
    assert await message_count(bot) == 0 and model.requests == []

    # The bot is unharmed: the next good message is answered.
    model.script(Reply("still here"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "anyone?")
    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=ts))["text"] == "still here"


async def test_words_only_in_blocks_or_attachments_are_answered(bot, slack, model):
    model.script(answer_with_what_was_read, answer_with_what_was_read)
    in_blocks = await customer_sends(slack, blocks=[{
        "type": "rich_text", "block_id": "b1", "elements": [{
            "type": "rich_text_section", "elements": [
                {"type": "text", "text": "Where is order "},
                {"type": "text", "text": "42", "style": {"bold": True}},
                {"type": "text", "text": "?"}]}]}])
    in_attachment = await customer_sends(slack, attachments=[{
        "pretext": "Forwarded from billing", "fallback": "[invoice]",
        "text": "Invoice 42 charges me twice"}])

    first = await slack.wait_for_message(CUSTOMERS, thread_ts=in_blocks)
    second = await slack.wait_for_message(CUSTOMERS, thread_ts=in_attachment)

    assert first["text"] == "I read: Where is order 42?"
    assert second["text"] == "I read: Forwarded from billing\nInvoice 42 charges me twice"


async def test_files_only_message_gets_a_plain_reply_and_staff_are_not_bothered(bot, slack,
                                                                               model):
    ts = await customer_sends(slack, subtype="file_share", upload=False, files=[
        {"id": "F0INVOICE", "name": "invoice.pdf", "mimetype": "application/pdf"}])

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    assert reply["text"] == texts.cannot_read_files()
    assert model.requests == []
    assert bot_posts(slack, SUPPORT) == []
    assert slack.calls_to("reactions.add") == []
    [stored] = await stored_messages(bot)
    assert stored.text == texts.message_without_words(["invoice.pdf"])

    # Nothing is lost: when the customer writes words, the model sees the file was sent.
    model.script(Reply("Please paste the invoice number."))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Did you get it?", thread_ts=ts)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: "invoice number" in m["text"])
    users = [m["content"] for m in model.requests[0]["messages"] if m["role"] == "user"]
    assert users == [texts.message_without_words(["invoice.pdf"]), "Did you get it?"]
