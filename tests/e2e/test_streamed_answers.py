"""Issue 15: the model's answer streams into the customer's thread as it is written
(chat.startStream / appendStream / stopStream, buffered), on top of the outbox: it arrives whole
and once, whatever Slack refuses; the thinking status shows while the model works. Played through
the real app (signed HTTP from the Slack emulator, the model server streaming SSE) on both
databases."""

from __future__ import annotations

from sqlalchemy import select

from bot.toolkit import texts
from bot.toolkit.ids import FEEDBACK_ACTION
from sandbox.model_server import Delay, Error, Reply, ToolCalls
from storage.models import Message, OutboxPost
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows
from tests.faults.helpers import wait_until

# Long enough for several appends at the test's buffer size, short of Slack's 12,000.
ANSWER = " ".join(f"Step {n}: open the settings page and check the option." for n in range(12))
BUFFER = 120
STREAMING = {"stream_buffer_chars": BUFFER}


def stream_calls(slack, since: int = 0):
    return [c for c in slack.calls[since:] if c.method.startswith("chat.") and
            c.method.endswith("Stream")]


def feedback_element(message):
    for block in message.get("blocks") or []:
        if block.get("type") == "context_actions":
            return block["elements"][0]
    return None


async def answered(bot, slack, text="How do I enable it?"):
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text)
    await finished_answer(slack, ts)
    await bot.services.idle()
    return ts


async def finished_answer(slack, ts, timeout=20.0):
    """The bot's answer in the thread once final: its feedback buttons are on (a streamed
    message gets them when it stops, which no new-message event announces)."""
    def done(posts):
        return any(feedback_element(m) is not None and not m.get("streaming") for m in posts)
    return await wait_until(lambda: _posts(slack, ts), done, timeout=timeout)


async def _posts(slack, ts):
    return bot_posts(slack, CUSTOMERS, ts)


async def test_a_streamed_answer_arrives_whole_once_with_few_calls(start, slack, model):
    bot = await start(slack=STREAMING)
    model.script(Reply(ANSWER))
    ts = await answered(bot, slack)

    [post] = bot_posts(slack, CUSTOMERS, ts)
    assert post["text"] == ANSWER
    calls = stream_calls(slack)
    methods = [c.method for c in calls]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
    assert methods.count("chat.startStream") == methods.count("chat.stopStream") == 1
    assert "chat.appendStream" in methods
    # Buffered: one call per BUFFER characters at most, never one per token.
    assert len(calls) <= len(ANSWER) // BUFFER + 2
    assert all(c.response["ok"] for c in calls)
    start_call = calls[0]
    assert start_call.params["recipient_user_id"] == CUSTOMER
    assert start_call.params["recipient_team_id"]
    assert start_call.params["thread_ts"] == ts
    # The answer was never also posted whole.
    assert not [c for c in slack.calls_to("chat.postMessage")
                if c.params.get("channel") == CUSTOMERS]
    # The stored answer is the whole text, its ts the streamed message's.
    [answer] = [m for m in await all_rows(bot, Message) if m.role == "assistant"]
    assert answer.text == ANSWER and answer.slack_ts == post["ts"]
    # The feedback buttons came with the stop.
    assert feedback_element(post)["action_id"] == FEEDBACK_ACTION
    assert not [r for r in await all_rows(bot, OutboxPost) if r.status in ("pending",
                                                                          "streaming")]


