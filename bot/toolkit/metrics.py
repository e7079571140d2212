"""Prometheus metrics: every metric the bot exports is defined here, and every layer records
through this module (one line at each point). Names follow Prometheus' conventions (`_total`
for counters, `_seconds` for durations); labels are bounded (kinds, methods, categories),
never a user, channel, case or team id.

Several processes, one view: `python -m bot run` calls `share_across_processes()` before any
other process starts. It points `PROMETHEUS_MULTIPROC_DIR` at a fresh temporary folder (or uses
the one the environment names), so this process and every child process it starts (they inherit
the environment) write their samples there, and a scrape (`render`) sums them with
prometheus_client's `MultiProcessCollector`. A parent calls `process_exited(pid)` for a child
that ended. Without the variable (tests, `doctor`) the metrics live in this process' memory.
The gauges read from the database (pending human requests, outbox backlog) are computed by the
serving process at scrape time and passed to `render`, never summed across processes.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWNER_ENV = "SUPPORTBOT_METRICS_OWNER_PID"  # the process that prepared the folder
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Slack payloads ---------------------------------------------------------------------------------
EVENTS_RECEIVED = Counter(
    "supportbot_slack_events_received_total",
    "Slack payloads received (events, commands, interactions), by type", ["type"])
EVENTS_ACKNOWLEDGED = Counter(
    "supportbot_slack_events_acknowledged_total",
    "Slack payloads acknowledged to Slack (a 2xx answer), by type", ["type"])
ACK_SECONDS = Histogram(
    "supportbot_slack_ack_seconds",
    "Time from receiving a Slack payload to acknowledging it, by type", ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0))
ANSWERS_SENT = Counter(
    "supportbot_answers_sent_total",
    "Answers posted in customers' threads, by who wrote them (bot, staff)", ["by"])
# the model ---------------------------------------------------------------------------------------
MODEL_CALLS = Counter(
    "supportbot_model_calls_total", "Model calls, by kind (completion, embedding)", ["kind"])
MODEL_SECONDS = Histogram(
    "supportbot_model_call_seconds", "Model call latency, by kind", ["kind"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0))
MODEL_TOKENS = Counter(
    "supportbot_model_tokens_total", "Model tokens, by type (prompt, completion)", ["type"])
MODEL_ERRORS = Counter(
    "supportbot_model_errors_total",
    "Model calls that failed (after litellm's retries) or answered nothing usable, by kind",
    ["kind"])
# Slack Web API -----------------------------------------------------------------------------------
SLACK_API_CALLS = Counter(
    "supportbot_slack_api_calls_total",
    "HTTP requests to the Slack Web API (retries included), by method", ["method"])
SLACK_RATE_LIMITS = Counter(
    "supportbot_slack_api_rate_limited_total",
    "Slack Web API requests refused with a rate limit (HTTP 429), by method", ["method"])
# use cases ---------------------------------------------------------------------------------------
FOLLOWUPS_FIRED = Counter(
    "supportbot_followups_fired_total",
    "Follow-ups carried out, by kind (remind, escalate, give_up, notify_customers, "
    "release_idle)", ["kind"])
HANDOFFS = Counter(
    "supportbot_handoffs_total",
    "Cases handed to people, by reason (model, router, staff_takeover, staff_assign, "
    "idle_release)", ["reason"])

HANDOFF_REASONS = frozenset({"model", "router", "staff_takeover", "staff_assign",
                             "idle_release"})
# Slack payload types counted by name; anything else is "other" (labels stay bounded).
PAYLOAD_TYPES = frozenset({
    "message", "app_mention", "reaction_added", "reaction_removed", "member_joined_channel",
    "member_left_channel", "channel_shared", "channel_unshared", "command", "block_actions",
    "view_submission", "view_closed", "shortcut", "message_action", "url_verification",
    "block_suggestion",
})
_METHOD = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.]{0,63}$")
# litellm's (and openai's) exception classes by name, most specific first in each MRO.
_MODEL_ERROR_KINDS = {
    "Timeout": "timeout", "APITimeoutError": "timeout", "TimeoutError": "timeout",
    "RateLimitError": "rate_limit",
    "APIConnectionError": "connection",
    "AuthenticationError": "auth", "PermissionDeniedError": "auth",
    "ContextWindowExceededError": "context_window",
    "ContentPolicyViolationError": "content_policy",
    "NotFoundError": "not_found",
    "BadRequestError": "bad_request", "UnprocessableEntityError": "bad_request",
    "ServiceUnavailableError": "server", "InternalServerError": "server", "APIError": "server",
}


# recording ---------------------------------------------------------------------------------------
def payload_type(body: Any) -> str:
    """A bounded name for a Slack payload: the event's type, `command`, or the interaction's."""
    if not isinstance(body, dict):
        return "other"
    if body.get("command"):
        kind = "command"
    elif body.get("type") == "event_callback" and isinstance(body.get("event"), dict):
        kind = str(body["event"].get("type"))
    else:
        kind = str(body.get("type"))
    return kind if kind in PAYLOAD_TYPES else "other"


def slack_payload_received(body: Any) -> float:
    """Count a payload as received; returns the start time for `slack_payload_answered`."""
    EVENTS_RECEIVED.labels(payload_type(body)).inc()
    return time.perf_counter()


def slack_payload_answered(body: Any, status: int, started: float) -> None:
    """Count a payload as acknowledged (a 2xx answer to Slack) and the time it took."""
    if 200 <= status < 300:
        kind = payload_type(body)
        EVENTS_ACKNOWLEDGED.labels(kind).inc()
        ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)


def answer_sent(meta: dict[str, Any] | None) -> None:
    """An answer reached the customer's thread; `meta` is its message's metadata."""
    ANSWERS_SENT.labels("staff" if (meta or {}).get("provider") == "human" else "bot").inc()


def model_answered(kind: str, started: float, prompt_tokens: int | None,
                   completion_tokens: int | None, *, usable: bool = True) -> None:
    MODEL_CALLS.labels(kind).inc()
    MODEL_SECONDS.labels(kind).observe(time.perf_counter() - started)
    MODEL_TOKENS.labels("prompt").inc(max(0, prompt_tokens or 0))
    MODEL_TOKENS.labels("completion").inc(max(0, completion_tokens or 0))
    if not usable:
        MODEL_ERRORS.labels("empty_answer").inc()


def model_failed(kind: str, started: float, error: BaseException) -> None:
    MODEL_CALLS.labels(kind).inc()
    MODEL_SECONDS.labels(kind).observe(time.perf_counter() - started)
    MODEL_ERRORS.labels(model_error_kind(error)).inc()


def model_error_kind(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__name__ in _MODEL_ERROR_KINDS:
            return _MODEL_ERROR_KINDS[cls.__name__]
    return "other"


def slack_api_request(url: str, status: int | None) -> None:
    """One HTTP request to the Web API (`url` ends with the method) and its HTTP status."""
    method = url.rstrip("/").rsplit("/", 1)[-1]
    method = method if _METHOD.match(method) else "other"
    SLACK_API_CALLS.labels(method).inc()
    if status == 429:
        SLACK_RATE_LIMITS.labels(method).inc()


def followup_fired(kind: str) -> None:
    FOLLOWUPS_FIRED.labels(kind).inc()


def handoff(reason: str) -> None:
    HANDOFFS.labels(reason if reason in HANDOFF_REASONS else "other").inc()


# several processes -------------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    """The folder processes share samples in, or None (metrics in this process' memory)."""
    return os.environ.get(MULTIPROC_ENV) or None


@dataclass
class SharedMetrics:
    """What `share_across_processes` set up; `close()` undoes it (the folder, if it made one)."""

    path: str
    created: bool
    owner: bool

    def close(self) -> None:
        if not self.owner:
            return
        os.environ.pop(_OWNER_ENV, None)
        if self.created:
            os.environ.pop(MULTIPROC_ENV, None)
            values.ValueClass = values.MutexValue
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> SharedMetrics:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def share_across_processes() -> SharedMetrics:
    """Before any child process starts: samples of this process and of every process started
    from it go to one folder (the environment's `PROMETHEUS_MULTIPROC_DIR`, emptied first, or a
    new temporary one), so that one scrape sees them all. A child that calls it again (it
    inherited the folder) keeps the folder as it is."""
    inherited = os.environ.get(_OWNER_ENV)
    path = multiprocess_dir()
    if path and inherited and inherited != str(os.getpid()):
        values.ValueClass = values.MultiProcessValue()
        return SharedMetrics(path, created=False, owner=False)
    created = path is None
    if path is None:
        path = tempfile.mkdtemp(prefix="supportbot-metrics-")
        os.environ[MULTIPROC_ENV] = path
    else:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):  # a previous run's samples
            os.remove(stale)
    os.environ[_OWNER_ENV] = str(os.getpid())
    # Samples recorded from now on go to the folder (prometheus_client reads this class each
    # time a labelled metric's child is created; every metric here has labels).
    values.ValueClass = values.MultiProcessValue()
    return SharedMetrics(path, created=created, owner=True)


