"""litellm's request set-up for an OpenAI-compatible model on the event loop's own thread.

`litellm.acompletion` builds each request with its synchronous `completion` (parameters, the
provider's request body, its client) and runs that in the loop's default executor, a thread;
`litellm.aembedding` likewise with `embedding`.
For a provider whose calls are async that set-up is only Python, which holds the GIL whether
it runs on a thread or on the loop; on a thread it costs a hand-over of the GIL both ways,
and under a burst the thread waits for a busy loop to let go of the GIL (up to its 5 ms switch
interval) while the answer waits for the thread. `SetUpOnLoop`, installed as the loop's
default executor by `run_model_set_up_on_loop`, runs the set-up of an `openai` model (OpenAI
itself and every OpenAI-compatible server: vLLM, Ollama, a LiteLLM proxy, the sandbox) at
once, on the loop. Other providers' set-up may block on a network call (a cloud credential's
refresh: Vertex AI, Bedrock, Azure AD), so theirs, and everything else handed to the default
executor (`asyncio.to_thread`, DNS lookups), still goes to the executor's threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any

import litellm
import litellm.main

ON_LOOP_PROVIDERS = frozenset({"openai"})
SET_UPS = (litellm.main.completion, litellm.main.embedding)


@functools.lru_cache(maxsize=256)
def _provider(model: str) -> str | None:
    try:
        return litellm.get_llm_provider(model=model)[1]
    except Exception:  # noqa: BLE001 - litellm raises plain Exceptions for names it can't route
        return None  # litellm's own call will say so, on a thread as before


def set_up_on_loop(fn: Callable[..., Any]) -> bool:
    """True for litellm's request set-up of a model in `ON_LOOP_PROVIDERS`: what
    `acompletion` hands the executor is `partial(context.run, partial(completion, ...))`
    (`aembedding`: `embedding`), the model among the keywords."""
    if not isinstance(fn, functools.partial) or not fn.args:
        return False
    call = fn.args[0]
    if not isinstance(call, functools.partial) or call.func not in SET_UPS:
        return False
    model = call.keywords.get("model")
    return isinstance(model, str) and _provider(model) in ON_LOOP_PROVIDERS


class SetUpOnLoop(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that runs litellm's set-up for an OpenAI-compatible model at once, on the
    calling thread (the loop's), and everything else on its threads."""

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        if not set_up_on_loop(fn):
            return super().submit(fn, *args, **kwargs)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting caller, as a thread's
            done.set_exception(error)
        return done


def run_model_set_up_on_loop() -> None:
    """Make `SetUpOnLoop` the running loop's default executor (once a process, at start)."""
    asyncio.get_running_loop().set_default_executor(SetUpOnLoop(thread_name_prefix="asyncio"))