async def test_in_a_burst_answers_are_posted_whole_while_others_wait(start, slack, model):
    """Streaming is shed while conversations wait for a worker: the answer is called for
    unstreamed and posted whole; once nobody waits, answers stream again."""
    bot = await start(slack=STREAMING, workers={"concurrency": 1})
    model.script(Delay(1.5, Reply(ANSWER)), Reply(ANSWER), Reply(ANSWER))
    first = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I enable it?")
    await model.wait_for_request()
    # Two more customers while the only worker slot is busy: both wait for it.
    second = await slack.user_posts(CUSTOMERS, CUSTOMER, "And how do I turn it off?")
    third = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is the setting?")
    await wait_until(lambda: _waiting(bot), lambda waiting: waiting >= 2)
    for ts in (first, second, third):
        await finished_answer(slack, ts)
    await bot.services.idle()

    # The first call streamed (nobody waited), the second did not (the third waited behind
    # it), the third streamed again (nobody left waiting).
    assert [bool(r.get("stream")) for r in model.requests] == [True, False, True]
    assert [c.params["thread_ts"] for c in slack.calls_to("chat.startStream")] == [first, third]
    assert [c.params["thread_ts"] for c in slack.calls_to("chat.postMessage")
            if c.params.get("channel") == CUSTOMERS] == [second]
    # Each customer has the whole answer, once, with its feedback buttons.
    for ts in (first, second, third):
        [post] = bot_posts(slack, CUSTOMERS, ts)
        assert post["text"] == ANSWER and feedback_element(post) is not None


async def _waiting(bot) -> int:
    return bot.services.worker.waiting


async def test_a_short_answer_is_posted_whole_without_a_stream(start, slack, model):
    bot = await start(slack=STREAMING)
    model.script(Reply("Yes, it is on by default."))
    ts = await answered(bot, slack)
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == ["Yes, it is on by default."]
    assert not stream_calls(slack)


async def test_a_workspace_refusing_streaming_gets_one_whole_post(start, slack, model):
    slack.refuse_streaming(CUSTOMERS)
    bot = await start(slack=STREAMING)
    model.script(Reply(ANSWER))
    ts = await answered(bot, slack)

    [post] = bot_posts(slack, CUSTOMERS, ts)
    assert post["text"] == ANSWER
    [refused] = slack.calls_to("chat.startStream")
    assert refused.response == {"ok": False, "error": "channel_type_not_supported"}
    assert not slack.calls_to("chat.appendStream") and not slack.calls_to("chat.stopStream")
    [row] = [r for r in await all_rows(bot, OutboxPost) if r.method == "chat.startStream"]
    assert row.status == "skipped" and row.error == "channel_type_not_supported"


async def test_streaming_off_in_config_posts_the_answer_whole(start, slack, model):
    bot = await start(slack={"streaming": False})
    model.script(Reply(ANSWER))
    ts = await answered(bot, slack)
    [post] = bot_posts(slack, CUSTOMERS, ts)
    assert post["text"] == ANSWER
    assert not stream_calls(slack)
    [call] = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == CUSTOMERS]
    assert call.params["text"] == ANSWER


async def test_a_rate_limited_append_still_ends_with_the_whole_answer(start, slack, model):
    bot = await start(slack=STREAMING)
    slack.fail_next("chat.appendStream", retry_after=1)
    model.script(Reply(ANSWER))
    ts = await answered(bot, slack)

    [post] = bot_posts(slack, CUSTOMERS, ts)
    assert post["text"] == ANSWER
    limited = slack.calls_to("chat.appendStream")
    assert limited[0].status == 429
    # No append after Slack said to wait: the rest came with the stop, once.
    assert len(limited) == 1
    assert len(slack.calls_to("chat.stopStream")) == 1


async def test_a_rate_limited_stop_is_retried_after_retry_after(start, slack, model):
    bot = await start(slack=STREAMING)
    slack.fail_next("chat.stopStream", retry_after=1)
    model.script(Reply(ANSWER))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I enable it?")
    await slack.wait_for_call("chat.stopStream", lambda c: c.response.get("ok"), timeout=20)
    await bot.services.idle()
    [post] = bot_posts(slack, CUSTOMERS, ts)
    assert post["text"] == ANSWER and feedback_element(post) is not None
    assert [c.status for c in slack.calls_to("chat.stopStream")] == [429, 200]


