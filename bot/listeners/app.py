"""Creates the Bolt AsyncApp for a configuration and registers every listener on it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.config import AppConfig
from bot.listeners import (
    actions,
    case_actions,
    commands,
    events,
    feedback,
    home,
    knowledge,
    ratings,
    shortcuts,
    views,
)
from bot.listeners.middleware import clean_strings, log_event_id
from bot.pipeline.deliveries import Deliveries
from bot.pipeline.worker import Worker
from bot.toolkit import metrics
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.case_lookup import CaseLookup
from bot.usecases.drafts import Drafts
from bot.usecases.feedback import Feedback
from bot.usecases.handoff import Handoff
from bot.usecases.home import Home
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.inbox import Inbox
from bot.usecases.knowledge import Knowledge
from bot.usecases.people import People
from bot.usecases.ratings import Ratings
from bot.usecases.reactions import Reactions
from bot.usecases.staff_replies import StaffReplies
from bot.usecases.support_channel import SupportChannel
from storage.db import is_unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerParts:
    """What the Slack edge calls; each listener module is handed only the parts it uses."""

    config: AppConfig
    slack: SlackGateway
    worker: Worker
    people: People
    inbox: Inbox
    human_answers: HumanAnswers
    handoff: Handoff
    staff_replies: StaffReplies
    cases: CaseLookup
    drafts: Drafts
    reactions: Reactions
    support_channel: SupportChannel
    ratings: Ratings | None = None
    feedback: Feedback | None = None
    home: Home | None = None
    knowledge: Knowledge | None = None
    deliveries: Deliveries | None = None


class MeasuredApp(AsyncApp):
    """Counts each payload received and acknowledged, and the time to the ack, whether it
    came over HTTP or Socket Mode (both hand it to `async_dispatch`). With `deliveries`, an
    Events API delivery is stored and acknowledged at once; a worker later hands it to the
    listeners through `handle_stored` (bot/pipeline/deliveries.py)."""

    deliveries: Deliveries | None = None

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        started = metrics.slack_payload_received(req.body)
        response = await self.deliveries.accept(req) if self.deliveries else None
        if response is None:
            response = await super().async_dispatch(req)
        metrics.slack_payload_answered(req.body, response.status, started)
        return response

    async def handle_stored(self, req: AsyncBoltRequest) -> BoltResponse:
        """Run the listeners on a stored delivery (already counted and acknowledged)."""
        return await super().async_dispatch(req)


async def share_identity(app: AsyncApp, slack: SlackGateway) -> None:
    """Give Bolt's single-workspace authorization the auth.test answer this process asks once
    (`SlackGateway.auth_test`). Bolt asks Slack on its first request and keeps the answer, but
    every request that comes before that answer asks too: a cold worker process asked 13 times
    for a burst of 6 messages. If Slack cannot answer now, Bolt asks on its first request, as
    it would have."""
    try:
        answer = await slack.auth_test()
    except (SlackApiError, aiohttp.ClientError, OSError) as error:
        log.warning("could not ask Slack who the bot is yet (%s); the first event will",
                    type(error).__name__)
        return
    for middleware in app._async_middleware_list:  # Bolt keeps no public handle on it
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.auth_test_result = answer


def build_app(parts: ListenerParts) -> AsyncApp:
    config = parts.config
    http = config.slack.mode == "http"
    app = MeasuredApp(
        client=parts.slack.client,
        signing_secret=config.slack.signing_secret.get_secret_value() if http else None,
        request_verification_enabled=http,
        # Record first, then acknowledge: the listener only writes the event down and kicks
        # the worker, which is quick; the slow work runs after the ack.
        process_before_response=True,
        ignoring_self_events_enabled=True,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        if is_unavailable(error):  # an outage, not a bug: Slack's retry or the stored
            log.warning("database unreachable (%s) while handling a Slack %s; it is tried "
                        "again", type(error).__name__, body.get("type"))  # delivery's retry
            return
        error_id = uuid.uuid4().hex[:8]
        log.error("unhandled error %s on %s", error_id, body.get("type"), exc_info=error)

    app.middleware(log_event_id)
    app.middleware(clean_strings)
    _register_all(app, parts)
    if parts.deliveries is not None:
        app.deliveries = parts.deliveries
        parts.deliveries.dispatch_with(app.handle_stored)
    return app


def _register_all(app: AsyncApp, parts: ListenerParts) -> None:
    p = parts
    events.register(app, support_channel_id=p.config.channels.support, inbox=p.inbox,
                    people=p.people, support_channel=p.support_channel, reactions=p.reactions,
                    worker=p.worker)
    actions.register(app, people=p.people, slack=p.slack, human_answers=p.human_answers,
                     worker=p.worker, home=p.home)
    views.register(app, people=p.people, human_answers=p.human_answers, handoff=p.handoff,
                   drafts=p.drafts, worker=p.worker)
    case_actions.register(app, people=p.people, slack=p.slack, handoff=p.handoff,
                          staff_replies=p.staff_replies, drafts=p.drafts, worker=p.worker,
                          home=p.home)
    commands.register(app, command_name=p.config.slack.command, people=p.people,
                      handoff=p.handoff, worker=p.worker, home=p.home, knowledge=p.knowledge,
                      slack=p.slack)
    if p.home is not None:
        home.register(app, home=p.home)
    shortcuts.register(app, people=p.people, slack=p.slack, cases=p.cases, handoff=p.handoff,
                       worker=p.worker)
    if p.ratings is not None:
        ratings.register(app, slack=p.slack, ratings=p.ratings, worker=p.worker)
    if p.feedback is not None:
        feedback.register(app, slack=p.slack, feedback=p.feedback, worker=p.worker)
    if p.knowledge is not None:
        knowledge.register(app, people=p.people, slack=p.slack, knowledge=p.knowledge,
                           worker=p.worker)
