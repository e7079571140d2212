"""The sandbox model server through litellm (and the OpenAI SDK), over loopback."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest
from openai import AsyncOpenAI

from bot.agent.knowledge import Offered, distill_request, knowledge_context
from bot.toolkit import texts
from sandbox import offline_model
from sandbox.hash_embeddings import cosine
from sandbox.model_server import Delay, Error, ModelServer, Reply, ToolCalls

ASK_HUMAN = {"type": "function", "function": {
    "name": "askHuman", "description": "Ask the support staff a question.",
    "parameters": {"type": "object", "properties": {"question": {"type": "string"}},
                   "required": ["question"]}}}
TRANSFER = {"type": "function", "function": {
    "name": "transferToHuman", "description": "Hand the conversation to a person.",
    "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}}


@pytest.fixture
async def srv() -> AsyncIterator[ModelServer]:
    server = ModelServer()
    await server.start()
    yield server
    await server.stop()


def ask(srv: ModelServer, text: str, **kwargs: Any) -> Any:
    return litellm.acompletion(
        model="openai/test", api_base=srv.base_url, api_key="x", num_retries=0, max_retries=0,
        messages=[{"role": "system", "content": "You are support."},
                  {"role": "user", "content": text}], **kwargs)


async def test_scripted_text_reply(srv: ModelServer) -> None:
    srv.script(Reply("Hello from the script"))
    response = await ask(srv, "hi")
    assert response.choices[0].message.content == "Hello from the script"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens > 0
    assert response.usage.total_tokens == (response.usage.prompt_tokens
                                           + response.usage.completion_tokens)
    assert srv.requests[-1]["messages"][-1] == {"role": "user", "content": "hi"}


async def test_scripted_tool_calls_and_follow_up(srv: ModelServer) -> None:
    srv.script(ToolCalls([("askHuman", {"question": "Is order 42 shipped?"})]))
    response = await ask(srv, "Where is my order?", tools=[ASK_HUMAN])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.function.name == "askHuman"
    assert json.loads(call.function.arguments) == {"question": "Is order 42 shipped?"}
    assert srv.requests[-1]["tools"][0]["function"]["name"] == "askHuman"

    follow_up = await litellm.acompletion(
        model="openai/test", api_base=srv.base_url, api_key="x", tools=[ASK_HUMAN],
        messages=[{"role": "user", "content": "Where is my order?"},
                  {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                  {"role": "tool", "tool_call_id": call.id, "content": "It shipped today."}])
    assert follow_up.choices[0].message.content == "Our team says: It shipped today."


async def test_streaming_text_and_tool_calls(srv: ModelServer) -> None:
    srv.script(Reply("one two three four"),
               ToolCalls([("askHuman", {"question": "a rather long question to split"})]))
    stream = await ask(srv, "stream please", stream=True,
                       stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert len(chunks) > 3

    stream = await ask(srv, "tools please", stream=True, tools=[ASK_HUMAN])
    built = litellm.stream_chunk_builder([chunk async for chunk in stream])
    call = built.choices[0].message.tool_calls[0]
    assert call.function.name == "askHuman"
    assert json.loads(call.function.arguments) == {"question": "a rather long question to split"}
    assert built.choices[0].finish_reason == "tool_calls"


async def test_errors(srv: ModelServer) -> None:
    srv.script(Error(status=500, message="boom"), Error(status=429, retry_after=3))
    with pytest.raises(litellm.InternalServerError, match="boom"):
        await ask(srv, "hi")
    with pytest.raises(litellm.RateLimitError) as info:
        await ask(srv, "hi")
    assert info.value.response.headers["retry-after"] == "3"
    srv.required_key = "sk-right"
    with pytest.raises(litellm.AuthenticationError):
        await ask(srv, "hi")


async def test_routed_steps_delay_and_callable(srv: ModelServer) -> None:
    srv.script_for("[acme]", Delay(0.05, then=Reply("for acme")))
    srv.script_for("[globex]", lambda req: Reply(f"{len(req['messages'])} messages"))
    globex, acme = await asyncio.gather(ask(srv, "[globex] hi"), ask(srv, "[acme] hi"))
    assert acme.choices[0].message.content == "for acme"
    assert globex.choices[0].message.content == "2 messages"
    assert srv.pending_steps == 0

    async def later() -> None:
        await asyncio.sleep(0.05)
        srv.script(Reply("late"))
        await ask(srv, "marker-7")

    task = asyncio.create_task(later())
    seen = await srv.wait_for_request(lambda r: r["messages"][-1]["content"] == "marker-7")
    await task
    assert seen is srv.requests[-1]


async def test_embeddings_litellm_and_openai_base64(srv: ModelServer) -> None:
    result = await litellm.aembedding(model="openai/embed", api_base=srv.base_url, api_key="x",
                                      input=["How do I get a refund?", "I want my refund",
                                             "What are your opening hours?"])
    vectors = [item["embedding"] for item in result.data]
    assert [item["index"] for item in result.data] == [0, 1, 2]
    assert len(vectors[0]) == 256
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert abs(cosine(vectors[0], vectors[0]) - 1) < 1e-9

    openai = AsyncOpenAI(base_url=srv.base_url, api_key="x")  # asks for base64 by default
    single = await openai.embeddings.create(model="embed", input="How do I get a refund?")
    assert single.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    await openai.close()


def request(text: str, *tools: dict[str, Any], extra: list[dict[str, Any]] = ()) -> dict:
    return {"messages": [{"role": "user", "content": text}, *extra], "tools": list(tools)}


def test_offline_model_behaviour() -> None:
    faq = offline_model.respond(request("What are your opening hours?", ASK_HUMAN))
    assert isinstance(faq, Reply) and "Monday to Friday" in faq.text
    refund = offline_model.respond(request("<@U0BOT> can I get a refund?", ASK_HUMAN))
    assert isinstance(refund, Reply) and "30 days" in refund.text

    person = offline_model.respond(request("Can I talk to a human?", ASK_HUMAN, TRANSFER))
    assert isinstance(person, ToolCalls) and person.calls[0][0] == "transferToHuman"
    assert "reason" in person.calls[0][1]

    unknown = offline_model.respond(request("Is order 42 shipped?", ASK_HUMAN))
    assert isinstance(unknown, ToolCalls) and unknown.calls[0][0] == "askHuman"
    assert "order 42" in unknown.calls[0][1]["question"]
    assert isinstance(offline_model.respond(request("Is order 42 shipped?")), Reply)

    answered = offline_model.respond(request("Is order 42 shipped?", ASK_HUMAN, extra=[
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "askHuman", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"answer": "Yes, today."}'}]))
    assert answered == Reply("Our team says: Yes, today.")


async def test_offline_model_is_the_default(srv: ModelServer) -> None:
    response = await ask(srv, "How much does it cost?")
    assert "$10" in response.choices[0].message.content


def resumed_with(result: str) -> dict[str, Any]:
    return request("What are your opening hours for the Mars office?", ASK_HUMAN, extra=[
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "askHuman", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": result}])


def test_offline_model_follows_the_bots_instructions_and_never_repeats_them() -> None:
    alone = offline_model.respond(resumed_with(texts.bot_answers_alone_result("Sam")))
    assert isinstance(alone, Reply) and "Monday to Friday" in alone.text  # answers on its own
    cancelled = offline_model.respond(resumed_with(texts.request_cancelled_result("Sam")))
    assert isinstance(cancelled, Reply) and "Monday to Friday" in cancelled.text
    expired = offline_model.respond(resumed_with(texts.request_expired_result()))
    assert expired == Reply(offline_model.NO_ANSWER_YET)
    for reply in (alone, cancelled, expired):
        assert "Sam" not in reply.text and "Our team says" not in reply.text
        assert "instruction" not in reply.text


def test_offline_model_suggests_an_answer_when_it_has_a_plausible_guess() -> None:
    ask = {"type": "function", "function": {
        "name": "askHuman", "description": "Ask the support staff a question.",
        "parameters": {"type": "object", "properties": {
            "question": {"type": "string"}, "suggested_answer": {"type": "string"}},
            "required": ["question"]}}}
    shipping = offline_model.respond(request("Do you ship to Mars?", ask))
    assert isinstance(shipping, ToolCalls)
    name, arguments = shipping.calls[0]
    assert name == "askHuman" and "Mars" in arguments["question"]
    assert arguments["suggested_answer"] == offline_model.GUESSES["shipping"][1]
    # No guess, no suggestion; nor when the tool takes none.
    unsure = offline_model.respond(request("Is the blue one better?", ask))
    assert isinstance(unsure, ToolCalls) and "suggested_answer" not in unsure.calls[0][1]
    plain = offline_model.respond(request("Do you ship to Mars?", ASK_HUMAN))
    assert isinstance(plain, ToolCalls) and "suggested_answer" not in plain.calls[0][1]
def test_offline_model_distills_and_uses_knowledge() -> None:
    """The offline model proposes an entry from the distill request and, given entries, answers
    with the closest one and cites it (issue 16)."""
    step = offline_model.respond({"messages": distill_request(
        "How do I export invoices?\nthanks", ["Billing, then Invoices.", "Click PDF."])})
    assert json.loads(step.text) == {"question": "How do I export invoices?",
                                     "answer": "Billing, then Invoices. Click PDF."}
    context = knowledge_context([Offered(7, "Export invoices?", "Billing → Invoices.\nPDF.", 0.9),
                                 Offered(9, "Other?", "Other answer.", 0.6)])
    step = offline_model.respond({"messages": [
        {"role": "system", "content": "Be nice.\n\n" + context},
        {"role": "user", "content": "can I export invoices"}],
        "tools": [{"type": "function", "function": {"name": "askHuman"}}]})
    assert step.text == "Billing → Invoices.\nPDF. [kb:7]"
