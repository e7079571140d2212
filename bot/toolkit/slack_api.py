"""The only way out to the Slack Web API: clients, retries, `Retry-After`, known errors.

Interactive calls (reads, ephemeral messages, modals) retry rate limits, connection errors and
5xx answers in the call, with slack_sdk's async retry handlers. Outbox posts do not: a retry in
the call could post twice after a lost answer, and sleeping in it would hold a worker, so the
outbox retries them itself, and `failure_of` tells it how ("gone", "later", "maybe sent").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.toolkit import metrics

log = logging.getLogger(__name__)

# `ok: false` errors that mean "try again later"; any other error code is permanent.
TRANSIENT_ERRORS = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
    "request_timeout", "timeout",
})


class CountRequests(AsyncRetryHandler):
    """First of a client's retry handlers, it sees every answer of the Web API (a retried call's
    too) and counts it by method, rate limits apart; it never asks for a retry itself."""

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest,
                              response: HttpResponse | None = None,
                              error: Exception | None = None) -> bool:
        if error is None or response is None:  # an answer, or a call that got none
            metrics.slack_api_request(request.url, response.status_code if response else None)
        return False


def make_web_client(*, token: str, api_url: str, retries: int = 3,
                    timeout: int = 30) -> AsyncWebClient:
    """An AsyncWebClient for `slack.api_url`; `retries` > 0 retries rate limits and transient
    errors inside the call."""
    handlers: list[AsyncRetryHandler] = [CountRequests(), *([
        AsyncConnectionErrorRetryHandler(max_retry_count=retries),
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        AsyncServerErrorRetryHandler(max_retry_count=retries),
    ] if retries else [])]
    return AsyncWebClient(token=token, base_url=api_url, timeout=timeout,
                          retry_handlers=handlers, session=_pooled_session(timeout))


def _pooled_session(timeout: int) -> aiohttp.ClientSession | None:
    """One HTTP session (keep-alive connections) for every call of a client, instead of
    slack_sdk's default of a new session, and connection, per call. None outside a running
    event loop (the client then opens one per call)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


async def close_web_client(client: AsyncWebClient) -> None:
    """Close the client's pooled HTTP session, if it has one."""
    if client.session is not None and not client.session.closed:
        await client.session.close()


@dataclass(frozen=True)
class Failure:
    """How a failed Web API call may be retried."""

    code: str
    permanent: bool
    retry_after: float | None = None
    # The request may have been carried out (a 5xx, a lost connection): look before resending.
    may_have_reached_slack: bool = False


def _retry_after(error: SlackApiError) -> float | None:
    headers = getattr(error.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def failure_of(error: BaseException) -> Failure:
    """Classify a failed call: permanent errors are given up; rate limits, server errors and
    network faults are retried, honouring `Retry-After`."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200)
        code = slack_error_code(error)
        if status == 429 or code in ("ratelimited", "rate_limited"):
            return Failure("ratelimited", False, _retry_after(error))
        if status >= 500:
            name = code if code != "unknown_error" else f"http_{status}"
            return Failure(name, False, _retry_after(error), may_have_reached_slack=True)
        if code in TRANSIENT_ERRORS:
            return Failure(code, False, _retry_after(error), may_have_reached_slack=True)
        return Failure(code, True)
    if isinstance(error, aiohttp.ClientConnectorError):
        return Failure("connection_refused", False)  # never reached Slack
    if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return Failure(type(error).__name__, False, may_have_reached_slack=True)
    return Failure(repr(error)[:200], True)


class ChannelHeld(Exception):
    """A post to a channel the bot must not write to right now (the support channel became
    shared with another workspace); the outbox keeps such posts until it may."""


def slack_error_code(error: SlackApiError) -> str:
    data = getattr(error.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error", "unknown_error"))
    return "unknown_error"


class SlackGateway:
    """Thin typed wrapper over the Web API calls the bot makes."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._auth_test: AsyncSlackResponse | None = None
        self._asking_auth_test = asyncio.Lock()
        # Set by the support channel watch: True for a channel whose posts must wait.
        self.holds: Callable[[str], bool] = lambda channel: False

    async def auth_test(self) -> AsyncSlackResponse:
        """Slack's auth.test answer for the bot's token, asked once: callers that come while it
        is being asked wait for that answer (a failed ask is asked again by the next caller)."""
        if self._auth_test is None:
            async with self._asking_auth_test:
                if self._auth_test is None:
                    self._auth_test = await self.client.auth_test()
        return self._auth_test

    async def identity(self) -> tuple[str, str]:
        """(bot user id, team id) from auth.test, asked once."""
        response = await self.auth_test()
        return str(response["user_id"] or ""), str(response.get("team_id") or "")

    async def bot_user_id(self) -> str:
        return (await self.identity())[0]

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

    async def thread_replies(self, *, channel: str, ts: str, oldest: float | None = None
                             ) -> list[dict[str, Any]]:
        """A thread's messages with their metadata (since `oldest`, when given: a long thread's
        recent replies are past the first page)."""
        since = {"oldest": f"{oldest:.6f}"} if oldest is not None else {}
        response = await self.client.conversations_replies(
            channel=channel, ts=ts, include_all_metadata=True, limit=200, **since)
        return list(response.get("messages", []))

    async def channel_history(self, *, channel: str, oldest: float) -> list[dict[str, Any]]:
        """Top-level messages of a channel since `oldest`, with their metadata."""
        response = await self.client.conversations_history(
            channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200)
        return list(response.get("messages", []))

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

    async def user_info(self, user_id: str) -> dict[str, Any]:
        """users.info's user; SlackApiError or a connection error when Slack gives none."""
        response = await self.client.users_info(user=user_id)
        return dict(response.get("user") or {})

    async def channel_info(self, channel: str) -> dict[str, Any]:
        """conversations.info's channel object (raises SlackApiError)."""
        response = await self.client.conversations_info(channel=channel)
        return dict(response.get("channel") or {})

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> None:
        await self.client.views_open(trigger_id=trigger_id, view=view)

    async def publish_home(self, *, user_id: str, view: dict[str, Any]) -> None:
        """views.publish: the person's Home tab shows `view` (raises SlackApiError)."""
        await self.client.views_publish(user_id=user_id, view=view)
