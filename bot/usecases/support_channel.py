"""The support channel must stay internal: the bot posts customer conversations there.

Start-up refuses a support channel shared with another workspace (see `bot_process`). At run
time a `channel_shared` event pauses the channel at once: posts to it stay in the outbox, and a
plain notice (no customer data) says why; `channel_unshared`, once conversations.info confirms
the channel is internal again, resumes it and the worker's sweep sends the held posts in order.
Each replica also re-reads conversations.info once a minute, so replicas that missed the event
follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.pipeline.worker import Worker
from bot.toolkit import texts
from bot.toolkit.slack_api import SlackGateway
from storage import outbox_posts

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0


def external_teams(channel: dict[str, Any], own_team: str) -> list[str] | None:
    """The other workspaces a conversations.info channel is shared with (or invited to share),
    [] when Slack does not name them; None when the channel is not shared outside our own
    organisation (a channel shared between workspaces of one Enterprise Grid org is internal)."""
    shared = (channel.get("is_ext_shared") or channel.get("is_pending_ext_shared")
              or channel.get("pending_shared")
              or (channel.get("is_shared") and not channel.get("is_org_shared")))
    if not shared:
        return None
    teams = {str(team) for key in ("shared_team_ids", "connected_team_ids", "pending_shared")
             for team in channel.get(key) or []}
    return sorted(team for team in teams if team and team != own_team)


class SupportChannel:
    """Whether the bot may post to the support channel, kept in step with Slack."""

    def __init__(self, config: AppConfig, slack: SlackGateway,
                 sessions: async_sessionmaker[AsyncSession], worker: Worker) -> None:
        self._channel = config.channels.support
        self._slack = slack
        self._sessions = sessions
        self._worker = worker
        self._paused = False
        self._refresher: asyncio.Task[None] | None = None

    @property
    def paused(self) -> bool:
        return self._paused

    def holds(self, channel: str) -> bool:
        """True for the support channel while it is shared with another workspace."""
        return self._paused and channel == self._channel

    async def shared_with(self) -> list[str] | None:
        """conversations.info of the support channel: see `external_teams` (raises
        SlackApiError or a connection error when Slack does not answer)."""
        _, own_team = await self._slack.identity()
        return external_teams(await self._slack.channel_info(self._channel), own_team)

    async def on_channel_shared(self, event: dict[str, Any]) -> None:
        """Pause at once: Slack said so, no need to ask again first."""
        if self._channel and event.get("channel") == self._channel:
            await self._pause([str(event.get("connected_team_id") or "")], notice=True)

    async def on_channel_unshared(self, event: dict[str, Any]) -> None:
        """Resume only when conversations.info confirms no other workspace is left."""
        if self._channel and event.get("channel") == self._channel:
            await self.refresh(notice=True)

    async def refresh(self, *, notice: bool = False) -> None:
        """Re-read the channel from Slack and pause or resume to match; on a Slack error the
        current state is kept."""
        try:
            teams = await self.shared_with()
        except Exception as error:  # noqa: BLE001 - keep the state until Slack answers
            log.warning("could not check whether %s is shared: %s", self._channel, error)
            return
        if teams is None:
            await self._resume(notice=notice)
        else:
            await self._pause(teams, notice=notice)

    async def _pause(self, teams: list[str], *, notice: bool) -> None:
        if self._paused:
            return
        self._paused = True
        log.error("channels.support=%s is now shared with another workspace (%s): posts there "
                  "are held until it is unshared or channels.support is changed", self._channel,
                  ", ".join(t for t in teams if t) or "unknown")
        if notice:
            await self._notice(texts.support_channel_paused())

    async def _resume(self, *, notice: bool) -> None:
        if not self._paused:
            return
        self._paused = False
        async with self._sessions() as session:
            posts = await outbox_posts.pending_posts_anywhere(session)
        # Messages that will appear (updates of posts already there are not counted).
        held = sum(1 for p in posts if (p.args or {}).get("channel") == self._channel
                   and p.method == "chat.postMessage")
        log.warning("channels.support=%s is internal again: resuming, %d held post(s)",
                    self._channel, held)
        if notice:
            await self._notice(texts.support_channel_resumed(held))
        await self._worker.sweep()  # the held posts are due: send them now, in order

    async def _notice(self, text: str) -> None:
        try:
            await self._slack.post_notice(channel=self._channel, text=text)
        except Exception as error:  # noqa: BLE001 - the log line above says it already
            log.warning("could not post the notice in %s: %s", self._channel, error)

    def start(self) -> None:
        """Re-check the channel once a minute (replicas that missed the event follow)."""
        if self._channel and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(),
                                                  name="support-channel-check")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception:
                log.exception("support channel check failed")