def process_exited(pid: int, *, path: str | None = None) -> None:
    """A child process ended: drop its live gauges (its counters keep counting in the sum)."""
    path = path or multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


# scraping ----------------------------------------------------------------------------------------
@dataclass
class DatabaseFigures:
    """Gauges read from the database at scrape time; None when the database did not answer."""

    pending_human_requests: int | None = None
    oldest_pending_human_request_seconds: float | None = None
    outbox_pending_posts: int | None = None
    oldest_outbox_post_seconds: float | None = None


class _Figures(Collector):
    def __init__(self, figures: DatabaseFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        f = self._figures
        reachable = f.pending_human_requests is not None
        yield GaugeMetricFamily("supportbot_database_up",
                                "1 when the scrape could read the database, else 0",
                                value=1 if reachable else 0)
        if not reachable:
            return
        yield GaugeMetricFamily("supportbot_human_requests_pending",
                                "askHuman questions waiting for staff",
                                value=f.pending_human_requests or 0)
        yield GaugeMetricFamily("supportbot_human_request_oldest_pending_seconds",
                                "Age of the oldest askHuman question waiting for staff "
                                "(0 when none waits)",
                                value=f.oldest_pending_human_request_seconds or 0.0)
        yield GaugeMetricFamily("supportbot_outbox_pending_posts",
                                "Slack posts recorded and not yet sent (the outbox backlog)",
                                value=f.outbox_pending_posts or 0)
        yield GaugeMetricFamily("supportbot_outbox_oldest_pending_seconds",
                                "Age of the oldest unsent Slack post (0 when none waits)",
                                value=f.oldest_outbox_post_seconds or 0.0)


def render(figures: DatabaseFigures, *, path: str | None = None) -> bytes:
    """The exposition text: this process' metrics (or, with a shared folder, every process'
    summed) and the database gauges."""
    path = path or multiprocess_dir()
    registry = CollectorRegistry()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
        registry.register(_Figures(figures))
        return generate_latest(registry)
    registry.register(_Figures(figures))
    return generate_latest(REGISTRY) + generate_latest(registry)
