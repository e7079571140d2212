"""The sandbox of `python -m bot sandbox`, started in-process on a free port with a temporary
SQLite file, and a headless Chromium (Debian's `chromium`) for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import parse_config
from sandbox.run import Sandbox
from sandbox.web_app import build_web_app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
# The test writes its screenshot here (untracked); copy it to docs/sandbox.png by hand to
# refresh the README's picture, so a test run never modifies a tracked file.
DOCS_SCREENSHOT = ARTIFACTS / "sandbox.png"


@dataclass
class RunningSandbox:
    sandbox: Sandbox
    url: str
    database: Path


@pytest.fixture
async def sandbox_site(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    database = tmp_path / "sandbox.db"
    sandbox = Sandbox(parse_config({}, source="test config"),
                      database_url=f"sqlite:///{database}")
    await sandbox.start()
    runner = web.AppRunner(build_web_app(sandbox), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield RunningSandbox(sandbox, f"http://127.0.0.1:{port}/", database)
    await runner.cleanup()
    await sandbox.stop()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed, so the browser test cannot run. "
                    "Install it with `apt-get install -y chromium` (scripts/test does this).",
                    pytrace=False)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable,
                                                    args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Any, sandbox_site: RunningSandbox, request: pytest.FixtureRequest
               ) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1600, "height": 900})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors include resources the page could not load (a 404 favicon, a script).
    opened.on("console", lambda message: errors.append(message.text)
              if message.type == "error" else None)
    await opened.goto(sandbox_site.url)
    yield opened
    await screenshot(opened, f"last-{request.node.name}")  # where the test ended, for failures
    await context.close()
    assert not errors, f"the page had JavaScript or console errors: {errors}"


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
