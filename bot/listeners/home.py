"""The app's Home tab: opening it records the person and publishes their queue."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.usecases.home import Home


def register(app: AsyncApp, *, home: Home) -> None:
    async def on_app_home_opened(event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, str) and user:
            await home.opened(user, event.get("tab"))

    app.event("app_home_opened")(on_app_home_opened)
