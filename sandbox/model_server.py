"""`ModelServer`: an OpenAI-compatible chat completions and embeddings server on loopback.

Answers come from a script of steps (`script`, `script_for`) and, when the script is empty,
from `default` (the offline model of `sandbox.offline_model`). Point litellm at it with
`model="openai/<anything>", api_base=srv.base_url, api_key="<anything>"`.

    srv = ModelServer()
    await srv.start()
    srv.script(ToolCalls([("askHuman", {"question": "Is order 42 shipped?"})]), Reply("Yes!"))
    ...
    await srv.stop()
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox import offline_model
from sandbox.hash_embeddings import DIMENSIONS, embed
from sandbox.model_steps import (
    Delay,
    Empty,
    Error,
    Forever,
    Reply,
    Responder,
    Step,
    ToolCalls,
    error_body,
    resolve,
)
from sandbox.waiters import Waiters

__all__ = ["Delay", "Empty", "Error", "Forever", "ModelServer", "Reply", "ToolCalls"]


def content_text(content: Any) -> str:
    """The text of a message `content` (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def prompt_tokens(request: dict[str, Any]) -> int:
    chars = 0
    for message in request.get("messages") or []:
        chars += len(content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            chars += len(str(call.get("function", {}).get("arguments", "")))
    return max(1, math.ceil(chars / 4))


def pieces(text: str, size: int = 12) -> list[str]:
    """Split text into streaming deltas: words, or fixed-size slices for JSON arguments."""
    words = re.findall(r"\S+\s*|\s+", text)
    return words if len(words) > 1 else [text[i:i + size] for i in range(0, len(text), size)]


class ModelServer:
    def __init__(self, *, default: Responder | None = None, required_key: str | None = None
                 ) -> None:
        self.default: Responder = default or offline_model.respond
        self.required_key = required_key
        self.requests: list[dict[str, Any]] = []
        # The next streamed answer drops its connection after this many chunks (a provider
        # failing mid-stream); used once.
        self.break_stream_after: int | None = None
        # Seconds between the chunks of a streamed answer (the sandbox's offline model writes
        # at a visible pace); 0 in tests.
        self.chunk_delay = 0.0
        self.embedding_requests: list[dict[str, Any]] = []
        self._script: deque[Step] = deque()
        self._routed: dict[str, deque[Step]] = {}
        self._waiters: Waiters[dict[str, Any]] = Waiters()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.host = "127.0.0.1"

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_post(f"{prefix}/embeddings", self._embeddings)
            app.router.add_get(f"{prefix}/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.host, self.port = host, self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # scripting ---------------------------------------------------------------------------
    def script(self, *steps: Step) -> None:
        """Queue steps answering the next requests in order (after any `script_for` match)."""
        self._script.extend(steps)

    def script_for(self, marker: str, *steps: Step) -> None:
        """Queue steps only for requests whose last user message contains `marker`."""
        self._routed.setdefault(marker, deque()).extend(steps)

    def clear_script(self) -> None:
        self._script.clear()
        self._routed.clear()

    @property
    def pending_steps(self) -> int:
        return len(self._script) + sum(len(q) for q in self._routed.values())

    def _next_step(self, request: dict[str, Any]) -> Step:
        text = last_user_text(request)
        for marker, queue in self._routed.items():
            if queue and marker in text:
                return _take(queue)
        if self._script:
            return _take(self._script)
        return self.default

    async def wait_for_request(self, predicate: Callable[[dict[str, Any]], bool] | None = None,
                               timeout: float = 10.0, *, since: int = 0) -> dict[str, Any]:
        """The first chat request (from index `since` of `requests`) matching `predicate`."""
        return await self._waiters.wait(predicate or (lambda r: True),
                                        existing=self.requests[since:], timeout=timeout,
                                        what="chat completion request")

    # handlers ----------------------------------------------------------------------------
    def _auth_error(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key or (self.required_key is not None and key != self.required_key):
            return self._error(Error(401, message="Incorrect API key provided."))
        return None

    @staticmethod
    def _error(error: Error) -> web.Response:
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return web.json_response(error_body(error), status=error.status, headers=headers)

    async def _read(self, request: web.Request) -> dict[str, Any] | web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self._error(Error(400, message="We could not parse the JSON body."))
        if not isinstance(body, dict):
            return self._error(Error(400, message="The request body must be a JSON object."))
        return body

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(Error(400, message="'messages' must be a non-empty array."))
        self.requests.append(body)
        self._waiters.notify(body)
        step = await resolve(self._next_step(body), body)
        if isinstance(step, Error):
            return self._error(step)
        if body.get("stream"):
            return await self._stream(request, body, step)
        return web.json_response(completion(body, step))

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      step: Reply | ToolCalls | Empty) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        breaks_after, self.break_stream_after = self.break_stream_after, None
        for index, chunk in enumerate(stream_chunks(body, step)):
            if breaks_after is not None and index >= breaks_after:
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs
                                       and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self._error(Error(400, message="'input' must be a string or an array."))
        self.embedding_requests.append(body)
        dims = int(body.get("dimensions") or DIMENSIONS)
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
        data = []
        for index, text in enumerate(texts):
            vector: Any = embed(text, dims)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        used = sum(count_tokens(t) for t in texts)
        return web.json_response({"object": "list", "data": data,
                                  "model": body.get("model", "sandbox-embedding"),
                                  "usage": {"prompt_tokens": used, "total_tokens": used}})

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(request)) is not None:
            return denied
        return web.json_response({"object": "list", "data": [
            {"id": "sandbox", "object": "model", "created": 1700000000, "owned_by": "sandbox"}]})


def _take(queue: deque[Step]) -> Step:
    """The next step of a queue; a `Forever` step stays at its head."""
    return queue[0] if isinstance(queue[0], Forever) else queue.popleft()


def tool_call_id() -> str:
    return "call_" + secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")


def completion_message(step: Reply | ToolCalls | Empty) -> dict[str, Any]:
    """The assistant message of a step; string tool arguments are sent verbatim (malformed)."""
    if isinstance(step, Empty):
        return {"role": "assistant", "content": step.content, "refusal": None}
    if isinstance(step, Reply):
        return {"role": "assistant", "content": step.text, "refusal": None}
    return {"role": "assistant", "content": step.text, "refusal": None, "tool_calls": [
        {"id": tool_call_id(), "type": "function",
         "function": {"name": name,
                      "arguments": args if isinstance(args, str) else json.dumps(dict(args))}}
        for name, args in step.calls]}


def usage(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    produced = (message.get("content") or "") + "".join(
        c["function"]["name"] + c["function"]["arguments"] for c in message.get("tool_calls", []))
    prompt, done = prompt_tokens(body), count_tokens(produced)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _envelope(body: dict[str, Any], obj: str) -> dict[str, Any]:
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": obj, "created": int(time.time()),
            "model": body.get("model") or "sandbox", "system_fingerprint": "fp_sandbox"}


def completion(body: dict[str, Any], step: Reply | ToolCalls | Empty) -> dict[str, Any]:
    """A non-streaming `chat.completion` response."""
    message = completion_message(step)
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {**_envelope(body, "chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": usage(body, message)}


def stream_chunks(body: dict[str, Any], step: Reply | ToolCalls | Empty
                  ) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed answer, in order."""
    message = completion_message(step)
    base = _envelope(body, "chat.completion.chunk")
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                    "finish_reason": finish}]}
        if with_usage:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": "" if message["content"] else None})]
    chunks += [chunk({"content": piece}) for piece in pieces(message["content"] or "")]
    for index, call in enumerate(message.get("tool_calls", [])):
        function = call["function"]
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": function["name"],
                                                          "arguments": ""}}]}))
        chunks += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                   for piece in pieces(function["arguments"], 16)]
    chunks.append(chunk({}, "tool_calls" if message.get("tool_calls") else "stop"))
    if with_usage:
        chunks.append({**base, "choices": [], "usage": usage(body, message)})
    return chunks
