"""Issue 13: `python -m bot report` on a scripted set of cases played through the real app
(signed HTTP events from the Slack emulator, the model server), on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from datetime import timedelta

import litellm
from sqlalchemy import select

from bot.process.report import as_table, figures
from sandbox.model_server import Reply, ToolCalls
from storage.models import Conversation, HumanRequest, Message, utcnow
from storage.reports import Spread, build_report
from tests.cli.helpers import ROOT
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT

MODEL = "openai/gpt-4o-mini"  # in litellm's cost table: every call has a price


async def command(slack, text):
    result = await slack.slash_command("/handoff", text, user=STAFF, channel=SUPPORT)
    assert result.status == 200, result.body
    return result.json()["text"]


async def play_cases(bot, slack, model) -> None:
    """Conversation 1 answered by the bot alone (staff never see it: no case number); 2 (case
    #1) the model asks staff, who answer; 3 (#2) the model transfers to the team; 4 (#3) staff
    take over from the customer's message, answer, and resolve."""
    services = bot.services
    model.script(Reply("We ship worldwide."))
    one = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Norway?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=one)
    await services.idle()

    model.script(ToolCalls([("askHuman", {"question": "Refund after 40 days?"})]),
                 Reply("Yes, you can have a refund."))
    two = await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I get a refund?")
    question = await slack.wait_for_message(SUPPORT)
    await services.idle()
    await slack.user_posts(SUPPORT, STAFF, "Yes, up to 60 days.", thread_ts=question["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=two,
                                 predicate=lambda m: "refund" in m["text"])
    await services.idle()

    model.script(ToolCalls([("transferToHuman", {"reason": "legal question"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I sue you?")
    await slack.wait_for_message(SUPPORT, predicate=lambda m: "#2" in str(m))
    await services.idle()

    model.script(Reply("Let me look into your invoice."))
    four = await slack.user_posts(CUSTOMERS, CUSTOMER, "My invoice is wrong.")
    await slack.wait_for_message(CUSTOMERS, thread_ts=four)
    await services.idle()
    await slack.message_shortcut("case-take-shortcut", user=STAFF, channel=CUSTOMERS,
                                 message_ts=four)
    await services.idle()
    thread = await slack.wait_for_message(SUPPORT, predicate=lambda m: "#3" in str(m))
    await slack.user_posts(SUPPORT, STAFF, "Fixed, a new invoice is on its way.",
                           thread_ts=thread.get("thread_ts") or thread["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=four,
                                 predicate=lambda m: "new invoice" in m["text"])
    await services.idle()
    assert "#3" in await command(slack, "resolve 3")
    await services.idle()


async def test_report_figures_of_scripted_cases(start, slack, model, database_url, tmp_path):
    bot = await start(llm={"model": MODEL})
    began = utcnow()
    await play_cases(bot, slack, model)

    async with bot.services.sessions() as session:
        report = await build_report(session, since=began - timedelta(minutes=1))
        cases = {c.id: c for c in (await session.execute(select(Conversation))).scalars()}
        answered = (await session.execute(select(HumanRequest))).scalar_one()
        calls = list((await session.execute(
            select(Message).where(Message.role == "assistant", Message.model.is_not(None))
        )).scalars())
        staff_reply = (await session.execute(select(Message).where(
            Message.conversation_id == 4, Message.role == "assistant",
            Message.slack_user_id == STAFF))).scalar_one()
        later = await build_report(session, since=utcnow() + timedelta(seconds=1))

    assert report.conversations == 4
    assert (report.needed_person, report.asked, report.transferred, report.taken_over) == (
        3, 1, 1, 1)
    assert report.needed_person_share == 0.75
    # First human answers: #2's answer to the question and #4's relayed reply.
    waits = sorted([(answered.answered_at - cases[2].created_at).total_seconds(),
                    (staff_reply.created_at - cases[4].created_at).total_seconds()])
    assert report.first_human_answer == Spread(2, sum(waits) / 2, waits[1])
    assert cases[4].status == "resolved" and cases[4].resolved_at is not None
    assert report.resolved == 1
    assert report.resolution == Spread.of(
        [(cases[4].resolved_at - cases[4].created_at).total_seconds()])
    # Every model call is priced from litellm's table and counted once per case.
    assert len(calls) == report.model_calls == 5
    expected = 0.0
    for call in calls:
        assert call.prompt_tokens and call.completion_tokens and call.cost_usd > 0
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=MODEL, prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens)
        assert abs(call.cost_usd - (prompt_cost + completion_cost)) < 1e-12
        expected += call.cost_usd
    assert abs(report.cost_usd - expected) < 1e-12
    assert report.prompt_tokens == sum(c.prompt_tokens for c in calls)
    assert report.cost_per_case == report.cost_usd / 4
    assert report.unpriced_calls == 0
    assert later.conversations == 0 and later.cost_per_case is None

    # The command line prints the same figures in each format.
    config_file = tmp_path / "report.yaml"
    config_file.write_text(f"database:\n  url: {database_url}\n")

    async def report_command(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "report", "--config", str(config_file), *args,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = await report_command("--since", "1h", "--format", "json")
    assert code == 0, err
    printed = json.loads(out)
    expected_figures = figures(report)
    for name in ("since", "until"):
        printed.pop(name), expected_figures.pop(name)
    assert printed == expected_figures
    assert printed["needed_person_share"] == 0.75 and printed["cost_usd"] > 0

    code, out, err = await report_command("--since", "1h", "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["metric", "value"]
    values = dict(rows[1:])
    assert values["conversations"] == "4" and values["taken_over"] == "1"
    assert values["model_calls"] == "5"

    code, out, err = await report_command("--since", "1h")
    assert code == 0, err
    assert "Conversations" in out and "Needed a person               3 (75%)" in out
    assert "median" in out and "$" in out

    code, out, err = await report_command("--since", "yesterday")
    assert code == 2 and "--since" in err


def test_spread_and_table_of_an_empty_period():
    assert Spread.of([]) == Spread(0, None, None)
    assert Spread.of([5, 1, 3]) == Spread(3, 3.0, 5.0)
    ten = [float(n) for n in range(1, 11)]
    assert Spread.of(ten) == Spread(10, 5.5, 9.0)


async def test_unknown_model_counts_tokens_at_no_cost(bot, slack, model):
    model.script(Reply("Hello."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Hi")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    async with bot.services.sessions() as session:
        report = await build_report(session, since=utcnow() - timedelta(hours=1))
    assert report.model_calls == 1 and report.prompt_tokens > 0
    assert report.cost_usd == 0.0 and report.unpriced_calls == 0
    assert "Model cost" in as_table(report)


async def test_router_calls_are_measured_on_the_customer_message(start, slack, model, tmp_path):
    """The classifier's and the embeddings router's calls on a message count in the report."""
    bot = await start(llm={"model": MODEL},
                      routing={"router": "classifier", "model": "openai/gpt-4o"})
    model.script(Reply('{"needs_human": false, "reason": ""}'), Reply("Opening hours: 9-5."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "When are you open?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    async with bot.services.sessions() as session:
        customer = (await session.execute(select(Message).where(Message.role == "user"))
                    ).scalar_one()
        report = await build_report(session, since=utcnow() - timedelta(hours=1))
    assert customer.model == "gpt-4o" and customer.prompt_tokens > 0
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o", prompt_tokens=customer.prompt_tokens,
        completion_tokens=customer.completion_tokens)
    assert abs(customer.cost_usd - (prompt_cost + completion_cost)) < 1e-12
    assert report.model_calls == 2 and report.cost_usd > customer.cost_usd

    examples = tmp_path / "examples.yaml"
    examples.write_text("- {text: 'speak to a manager now', route: human}\n"
                        "- {text: 'what are your opening hours', route: bot}\n")
    await bot.stop()
    embedding = await start(routing={"router": "embeddings", "examples_file": str(examples),
                                     "embedding_model": "openai/text-embedding-3-small"})
    model.script(Reply("We open at nine."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "what are your opening hours today")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: "nine" in m["text"])
    await embedding.services.idle()
    async with embedding.services.sessions() as session:
        routed = (await session.execute(select(Message).where(
            Message.role == "user", Message.text == "what are your opening hours today"))
        ).scalar_one()
    assert routed.prompt_tokens and routed.completion_tokens == 0 and routed.cost_usd > 0
    assert routed.cost_usd == litellm.cost_per_token(
        model="openai/text-embedding-3-small", prompt_tokens=routed.prompt_tokens,
        completion_tokens=0)[0]
