"""Issue 13 (Watch): with several processes, one coherent view. Each process writes its samples
to the shared folder (PROMETHEUS_MULTIPROC_DIR); one scrape sums them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.toolkit import metrics

ROOT = Path(__file__).resolve().parents[2]

# What a worker process does with a customer message, in metrics: one model call, one answer,
# one rate-limited post and its retry.
WORK = """
from bot.toolkit import metrics
metrics.model_answered("completion", 0.0, 100, 7)
metrics.slack_api_request("https://slack.test/api/chat.postMessage", 429)
metrics.slack_api_request("https://slack.test/api/chat.postMessage", 200)
metrics.answer_sent(None)
"""


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=60, check=True)


def test_two_processes_incrementing_one_scrape_sees_the_sum(tmp_path):
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    first = subprocess.Popen([sys.executable, "-c", WORK], cwd=ROOT, env=env)
    second = subprocess.Popen([sys.executable, "-c", WORK], cwd=ROOT, env=env)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    for child in (first, second):
        metrics.process_exited(child.pid, path=str(tmp_path))

    scraped = parse(metrics.render(metrics.DatabaseFigures(), path=str(tmp_path)).decode())

    assert sample(scraped, "supportbot_model_calls_total", kind="completion") == 2
    assert sample(scraped, "supportbot_model_call_seconds_count", kind="completion") == 2
    assert sample(scraped, "supportbot_model_tokens_total", type="prompt") == 200
    assert sample(scraped, "supportbot_model_tokens_total", type="completion") == 14
    assert sample(scraped, "supportbot_slack_api_calls_total", method="chat.postMessage") == 4
    assert sample(scraped, "supportbot_slack_api_rate_limited_total",
                  method="chat.postMessage") == 2
    assert sample(scraped, "supportbot_answers_sent_total", by="bot") == 2
    assert sample(scraped, "supportbot_database_up") == 0  # no figures given to this scrape


# The front process: shares the folder before it starts a child (which inherits it), works
# itself, and scrapes; then closes, removing the folder it made.
FRONT = """
import json, os, subprocess, sys
from bot.toolkit import metrics
shared = metrics.share_across_processes()
metrics.answer_sent(None)
metrics.followup_fired("remind")
child = subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
text = metrics.render(metrics.DatabaseFigures(pending_human_requests=3,
                                              oldest_pending_human_request_seconds=42.0,
                                              outbox_pending_posts=0,
                                              oldest_outbox_post_seconds=0.0)).decode()
path = shared.path
shared.close()
print(json.dumps({"text": text, "path": path, "left": os.path.exists(path)}))
"""

CHILD = """
from bot.toolkit import metrics
assert not metrics.share_across_processes().owner  # a child keeps the parent's folder
metrics.answer_sent({"provider": "human"})
metrics.answer_sent(None)
metrics.handoff("router")
"""


def test_work_in_the_front_process_and_in_a_child_is_one_view():
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    done = subprocess.run([sys.executable, "-c", FRONT, CHILD], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    scraped = parse(out["text"])
    assert sample(scraped, "supportbot_answers_sent_total", by="bot") == 2
    assert sample(scraped, "supportbot_answers_sent_total", by="staff") == 1
    assert sample(scraped, "supportbot_followups_fired_total", kind="remind") == 1
    assert sample(scraped, "supportbot_handoffs_total", reason="router") == 1
    assert sample(scraped, "supportbot_human_requests_pending") == 3
    assert sample(scraped, "supportbot_human_request_oldest_pending_seconds") == 42
    assert out["left"] is False  # the temporary folder is gone after close()
