"""Issue 4: the model asks staff in the support channel and continues with their answer."""

from __future__ import annotations

from sandbox.model_server import Reply, ToolCalls
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import conversation, requests, stored_messages

QUESTION = "Is order 1042 eligible for a refund after 40 days?"


async def ask_and_wait(slack, model, text="Can I get a refund for order 1042?"):
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text)
    post = await slack.wait_for_message(SUPPORT)
    return ts, post


async def test_single_question_round_trip(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": QUESTION})],
                           text="Let me check with the team."),
                 Reply("Good news: order 1042 can still be refunded."))
    ts, post = await ask_and_wait(slack, model)

    # Staff see one support thread naming the case, the customer, the channel and the question.
    blob = str(post["blocks"])
    assert "Case #1" in blob and "Carol Customer" in blob and f"<#{CUSTOMERS}>" in blob
    assert QUESTION in blob and "Can I get a refund for order 1042?" in blob
    assert "slack.com/archives/" in blob
    # The customer sees the model's holding line; no final answer yet.
    holding = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert holding["text"] == "Let me check with the team."

    await slack.user_posts(SUPPORT, STAFF, "Yes, we make an exception up to 60 days.",
                           thread_ts=post["ts"])
    final = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: "Good news" in m["text"])

    assert final["thread_ts"] == ts
    sent = model.requests[-1]["messages"]
    call_id = model.requests[0] and sent[-2]["tool_calls"][0]["id"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "askHuman"
    assert sent[-1] == {"role": "tool", "tool_call_id": call_id,
                        "content": "Yes, we make an exception up to 60 days."}
    [request] = await requests(bot)
    assert (request.status, request.answered_by, request.answered_by_name) == (
        "answered", STAFF, "Sam Staff")
    assert request.tool_call_id == call_id and request.support_ts == post["ts"]
    await bot.services.idle()
    roles = [(m.role, m.agent_name) for m in await stored_messages(bot)]
    assert roles == [("user", None), ("assistant", None), ("tool", "Sam Staff"),
                     ("assistant", None)]
    tool = (await stored_messages(bot))[2]
    assert tool.meta == {"provider": "human", "providerMetadata": {
        "human": {"name": "Sam Staff", "slack_user_id": STAFF}}}
    # The request post now says who answered, and has no buttons left.
    await slack.wait_for_call("chat.update")
    updated = next(m for m in slack.messages(SUPPORT) if m["ts"] == post["ts"])
    assert "answered by Sam Staff" in updated["text"]
    assert "Case #1" in str(updated["blocks"])  # the post that opened the case keeps its header
    assert "request-answer" not in str(updated["blocks"])  # the question's buttons are gone


async def test_two_questions_in_one_step_wait_for_both_answers(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Which plan is the customer on?"}),
                            ("askHuman", {"question": "Is there an open invoice?"})]),
                 Reply("You're on Pro and your invoice is settled."))
    ts, first = await ask_and_wait(slack, model, "What do I owe you?")
    second = await slack.wait_for_message(SUPPORT, thread_ts=first["ts"],
                                          predicate=lambda m: m["ts"] != first["ts"])
    assert "Question #2" in str(second["blocks"])

    await slack.user_posts(SUPPORT, STAFF, "#2 No, all paid.", thread_ts=first["ts"])
    await bot.services.idle()
    assert len(model.requests) == 1  # no continuation after the first answer

    await slack.user_posts(SUPPORT, STAFF, "Pro plan", thread_ts=first["ts"])
    final = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                         predicate=lambda m: "Pro" in m["text"])
    assert final
    tools = [m for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert sorted(t["content"] for t in tools) == ["No, all paid.", "Pro plan"]
    assert [r.status for r in await requests(bot)] == ["answered", "answered"]
    assert [r.answer for r in await requests(bot)] == ["Pro plan", "No, all paid."]


async def test_later_questions_of_a_case_go_into_the_same_support_thread(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "first?"})]), Reply("ok one"),
                 ToolCalls([("askHuman", {"question": "second?"})]), Reply("ok two"))
    ts, post = await ask_and_wait(slack, model, "one")
    await slack.user_posts(SUPPORT, STAFF, "answer one", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "ok one")
    await slack.user_posts(CUSTOMERS, CUSTOMER, "two", thread_ts=ts)
    follow = await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                          predicate=lambda m: "second?" in m["text"])
    assert follow["thread_ts"] == post["ts"]
    assert len([m for m in bot_posts(slack, SUPPORT) if m.get("thread_ts") in (None, m["ts"])]) == 1
    assert (await conversation(bot)).support_thread_ts == post["ts"]


async def test_customer_writing_while_a_question_is_pending(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": QUESTION})]),
                 Reply("Refund approved, and yes, to the same card."))
    ts, post = await ask_and_wait(slack, model)
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Also: will it go to the same card?",
                           thread_ts=ts)

    forwarded = await slack.wait_for_message(
        SUPPORT, thread_ts=post["ts"], predicate=lambda m: "same card" in m["text"])
    assert "Carol Customer" in forwarded["text"]
    await bot.services.idle()
    assert len(model.requests) == 1  # no competing model turn

    await slack.user_posts(SUPPORT, STAFF, "Approved, same card.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: "Refund approved" in m["text"])
    roles = [m["role"] for m in model.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert model.requests[-1]["messages"][-1]["content"] == "Also: will it go to the same card?"


async def test_a_question_pending_in_one_case_never_holds_another(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": QUESTION})]))
    await ask_and_wait(slack, model)
    await bot.services.idle()

    model.script(Reply("Yes, we ship to Mars."))
    other = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    answer = await slack.wait_for_message(CUSTOMERS, thread_ts=other)
    assert answer["text"] == "Yes, we ship to Mars."
