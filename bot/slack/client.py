"""The only way out to the Slack Web API: one client, retries, `Retry-After`, known errors.

Rate limits (429 with `Retry-After`), connection errors and 5xx answers are retried by
slack_sdk's built-in async retry handlers; errors that retrying cannot fix are named here so
callers can tell "gone" from "try later".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Errors that a retry cannot fix: the post is dropped and staff are told.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text",
    "invalid_blocks", "message_not_found", "cant_update_message", "cant_delete_message",
    "thread_not_found", "invalid_auth", "account_inactive", "token_revoked", "missing_scope",
    "restricted_action", "user_not_found", "invalid_arguments", "not_authed",
})


def make_web_client(*, token: str, api_url: str, retries: int = 3) -> AsyncWebClient:
    """An AsyncWebClient for `slack.api_url` that retries rate limits and transient errors."""
    return AsyncWebClient(
        token=token,
        base_url=api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
            AsyncServerErrorRetryHandler(max_retry_count=retries),
        ],
    )


class ChannelHeld(Exception):
    """A post to a channel the bot must not write to right now (the support channel became
    shared with another workspace); the outbox keeps such posts until it may."""


def slack_error_code(error: SlackApiError) -> str:
    data = getattr(error.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error", "unknown_error"))
    return "unknown_error"


def is_permanent(error: Exception) -> bool:
    return isinstance(error, SlackApiError) and slack_error_code(error) in PERMANENT_ERRORS


class SlackGateway:
    """Thin typed wrapper over the Web API calls the bot makes."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._bot_user_id: str | None = None
        self._team_id: str | None = None
        # Set by the support channel watch: True for a channel whose posts must wait.
        self.holds: Callable[[str], bool] = lambda channel: False

    async def call(self, method: str, **args: Any) -> dict[str, Any]:
        response = await self.client.api_call(method.replace("_", "."), json=args)
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def identity(self) -> tuple[str, str]:
        """(bot user id, team id) from auth.test, cached."""
        if self._bot_user_id is None:
            response = await self.client.auth_test()
            self._bot_user_id = response["user_id"]
            self._team_id = response.get("team_id", "")
        return self._bot_user_id or "", self._team_id or ""

    def is_held(self, channel: str | None) -> bool:
        """True while posts to `channel` must wait (see `holds`)."""
        return bool(channel) and self.holds(str(channel))

    def _refuse_held(self, channel: str | None) -> None:
        if self.is_held(channel):
            log.error("refused a post to %s: the channel is shared with another workspace",
                      channel)
            raise ChannelHeld(f"posts to {channel} are paused")

    async def post_message(self, **args: Any) -> dict[str, Any]:
        self._refuse_held(args.get("channel"))
        response = await self.client.chat_postMessage(**args)
        return dict(response.data)  # type: ignore[arg-type]

    async def post_notice(self, *, channel: str, text: str) -> None:
        """Post even to a held channel: only for notices that carry no customer data."""
        await self.client.chat_postMessage(channel=channel, text=text)

    async def update_message(self, **args: Any) -> dict[str, Any]:
        self._refuse_held(args.get("channel"))
        response = await self.client.chat_update(**args)
        return dict(response.data)  # type: ignore[arg-type]

    async def post_ephemeral(self, *, channel: str, user: str, text: str,
                             thread_ts: str | None = None, blocks: Any = None) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts, blocks=blocks
            )
        except SlackApiError as error:
            log.warning("ephemeral message to %s failed: %s", user, slack_error_code(error))

    async def add_reaction(self, *, channel: str, ts: str, name: str) -> None:
        try:
            await self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as error:
            if slack_error_code(error) != "already_reacted":
                log.info("reactions.add %s failed: %s", name, slack_error_code(error))

    async def remove_reaction(self, *, channel: str, ts: str, name: str) -> None:
        try:
            await self.client.reactions_remove(channel=channel, timestamp=ts, name=name)
        except SlackApiError as error:
            if slack_error_code(error) != "no_reaction":
                log.info("reactions.remove %s failed: %s", name, slack_error_code(error))

    async def thread_replies(self, *, channel: str, ts: str) -> list[dict[str, Any]]:
        response = await self.client.conversations_replies(
            channel=channel, ts=ts, include_all_metadata=True, limit=200
        )
        return list(response.get("messages", []))

    async def permalink(self, *, channel: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
            return response.get("permalink")
        except SlackApiError:
            return None

    async def channel_members(self, channel: str) -> set[str]:
        members: set[str] = set()
        cursor: str | None = None
        while True:
            response = await self.client.conversations_members(
                channel=channel, cursor=cursor, limit=500
            )
            members.update(response.get("members", []))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return members

    async def usergroup_members(self, usergroup: str) -> set[str]:
        response = await self.client.usergroups_users_list(usergroup=usergroup)
        return set(response.get("users", []))

    async def user_info_or_raise(self, user_id: str) -> dict[str, Any]:
        """users.info's user; SlackApiError or a connection error when Slack gives none."""
        response = await self.client.users_info(user=user_id)
        return dict(response.get("user") or {})

    async def channel_info(self, channel: str) -> dict[str, Any]:
        """conversations.info's channel object (raises SlackApiError)."""
        response = await self.client.conversations_info(channel=channel)
        return dict(response.get("channel") or {})

    async def user_info(self, user_id: str) -> dict[str, Any] | None:
        try:
            response = await self.client.users_info(user=user_id)
            return dict(response.get("user") or {})
        except SlackApiError:
            return None

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        await self.client.views_open(trigger_id=trigger_id, view=view)
