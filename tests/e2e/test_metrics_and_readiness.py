"""Issue 13 (Watch): `GET /metrics` moves with traffic and names no user or channel; `/readyz`
says whether the bot should get traffic (database, migrations, Slack) and why not."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import pytest
from alembic import command
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from bot.process.http_server import build_ops_app, start_site
from bot.process.lifecycle import start_bot
from bot.process.ops import Readiness
from sandbox.model_server import Reply, ToolCalls
from storage.db import create_engine
from storage.migrate import alembic_config, upgrade_async
from tests.conftest import (
    CUSTOMER,
    CUSTOMER_TEAM,
    CUSTOMERS,
    STAFF,
    SUPPORT,
    TEAM,
    make_config,
)
from tests.e2e.helpers import requests
from tests.tcp_proxy import TcpProxy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}{path}") as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def scrape(port: int) -> tuple[Samples, str]:
    status, content_type, text = await get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_an_answered_message_moves_the_metrics(bot, slack, model):
    before, _ = await scrape(bot.http_port)
    model.script(Reply("Counted and answered."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do metrics work?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    await bot.services.idle()
    after, text = await scrape(bot.http_port)

    message = {"type": "message"}
    assert moved(before, after, "supportbot_slack_events_received_total", **message) >= 1
    assert moved(before, after, "supportbot_slack_events_acknowledged_total", **message) >= 1
    assert moved(before, after, "supportbot_slack_ack_seconds_count", **message) >= 1
    assert moved(before, after, "supportbot_answers_sent_total", by="bot") == 1
    assert moved(before, after, "supportbot_model_calls_total", kind="completion") >= 1
    assert moved(before, after, "supportbot_model_call_seconds_count", kind="completion") >= 1
    assert moved(before, after, "supportbot_model_tokens_total", type="prompt") > 0
    assert moved(before, after, "supportbot_model_tokens_total", type="completion") > 0
    assert moved(before, after, "supportbot_slack_api_calls_total",
                 method="chat.postMessage") >= 1
    # The database gauges, read at scrape time: nothing waits.
    assert value(after, "supportbot_database_up") == 1
    assert value(after, "supportbot_outbox_pending_posts") == 0
    assert value(after, "supportbot_human_requests_pending") == 0
    # Conventional names; no label carries a person, a channel, a workspace or a message.
    for forbidden in (CUSTOMER, CUSTOMERS, SUPPORT, STAFF, TEAM, CUSTOMER_TEAM, ts, "U0BOT"):
        assert forbidden not in text, forbidden
    names = {name for name, _ in after if name.startswith("supportbot_")}
    label_names = {key for _, labels in after for key, _ in labels}
    assert not label_names & {"user", "channel", "team", "case", "conversation", "thread"}
    for name in names:
        assert name.endswith(("_total", "_seconds", "_bucket", "_count", "_sum", "_created",
                              "_pending", "_posts", "_up")), name


async def test_a_rate_limit_from_slack_is_counted_by_method(bot, slack, model):
    before, _ = await scrape(bot.http_port)
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=1)
    model.script(Reply("Sent after the rate limit."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Are you rate limited?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    await bot.services.idle()
    after, _ = await scrape(bot.http_port)
    assert moved(before, after, "supportbot_slack_api_rate_limited_total",
                 method="chat.postMessage") == 1
    assert moved(before, after, "supportbot_slack_api_calls_total",
                 method="chat.postMessage") >= 2  # the refused attempt and the one that passed


async def test_pending_human_requests_and_handoffs_are_counted(bot, slack, model):
    before, _ = await scrape(bot.http_port)
    model.script(ToolCalls([("askHuman", {"question": "Which plan is this customer on?"})],
                           text="Let me check with the team."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I upgrade?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    await bot.services.idle()
    assert len(await requests(bot)) == 1
    await asyncio.sleep(1.1)
    middle, _ = await scrape(bot.http_port)
    assert value(middle, "supportbot_human_requests_pending") == 1
    assert value(middle, "supportbot_human_request_oldest_pending_seconds") >= 1

    model.script(ToolCalls([("transferToHuman", {"reason": "billing dispute"})]))
    other = await slack.user_posts(CUSTOMERS, CUSTOMER, "Please, a person.")
    await slack.wait_for_message(CUSTOMERS, thread_ts=other, timeout=30)
    await bot.services.idle()
    for _ in range(50):
        after, _ = await scrape(bot.http_port)
        if moved(before, after, "supportbot_handoffs_total", reason="model"):
            break
        await asyncio.sleep(0.2)
    assert moved(before, after, "supportbot_handoffs_total", reason="model") == 1
    assert value(after, "supportbot_human_requests_pending") == 1  # the first case still asks


async def test_readyz_is_ready_when_everything_is(bot):
    status, _, body = await get(bot.http_port, "/readyz")
    assert status == 200, body
    assert '"status": "ready"' in body and '"not_ready": []' in body
    assert (await get(bot.http_port, "/healthz"))[0] == 200


async def test_readyz_names_a_schema_behind_the_code(bot, database_url):
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "-1")
    status, _, body = await get(bot.http_port, "/readyz")
    assert status == 503, body
    assert '"not_ready": ["migrations"]' in body and "not at head" in body
    assert (await get(bot.http_port, "/healthz"))[0] == 200  # alive: no restart for this
    await upgrade_async(database_url)
    assert (await get(bot.http_port, "/readyz"))[0] == 200


async def test_readyz_is_503_while_the_database_is_down(start, database_url):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # A SQLite file that cannot be opened (its folder is gone): the probe says so in time.
        engine = create_engine(f"sqlite:///{url.database}.missing/bot.db")
        runner, port = await start_site(build_ops_app(engine, readiness=Readiness(engine)),
                                        host="127.0.0.1", port=0)
        threads_before = set(threading.enumerate())
        try:
            status, _, body = await get(port, "/readyz")
        finally:
            await runner.cleanup()
            await engine.dispose()
            # aiosqlite stops the thread of a connection that failed to open without waiting
            # for it; the thread reports to this test's loop, which must still be running.
            for thread in set(threading.enumerate()) - threads_before:
                if "_connection_worker_thread" in thread.name:
                    await asyncio.to_thread(thread.join, 10)
        assert status == 503, body
        assert '"database"' in body and "unreachable" in body and '"migrations"' in body
        return
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        bot = await start(database={"url": url.set(host="127.0.0.1", port=proxy.port)
                                    .render_as_string(hide_password=False)})
        assert (await get(bot.http_port, "/readyz"))[0] == 200
        proxy.cut()
        status, _, body = await get(bot.http_port, "/readyz")
        assert status == 503, body
        assert '"not_ready": ["database", "migrations"]' in body and "unreachable" in body
        metrics, _ = await scrape(bot.http_port)  # the scrape still answers, and says so
        assert value(metrics, "supportbot_database_up") == 0
        proxy.restore()
        for _ in range(50):
            if (await get(bot.http_port, "/readyz"))[0] == 200:
                break
            await asyncio.sleep(0.2)
        assert (await get(bot.http_port, "/readyz"))[0] == 200
    finally:
        await proxy.stop()


async def test_socket_mode_serves_metrics_and_probes_on_metrics_port(database_url, slack,
                                                                      model):
    config = make_config(database_url=database_url, emulator=slack, model=model,
                         slack={"mode": "socket", "app_token": slack.app_token,
                                "signing_secret": ""},
                         metrics={"port": 0, "host": "127.0.0.1"})
    bot = await start_bot(config, sweep_seconds=0.5)
    try:
        await slack.wait_connected()
        assert bot.http_port is None and bot.metrics_port
        before, _ = await scrape(bot.metrics_port)
        model.script(Reply("answered over Socket Mode"))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello over a socket")
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
        await bot.services.idle()
        after, text = await scrape(bot.metrics_port)
        assert moved(before, after, "supportbot_slack_events_acknowledged_total",
                     type="message") >= 1
        assert moved(before, after, "supportbot_answers_sent_total", by="bot") == 1
        assert CUSTOMER not in text and CUSTOMERS not in text
        assert (await get(bot.metrics_port, "/healthz"))[0] == 200
        status, _, body = await get(bot.metrics_port, "/readyz")
        assert status == 200, body

        # Slack gone: not ready, naming it.
        await bot._socket.client.disconnect()
        status, _, body = await get(bot.metrics_port, "/readyz")
        assert status == 503 and '"not_ready": ["slack"]' in body, body
    finally:
        await bot.stop()


@pytest.mark.parametrize("port", [-1, 70000, "many"])
def test_metrics_port_is_validated(port: Any):
    from bot.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"metrics\.port"):
        parse_config({"metrics": {"port": port}}, source="test config")


def test_metrics_port_unset_or_empty_means_no_server():
    from bot.config import parse_config

    assert parse_config({}, source="t").metrics.port is None
    assert parse_config({"metrics": {"port": ""}}, source="t").metrics.port is None
    assert parse_config({"metrics": {"port": 9102}}, source="t").metrics.port == 9102


async def test_followups_by_kind_and_staff_handoffs_are_counted(start, slack, model):
    bot = await start(timers={"remind_after": "1s", "max_reminders": 1, "escalate_after": "1h",
                              "give_up_after": "2h", "check_every": 0.2})
    before, _ = await scrape(bot.http_port)
    model.script(ToolCalls([("askHuman", {"question": "Discount allowed?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I get a discount?")
    post = await slack.wait_for_message(SUPPORT)
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder" in m["text"], timeout=30)
    result = await slack.slash_command("/handoff", "take 1", user=STAFF, channel=SUPPORT)
    assert result.status == 200
    await bot.services.idle()
    after, text = await scrape(bot.http_port)
    assert moved(before, after, "supportbot_followups_fired_total", kind="remind") == 1
    assert moved(before, after, "supportbot_handoffs_total", reason="staff_takeover") == 1
    assert moved(before, after, "supportbot_slack_events_acknowledged_total",
                 type="command") == 1
    assert STAFF not in text and ts not in text


async def test_outbox_backlog_is_read_from_the_database_at_scrape(bot, slack, model):
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=60)
    model.script(Reply("Held back by a long rate limit."))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Will this wait?")
    await slack.wait_for_call("chat.postMessage", timeout=30)
    await bot.services.idle()
    await asyncio.sleep(1.1)
    samples, _ = await scrape(bot.http_port)
    assert value(samples, "supportbot_outbox_pending_posts") >= 1
    assert value(samples, "supportbot_outbox_oldest_pending_seconds") >= 1
    assert value(samples, "supportbot_slack_api_rate_limited_total",
                 method="chat.postMessage") >= 1
