"""Issue 15: `python -m bot run` is killed (SIGKILL) between two appends of an answer it is
streaming, and started again: the customer ends with one complete answer, the partial streamed
message finished in place (stopped, its text replaced), never a second answer beside it."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select

from sandbox.model_server import Reply
from storage.db import create_engine, create_session_factory
from storage.models import OutboxPost
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts
from tests.faults.helpers import wait_until
from tests.faults.test_process_killed import BotProcess

ANSWER = " ".join(f"Step {n}: open the settings page and check the option." for n in range(12))


@pytest.fixture
async def streaming_bot(tmp_path, database_url, slack, model):
    process = BotProcess(tmp_path, database_url, slack, model)
    config = yaml.safe_load(process.config.read_text())
    config["slack"]["stream_buffer_chars"] = 120
    process.config.write_text(yaml.safe_dump(config))
    yield process
    await process.stop()


async def test_killed_between_two_appends_the_customer_gets_one_complete_answer(
        streaming_bot, slack, model, database_url):
    model.default = lambda request: Reply(ANSWER)
    # The first append reaches Slack, then Slack holds its reply: the bot is killed while the
    # customer sees a half-written answer.
    slack.fail_next("chat.appendStream", error="internal_error", status=500, after_accept=True,
                    delay=60)
    await streaming_bot.start()
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I enable it?")

    def partial(posts):
        # Past the stream's first chunk: the held append has reached Slack, so the start
        # (and its ts, recorded before any append) is behind the bot.
        started = slack.calls_to("chat.startStream")
        return (len(posts) == 1 and posts[0].get("streaming") and started
                and len(posts[0]["text"]) > len(started[0].params.get("markdown_text") or ""))

    async def posts():
        return bot_posts(slack, CUSTOMERS, root)

    await wait_until(posts, partial, timeout=30)
    streaming_bot.kill()
    await streaming_bot.process.wait()
    assert ANSWER.startswith(bot_posts(slack, CUSTOMERS, root)[0]["text"])

    await streaming_bot.start()

    def finished(found):
        return any(not m.get("streaming") and m["text"] == ANSWER for m in found)

    await wait_until(posts, finished, timeout=60)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)

    async def rows():
        async with sessions() as session:
            return list((await session.execute(select(OutboxPost))).scalars())
    try:
        settled = await wait_until(
            rows, lambda found: not [r for r in found if r.status in ("pending", "streaming")],
            timeout=30)
    finally:
        await engine.dispose()

    [post] = bot_posts(slack, CUSTOMERS, root)
    assert post["text"] == ANSWER and not post.get("streaming")
    assert any(b["type"] == "context_actions" for b in post["blocks"])
    [stream] = [r for r in settled if r.method == "chat.startStream"]
    assert stream.slack_ts == post["ts"] and stream.status == "sent"
    # The partial message was finished in place: stopped, then its text replaced.
    [update] = [r for r in settled if r.method == "chat.update"]
    assert update.args["ts"] == post["ts"] and update.status == "sent"


async def test_killed_before_the_stream_start_was_recorded_leaves_no_second_answer(
        streaming_bot, slack, model):
    model.default = lambda request: Reply(ANSWER)
    # Slack starts the stream (the customer sees its first words) but its answer is held:
    # the bot dies without the stream's ts, which nothing else records.
    slack.fail_next("chat.startStream", error="internal_error", status=500, after_accept=True,
                    delay=60)
    await streaming_bot.start()
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I enable it?")

    async def posts():
        return bot_posts(slack, CUSTOMERS, root)

    await wait_until(posts, lambda found: len(found) == 1 and found[0].get("streaming"),
                     timeout=30)
    streaming_bot.kill()
    await streaming_bot.process.wait()

    await streaming_bot.start()
    # The restarted bot finds the message nothing accounts for, removes it, and posts the
    # answer whole: one answer in the thread.
    await wait_until(posts, lambda found: len(found) == 1 and found[0]["text"] == ANSWER
                     and not found[0].get("streaming"), timeout=60)
    assert slack.calls_to("chat.delete")
    [post] = bot_posts(slack, CUSTOMERS, root)
    assert any(b["type"] == "context_actions" for b in post.get("blocks") or [])
