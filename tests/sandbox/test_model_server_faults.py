"""Fault injection of the sandbox model server, seen through litellm over loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest

from sandbox.model_server import Empty, Error, Forever, ModelServer, Reply, ToolCalls

ASK_HUMAN = {"type": "function", "function": {
    "name": "askHuman", "description": "Ask the support staff a question.",
    "parameters": {"type": "object", "properties": {"question": {"type": "string"}},
                   "required": ["question"]}}}


@pytest.fixture
async def srv() -> AsyncIterator[ModelServer]:
    server = ModelServer()
    await server.start()
    yield server
    await server.stop()


def ask(srv: ModelServer, text: str = "hi", **kwargs: Any) -> Any:
    return litellm.acompletion(
        model="openai/test", api_base=srv.base_url, api_key="x", num_retries=0, max_retries=0,
        tools=[ASK_HUMAN], messages=[{"role": "user", "content": text}], **kwargs)


async def test_empty_and_null_completions(srv: ModelServer) -> None:
    srv.script(Empty(), Empty(content=""))
    null = (await ask(srv)).choices[0]
    empty = (await ask(srv)).choices[0]
    assert null.message.content is None and not null.message.tool_calls
    assert null.finish_reason == "stop"
    assert empty.message.content == "" and not empty.message.tool_calls


async def test_malformed_tool_arguments_are_sent_verbatim(srv: ModelServer) -> None:
    srv.script(ToolCalls([("askHuman", '{"question": "Is order 42')]))
    call = (await ask(srv)).choices[0].message.tool_calls[0]
    assert call.function.name == "askHuman"
    assert call.function.arguments == '{"question": "Is order 42'


async def test_forever_step_is_never_used_up(srv: ModelServer) -> None:
    srv.script(Forever(ToolCalls([("noSuchTool", {})])))
    for _ in range(3):
        call = (await ask(srv)).choices[0].message.tool_calls[0]
        assert call.function.name == "noSuchTool"
    assert srv.pending_steps == 1
    srv.clear_script()
    srv.script(Reply("done"))
    assert (await ask(srv)).choices[0].message.content == "done"


async def test_forever_routed_step_leaves_other_requests_alone(srv: ModelServer) -> None:
    srv.script_for("loop", Forever(Empty()))
    srv.script(Reply("fine"))
    assert (await ask(srv, "loop please")).choices[0].message.content is None
    assert (await ask(srv, "other")).choices[0].message.content == "fine"
    assert (await ask(srv, "loop again")).choices[0].message.content is None


async def test_http_500_and_429_with_retry_after(srv: ModelServer) -> None:
    srv.script(Error(500), Error(429, retry_after=1))
    with pytest.raises(litellm.InternalServerError):
        await ask(srv)
    with pytest.raises(litellm.RateLimitError) as raised:
        await ask(srv)
    assert raised.value.response.headers["Retry-After"] == "1"