async def test_a_model_failing_mid_stream_takes_the_partial_answer_back(start, slack, model):
    """The model stream breaks after text was shown: the customer is told a person follows
    up, and the half answer is removed (never left beside the note)."""
    bot = await start(slack=STREAMING, llm={"retries": 0})

    model.script(Reply(ANSWER))
    model.break_stream_after = 60  # chunks (words) sent before the connection drops
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I enable it?")
    await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == texts.model_failed_customer())
    await bot.services.idle()
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == [
        texts.model_failed_customer()]


async def test_tool_call_steps_are_not_streamed(start, slack, model):
    bot = await start(slack=STREAMING)
    model.script(ToolCalls([("askHuman", {"question": "Which plan is the customer on?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I get a discount?")
    await slack.wait_for_message(SUPPORT, predicate=lambda m: "Which plan" in str(m))
    await bot.services.idle()
    assert not stream_calls(slack)
    assert all(feedback_element(m) is None for m in bot_posts(slack, CUSTOMERS, ts))


async def test_a_quick_answer_costs_no_status_call(start, slack, model):
    bot = await start(slack=STREAMING)  # the status waits `holding_reaction_after` (2 s)
    model.script(Reply("Here you go."))
    await answered(bot, slack)
    assert not slack.calls_to("assistant.threads.setStatus")


async def test_thinking_status_while_the_model_works_cleared_by_the_answer(start, slack, model):
    # A slow answer: the status (like the ⏳) comes once the answer is late, here at once.
    bot = await start(slack={**STREAMING, "holding_reaction_after": "0s"})
    model.script(Delay(1.0, Reply("Here you go.")))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Where is my invoice?")
    call = await slack.wait_for_call("assistant.threads.setStatus")
    assert call.params["channel_id"] == CUSTOMERS and call.params["thread_ts"] == ts
    assert call.params["status"] == texts.thinking_status()
    assert call.params["loading_messages"] == texts.thinking_messages()
    await model.wait_for_request()
    assert slack.assistant_status.get((CUSTOMERS, ts)) == texts.thinking_status()
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    assert (CUSTOMERS, ts) not in slack.assistant_status


async def test_a_refused_or_rate_limited_status_never_holds_up_the_answer(start, slack, model):
    # Slack rate-limits the status once, then refuses it for good in this channel (no
    # assistant thread there): both answers arrive, and the refused channel is not asked again.
    bot = await start(slack={**STREAMING, "holding_reaction_after": "0s"})
    slack.fail_next("assistant.threads.setStatus")  # 429 with Retry-After
    model.script(Delay(0.5, Reply("First.")))
    first = await answered(bot, slack, "One?")
    assert [p["text"] for p in bot_posts(slack, CUSTOMERS, first)] == ["First."]

    slack.fail_next("assistant.threads.setStatus", error="channel_not_found")
    model.script(Delay(0.5, Reply("Second.")))
    second = await answered(bot, slack, "Two?")
    assert [p["text"] for p in bot_posts(slack, CUSTOMERS, second)] == ["Second."]
    asked = len(slack.calls_to("assistant.threads.setStatus"))

    model.script(Delay(0.5, Reply("Third.")))
    third = await answered(bot, slack, "Three?")
    assert [p["text"] for p in bot_posts(slack, CUSTOMERS, third)] == ["Third."]
    assert len(slack.calls_to("assistant.threads.setStatus")) == asked
    # The ⏳ stays the sign that the bot is on it.
    assert len(slack.calls_to("reactions.add")) == 3


async def test_model_error_gives_up_once_and_no_stream_is_left_open(start, slack, model):
    bot = await start(slack=STREAMING, llm={"retries": 0})
    model.script(Error(500))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Hello?")
    await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == texts.model_failed_customer())
    await bot.services.idle()
    assert len(bot_posts(slack, CUSTOMERS, ts)) == 1
    async with bot.services.sessions() as session:
        open_rows = (await session.execute(select(OutboxPost).where(
            OutboxPost.status == "streaming"))).scalars().all()
    assert not open_rows
