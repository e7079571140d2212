"""Issue 13: `python -m bot doctor` checks the configuration and the live setup (the sandbox
Slack emulator and model server over loopback, a real database) and names what blocks the bot."""

from __future__ import annotations

import asyncio
import sys

from alembic import command
from sqlalchemy import text

from bot.process.doctor import Finding, diagnose, manifest_scopes, run_doctor
from sandbox.model_server import Error
from storage.db import create_engine
from storage.migrate import alembic_config, upgrade_async
from tests.cli.helpers import ROOT, command_env
from tests.conftest import CUSTOMER, SUPPORT, make_config


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.summary for f in findings if f.status == "fail"}


def warned(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.summary for f in findings if f.status == "warn"}


async def test_healthy_setup_passes_every_check(database_url, slack, model, capsys):
    await upgrade_async(database_url)
    config = make_config(database_url=database_url, emulator=slack, model=model)

    findings = await diagnose(config)

    assert failing(findings) == {} and warned(findings) == {}
    checks = {f.check for f in findings}
    assert {"slack.token", "slack.scopes", "channels.support", "channels.shared",
            "channels.customer", "llm.model", "database", "database.schema"} <= checks
    assert await run_doctor(config) == 0
    printed = capsys.readouterr().out
    assert "[ok  ] slack.scopes: the token has every scope" in printed
    assert printed.rstrip().endswith("doctor: the bot can run (0 warning(s))")
    # One token asked of the model, nothing posted to Slack, nothing written.
    assert model.requests[-1]["max_tokens"] == 1
    assert not slack.calls_to("chat.postMessage")


async def test_missing_scope_and_refused_token_block(database_url, slack, model, capsys):
    await upgrade_async(database_url)
    config = make_config(database_url=database_url, emulator=slack, model=model)
    assert "reactions:write" in manifest_scopes()
    slack.scopes = [s for s in slack.scopes if s != "reactions:write"]

    assert await run_doctor(config) == 1
    printed = capsys.readouterr().out
    assert "[FAIL] slack.scopes: the bot token lacks scope(s) reactions:write" in printed
    assert "fix: add them under OAuth & Permissions" in printed
    assert "doctor: 1 problem(s) block the bot: slack.scopes" in printed

    wrong = make_config(database_url=database_url, emulator=slack, model=model,
                        slack={"bot_token": "xoxb-revoked"})
    assert "invalid_auth" in failing(await diagnose(wrong))["slack.token"]


async def test_support_channel_not_joined_or_shared_blocks(database_url, slack, model):
    await upgrade_async(database_url)
    slack.add_channel("C0NOTJOINED", "support-new", members=["U0STAFF"], bot_member=False)
    slack.add_channel("C0SHARED", "support-shared", members=["U0STAFF", CUSTOMER],
                      is_ext_shared=True)
    slack.add_channel("C0OTHER", "other-customer", members=[CUSTOMER], bot_member=False)

    not_joined = make_config(database_url=database_url, emulator=slack, model=model,
                             channels={"support": "C0NOTJOINED"})
    assert "not a member of channels.support=C0NOTJOINED" in failing(
        await diagnose(not_joined))["channels.support"]

    shared = make_config(database_url=database_url, emulator=slack, model=model,
                         channels={"support": "C0SHARED"})
    problems = failing(await diagnose(shared))
    assert list(problems) == ["channels.shared"]
    assert "T0ACME" in problems["channels.shared"]

    # A configured customer channel the bot is not in: it runs, but the admin is told.
    customers = make_config(database_url=database_url, emulator=slack, model=model,
                            channels={"support": SUPPORT, "customer": ["C0ACME", "C0OTHER"]})
    findings = await diagnose(customers)
    assert failing(findings) == {}
    assert "C0OTHER" in warned(findings)["channels.customer"]


async def test_model_that_does_not_answer_blocks(database_url, slack, model):
    await upgrade_async(database_url)
    model.script(Error(status=401))
    config = make_config(database_url=database_url, emulator=slack, model=model)
    problems = failing(await diagnose(config))
    assert list(problems) == ["llm.model"]
    assert "openai/test-model did not answer" in problems["llm.model"]

    classifier = make_config(database_url=database_url, emulator=slack, model=model,
                             routing={"router": "classifier", "model": "openai/cheap-model"})
    findings = await diagnose(classifier)
    assert failing(findings) == {}
    assert any(f.check == "routing.model" and f.status == "ok" for f in findings)


async def test_database_behind_unknown_or_unreachable(database_url, slack, model):
    # Never migrated: the bot can run (start-up migrates), the admin is told.
    config = make_config(database_url=database_url, emulator=slack, model=model)
    findings = await diagnose(config)
    assert failing(findings) == {}
    assert "database" in warned(findings) or "database.schema" in warned(findings)

    # One migration behind the code: a warning naming both revisions.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "b3f1c2d4e5a6")
    assert "b3f1c2d4e5a6" in warned(await diagnose(config))["database.schema"]

    # Migrated by a newer version of the bot: blocks.
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0000'"))
    await engine.dispose()
    assert "f00dfeed0000" in failing(await diagnose(config))["database.schema"]

    if database_url.startswith("sqlite"):
        gone = database_url.replace("/bot.db", "/missing-folder/bot.db")
    else:
        gone = "postgresql://postgres@127.0.0.1:1/nothing"
    unreachable = make_config(database_url=gone, emulator=slack, model=model)
    assert list(failing(await diagnose(unreachable))) == ["database"]


async def test_doctor_command_exit_codes(database_url, slack, model):
    """The real command, with the shipped app.yaml and the environment an admin exports."""
    await upgrade_async(database_url)
    env = command_env(slack, model, database_url)

    async def doctor() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "doctor", "--config", str(ROOT / "app.yaml"), cwd=ROOT,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode()

    code, out = await doctor()
    assert code == 0, out
    assert "slack.app_token: app token can open Socket Mode connections" in out
    for secret in (slack.bot_token, slack.app_token, "sk-test"):
        assert secret not in out

    env["SLACK_APP_TOKEN"] = "xapp-wrong"
    code, out = await doctor()
    assert code == 1, out
    assert "[FAIL] slack.app_token: Slack refused slack.app_token (invalid_auth)" in out
