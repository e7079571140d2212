"""What every interactive listener shares: the clicker must be staff; errors go back privately."""

from __future__ import annotations

from typing import Any

from bot.errors import NotStaff
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.home import Home
from bot.usecases.people import People


async def require_staff(people: People, user_id: str) -> str:
    """The staff member's display name, or NotStaff."""
    if not await people.is_staff(user_id):
        raise NotStaff("Only support staff can do this; nothing was changed.")
    return await people.name(user_id)


async def tell(slack: SlackGateway, body: dict[str, Any], text: str,
               home: Home | None = None) -> None:
    """An ephemeral reply to whoever clicked or used a shortcut, in the thread they were in; a
    click on the Home tab (no channel) gets its answer at the top of the redrawn Home view."""
    if home is not None and (body.get("view") or {}).get("type") == "home":
        user_id = (body.get("user") or {}).get("id")
        if user_id and await home.refused(user_id, text):
            return
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    message = body.get("message") or {}
    if channel and user:
        await slack.post_ephemeral(channel=channel, user=user, text=text,
                                   thread_ts=message.get("thread_ts"))
