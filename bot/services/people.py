"""Who is staff, and what to call people: cached lookups over the Slack Web API."""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.config import AppConfig
from bot.slack.client import SlackGateway
from bot.slack.payloads import display_name

log = logging.getLogger(__name__)

_TTL_SECONDS = 60.0


class People:
    """Staff = support channel members + `staff.users` + members of `staff.usergroup`."""

    def __init__(self, config: AppConfig, slack: SlackGateway) -> None:
        self._config = config
        self._slack = slack
        self._staff: set[str] = set()
        self._staff_loaded_at = -_TTL_SECONDS
        self._names: dict[str, tuple[float, str, dict[str, Any] | None]] = {}

    async def staff_ids(self) -> set[str]:
        if time.monotonic() - self._staff_loaded_at < _TTL_SECONDS:
            return self._staff
        staff = set(self._config.staff.users)
        try:
            if self._config.channels.support:
                staff |= await self._slack.channel_members(self._config.channels.support)
            if self._config.staff.usergroup:
                staff |= await self._slack.usergroup_members(self._config.staff.usergroup)
        except Exception as error:  # noqa: BLE001 - keep the last known list on a Slack hiccup
            log.warning("could not refresh the staff list: %s", error)
            return self._staff | staff
        bot_user_id, _ = await self._slack.identity()
        staff.discard(bot_user_id)
        self._staff = staff
        self._staff_loaded_at = time.monotonic()
        return staff

    async def is_staff(self, user_id: str | None) -> bool:
        """Staff are listed in `staff.users`, or are full members of our own workspace in the
        support channel or staff user group: guests and Slack Connect users never are."""
        if not user_id:
            return False
        if user_id in self._config.staff.users:
            return True
        if user_id not in await self.staff_ids():
            return False
        info = await self.user(user_id)
        if info is None:
            return True  # users.info unavailable: membership is the best evidence we have
        _, team_id = await self._slack.identity()
        guest = info.get("is_restricted") or info.get("is_ultra_restricted")
        foreign = bool(info.get("team_id")) and bool(team_id) and info.get("team_id") != team_id
        return not (guest or foreign or info.get("is_bot"))

    def forget_staff(self) -> None:
        """Drop the cache (a member joined or left the support channel)."""
        self._staff_loaded_at = -_TTL_SECONDS

    async def user(self, user_id: str) -> dict[str, Any] | None:
        cached = self._names.get(user_id)
        if cached and time.monotonic() - cached[0] < _TTL_SECONDS * 10:
            return cached[2]
        info = await self._slack.user_info(user_id)
        self._names[user_id] = (time.monotonic(), display_name(info, user_id), info)
        return info

    async def name(self, user_id: str, fallback: str | None = None) -> str:
        """A display name; for Slack Connect users users.info may say little, so the event's
        own profile (`fallback`) is used before the raw id."""
        info = await self.user(user_id)
        if info:
            return display_name(info, fallback or user_id)
        return fallback or user_id

    async def avatar(self, user_id: str) -> str | None:
        info = await self.user(user_id)
        return ((info or {}).get("profile") or {}).get("image_72")
