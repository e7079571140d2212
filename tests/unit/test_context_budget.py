"""Issue 3: long threads stay within the token budget; tool calls keep their results."""

from __future__ import annotations

from bot.agent.context import build_model_messages, estimate_tokens
from storage.models import Message


def msg(order: int, step: int, role: str, text: str | None = None, **fields) -> Message:
    return Message(conversation_id=1, order=order, step_order=step, role=role, text=text,
                   status="success", **fields)


def test_old_turns_are_dropped_first_with_a_note():
    history = []
    for turn in range(40):
        history.append(msg(turn, 0, "user", f"question {turn} " + "x" * 400))
        history.append(msg(turn, 1, "assistant", f"answer {turn} " + "y" * 400))
    messages = build_model_messages(history, system_prompt="sys", budget_tokens=2000)
    assert sum(estimate_tokens(m) for m in messages) <= 2000 + 30
    assert messages[1]["role"] == "system" and "omitted" in messages[1]["content"]
    assert messages[-1]["content"].startswith("answer 39")
    assert any(m["content"].startswith("question 39") for m in messages)


def test_a_huge_single_message_is_truncated_not_an_error():
    history = [msg(0, 0, "user", "z" * 100_000)]
    messages = build_model_messages(history, system_prompt="sys", budget_tokens=1000)
    assert messages[-1]["role"] == "user"
    assert estimate_tokens(messages[-1]) <= 1000


def test_tool_results_follow_their_call_even_when_the_customer_wrote_in_between():
    call = msg(0, 1, "assistant", None,
               tool_calls=[{"id": "call_1", "name": "askHuman", "arguments": {"question": "q"}}])
    history = [
        msg(0, 0, "user", "can I get a refund?"),
        call,
        msg(0, 2, "tool", "yes, within 30 days", tool_call_id="call_1", tool_name="askHuman"),
        msg(1, 0, "user", "also, hello?"),
    ]
    messages = build_model_messages(history, system_prompt="sys", budget_tokens=5000)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[2]["tool_calls"][0]["id"] == "call_1"
    assert messages[3]["tool_call_id"] == "call_1"


def test_an_unanswered_tool_call_is_not_sent():
    call = msg(0, 1, "assistant", "let me check",
               tool_calls=[{"id": "call_1", "name": "askHuman", "arguments": {"question": "q"}}])
    messages = build_model_messages([msg(0, 0, "user", "hi"), call], system_prompt="s",
                                    budget_tokens=5000)
    assert messages[-1] == {"role": "assistant", "content": "let me check"}
