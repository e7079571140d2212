"""Who is staff, and what to call people: cached lookups over the Slack Web API.

Staff is decided closed: only a person Slack vouches for (users.info says a full member of our
own workspace) or an admin listed in `staff.users` is staff. Unknown, guest, external, bot,
deleted and unverifiable users (users.info failed, or Slack could not be reached) are not.
Lookups are shared: concurrent callers wait on one request, answers are cached, and a failure
that may be transient is never cached, so the next message asks Slack again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from bot.config import AppConfig
from bot.toolkit.payloads import display_name
from bot.toolkit.slack_api import SlackGateway, slack_error_code

log = logging.getLogger(__name__)

_TTL_SECONDS = 60.0  # staff list, and Slack's "no such user" answers
_USER_TTL_SECONDS = _TTL_SECONDS * 10  # users.info answers
# users.info errors that are Slack's answer about the user, not a hiccup: cached like an answer.
_DEFINITE_ERRORS = frozenset({"user_not_found", "user_not_visible", "users_not_found"})

T = TypeVar("T")


@dataclass(frozen=True)
class UserLookup:
    """One users.info outcome: the user object, or why Slack did not give one."""

    info: dict[str, Any] | None
    error: str | None = None

    @property
    def cacheable(self) -> bool:
        return self.info is not None or self.error in _DEFINITE_ERRORS


def staff_verdict(info: dict[str, Any], team_id: str) -> str | None:
    """Why a users.info user is not staff of workspace `team_id`, or None if they are."""
    if info.get("deleted"):
        return "deleted"
    if info.get("is_bot") or info.get("is_app_user"):
        return "a bot"
    if info.get("is_restricted") or info.get("is_ultra_restricted"):
        return "a guest"
    if info.get("is_stranger") or not team_id or info.get("team_id") != team_id:
        return "from another workspace"
    return None


class _SingleFlight:
    """Concurrent callers of the same key share one running call."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[Any]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._running[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._running.get(key) is task:
            del self._running[key]


class People:
    """Staff = verified members of the support channel or `staff.usergroup`, + `staff.users`."""

    def __init__(self, config: AppConfig, slack: SlackGateway) -> None:
        self._config = config
        self._slack = slack
        self._staff: set[str] = set()
        self._staff_loaded_at = -_TTL_SECONDS
        self._users: dict[str, tuple[float, UserLookup]] = {}
        self._flights = _SingleFlight()

    async def staff_ids(self) -> set[str]:
        """Members of the support channel and staff user group (unverified), plus
        `staff.users`; refreshed at most once a minute, the last known list on a Slack error."""
        if time.monotonic() - self._staff_loaded_at < _TTL_SECONDS:
            return self._staff | set(self._config.staff.users)
        return await self._flights.run("$staff", self._load_staff)

    async def _load_staff(self) -> set[str]:
        staff = set(self._config.staff.users)
        try:
            if self._config.channels.support:
                staff |= await self._slack.channel_members(self._config.channels.support)
            if self._config.staff.usergroup:
                staff |= await self._slack.usergroup_members(self._config.staff.usergroup)
            bot_user_id, _ = await self._slack.identity()
        except Exception as error:  # noqa: BLE001 - keep the last known list on a Slack hiccup
            log.warning("could not refresh the staff list: %s", error)
            return self._staff | set(self._config.staff.users)
        staff.discard(bot_user_id)
        self._staff = staff
        self._staff_loaded_at = time.monotonic()
        return staff

    async def is_staff(self, user_id: str | None) -> bool:
        """True for `staff.users`, and for members of the support channel or staff user group
        whom users.info shows as full, active people of our own workspace. Anything Slack
        cannot confirm right now is not staff (asked again next time)."""
        if not user_id:
            return False
        if user_id in self._config.staff.users:
            return True
        if user_id not in await self.staff_ids():
            return False
        lookup = await self.lookup(user_id)
        if lookup.info is None:
            log.info("%s is not treated as staff: users.info failed (%s); list them in "
                     "staff.users if they are", user_id, lookup.error)
            return False
        _, team_id = await self._slack.identity()
        reason = staff_verdict(lookup.info, team_id)
        if reason is not None:
            log.info("%s is in the support channel but is not staff: %s", user_id, reason)
        return reason is None

    def forget_staff(self) -> None:
        """Drop the cache (a member joined or left the support channel)."""
        self._staff_loaded_at = -_TTL_SECONDS

    async def lookup(self, user_id: str) -> UserLookup:
        """users.info, cached when Slack answered; concurrent lookups share one request."""
        cached = self._users.get(user_id)
        if cached is not None:
            loaded_at, found = cached
            ttl = _USER_TTL_SECONDS if found.info is not None else _TTL_SECONDS
            if time.monotonic() - loaded_at < ttl:
                return found
        return await self._flights.run(user_id, lambda: self._fetch_user(user_id))

    async def _fetch_user(self, user_id: str) -> UserLookup:
        try:
            found = UserLookup(await self._slack.user_info(user_id))
        except SlackApiError as error:
            found = UserLookup(None, slack_error_code(error))
        except Exception as error:  # noqa: BLE001 - Slack unreachable: unknown, not cached
            found = UserLookup(None, f"unreachable: {type(error).__name__}")
        if found.cacheable:
            self._users[user_id] = (time.monotonic(), found)
        else:
            log.warning("users.info %s failed (%s); asking again next time", user_id,
                        found.error)
        return found

    async def user(self, user_id: str) -> dict[str, Any] | None:
        """The users.info user, or None when Slack did not give one."""
        return (await self.lookup(user_id)).info

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
