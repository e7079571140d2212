"""Issue 13 (Watch): the real `python -m bot run` in Socket Mode serves /metrics and the probes
on `metrics.port` (METRICS_PORT in the shipped app.yaml), and its scrape sums the samples of every
process writing to the shared folder: its own, and another process' (as a worker's would be)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from sandbox.model_server import Reply
from tests.cli.helpers import ROOT, command_env, start_run_command
from tests.conftest import CUSTOMER, CUSTOMERS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


def answers_by_bot(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "supportbot_answers_sent_total" and s.labels == {"by": "bot"}:
                return s.value
    return 0.0


async def test_run_serves_one_view_of_its_processes_on_metrics_port(database_url, slack, model,
                                                                     tmp_path):
    port = free_port()
    shared = tmp_path / "metrics"
    env = {**command_env(slack, model, database_url), "METRICS_PORT": str(port),
           "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    process = await start_run_command(env, stdout=asyncio.subprocess.PIPE,
                                      stderr=asyncio.subprocess.STDOUT)
    try:
        await slack.wait_connected(timeout=60)
        for _ in range(100):
            try:
                if (await get(port, "/readyz"))[0] == 200:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        assert (await get(port, "/readyz"))[0] == 200
        assert (await get(port, "/healthz"))[0] == 200

        model.script(Reply("Answered by the front process."))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Count me")
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
        # Another process of the same bot (a worker would inherit the folder) answers 5.
        subprocess.run([sys.executable, "-c", "from bot.toolkit import metrics\n"
                        "for _ in range(5): metrics.answer_sent(None)"],
                       cwd=ROOT, env=env, check=True, timeout=60)
        for _ in range(50):
            status, text = await get(port, "/metrics")
            if answers_by_bot(text) >= 6:
                break
            await asyncio.sleep(0.2)
        assert status == 200
        assert answers_by_bot(text) == 6
        assert CUSTOMER not in text and CUSTOMERS not in text
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    log = output.decode()
    assert process.returncode == 0, log
    assert f"serving /metrics, /healthz and /readyz on http://0.0.0.0:{port}" in log
