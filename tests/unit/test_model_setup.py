"""litellm's request set-up for an OpenAI-compatible model runs on the event loop's thread
(`bot.agent.model_setup`); other providers' set-up, and everything else the loop's default
executor is handed, still runs on its threads. (No database: nothing here is stored.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import litellm
import pytest

from bot.agent import model as _model  # noqa: F401 - litellm's settings for the bot
from bot.agent.model_setup import SetUpOnLoop, run_model_set_up_on_loop

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def executor() -> AsyncIterator[SetUpOnLoop]:
    loop = asyncio.get_running_loop()
    run_model_set_up_on_loop()
    installed = loop._default_executor  # asyncio keeps it there; no public getter
    assert isinstance(installed, SetUpOnLoop)
    yield installed
    installed.shutdown(wait=True)


def threads_started(executor: SetUpOnLoop) -> int:
    return len(executor._threads)


async def test_an_openai_compatible_call_is_set_up_on_the_loop(executor):
    response = await litellm.acompletion(model="openai/support-model", messages=HI,
                                         mock_response="It is under Settings.")
    streamed = await litellm.acompletion(model="gpt-4o-mini", messages=HI, mock_response="ok",
                                         stream=True)
    chunks = [chunk async for chunk in streamed]

    assert response.choices[0].message.content == "It is under Settings."
    assert chunks
    assert threads_started(executor) == 0


async def test_an_openai_compatible_embedding_is_set_up_on_the_loop(executor):
    embedded = await litellm.aembedding(model="openai/text-embedding-3-small",
                                        input=["Where is the setting?"],
                                        mock_response=[0.25, 0.5])
    assert embedded.data[0]["embedding"] == [0.25, 0.5]
    assert threads_started(executor) == 0


async def test_a_set_up_that_fails_raises_to_the_caller_as_before(executor):
    with pytest.raises(Exception, match="has no attribute 'get'"):
        await litellm.acompletion(model="openai/support-model", messages="not a list",
                                  num_retries=0)
    assert threads_started(executor) == 0
    answered = await litellm.acompletion(model="openai/support-model", messages=HI,
                                         mock_response="still fine")
    assert answered.choices[0].message.content == "still fine"


async def test_other_providers_and_other_work_still_go_to_a_thread(executor):
    await litellm.acompletion(model="anthropic/claude-3-5-sonnet-20240620", messages=HI,
                              mock_response="ok")
    assert threads_started(executor) == 1  # its set-up may wait on a credential's refresh

    ran_on = await asyncio.to_thread(threading.get_ident)
    assert ran_on != threading.get_ident()
