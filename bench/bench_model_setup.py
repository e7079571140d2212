"""What litellm's request set-up on the event loop saves a model call, in CPU
(`bot/agent/model_setup.py`): the same calls, shaped as the bot's (a system prompt, the
customer's question, the askHuman tool), 8 at a time as in a worker, with litellm's mock
answer (no network), the loop's default executor alternating between a plain thread pool
(litellm's own way) and `SetUpOnLoop`, `--rounds` times.

    .venv/bin/python -m bench.bench_model_setup [--calls 400] [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import concurrent.futures
import json
import statistics
import sys
import time
from pathlib import Path

import litellm

from bench.harness import ROOT
from bot.agent import model as _model  # noqa: F401 - litellm's settings for the bot
from bot.agent.model_setup import SetUpOnLoop

MESSAGES = [{"role": "system", "content": "You are a support agent for Acme."},
            {"role": "user", "content": "Where is the setting for invoices?"}]
TOOLS = [{"type": "function", "function": {
    "name": "askHuman", "description": "Ask the support staff a question.",
    "parameters": {"type": "object", "properties": {"question": {"type": "string"}},
                   "required": ["question"]}}}]
AT_ONCE = 8


async def calls(n: int) -> None:
    slots = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with slots:
            await litellm.acompletion(model="openai/support-model", messages=MESSAGES,
                                      tools=TOOLS, temperature=0.2, max_tokens=500,
                                      mock_response="It is under Settings, Billing.")

    await asyncio.gather(*(one() for _ in range(n)))


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls a round, per way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" /
                                              "model-setup-latest.json"))
    args = parser.parse_args(argv)
    loop = asyncio.get_running_loop()
    ways = {"thread (litellm's own)": concurrent.futures.ThreadPoolExecutor(),
            "on the loop (SetUpOnLoop)": SetUpOnLoop()}
    cpu_ms: dict[str, list[float]] = {name: [] for name in ways}
    for executor in ways.values():  # warm: litellm's lazy imports, its caches
        loop.set_default_executor(executor)
        await calls(100)
    for _ in range(args.rounds):
        for name, executor in ways.items():
            loop._default_executor = executor  # asyncio allows setting it once; swap directly
            started = time.process_time()
            await calls(args.calls)
            cpu_ms[name].append((time.process_time() - started) * 1000 / args.calls)
    medians = {name: statistics.median(values) for name, values in cpu_ms.items()}
    for name, values in cpu_ms.items():
        print(f"{name:28} ms of CPU a call: median {medians[name]:.2f}, rounds "
              + ", ".join(f"{v:.2f}" for v in values))
    thread, on_loop = medians.values()
    print(f"saved a call: {thread - on_loop:.2f} ms ({(thread - on_loop) / thread:.0%})")
    Path(args.json).write_text(json.dumps(
        {"calls": args.calls, "rounds": args.rounds, "at_once": AT_ONCE, "cpu_ms": cpu_ms,
         "medians": medians}, indent=1) + "\n")
    for executor in ways.values():
        executor.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
