"""Builds the bot's object graph from the configuration: one place where parts are wired."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.agent.model import ModelClient
from bot.agent.turn import Agent
from bot.config import AppConfig
from bot.routing import build_router
from bot.services.cases import Cases
from bot.services.drafts import Drafts
from bot.services.handoff import Handoff
from bot.services.human_requests import HumanRequests
from bot.services.inbox import Inbox
from bot.services.intake import Intake
from bot.services.outbox import Outbox
from bot.services.people import People
from bot.services.reactions import Reactions
from bot.services.staff_replies import StaffReplies
from bot.services.support_channel import SupportChannel
from bot.slack.client import SlackGateway, make_web_client
from bot.worker import Worker
from storage.db import create_engine, create_session_factory
from storage.models import WorkItem

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: AppConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    slack: SlackGateway
    people: People
    model: ModelClient
    outbox: Outbox
    worker: Worker
    agent: Agent
    intake: Intake
    human_requests: HumanRequests
    inbox: Inbox
    handoff: Handoff
    staff_replies: StaffReplies
    conversations: Cases
    drafts: Drafts
    reactions: Reactions
    support_channel: SupportChannel

    async def close(self) -> None:
        await self.support_channel.stop()
        await self.worker.stop()
        await self.engine.dispose()


def build_services(config: AppConfig, *, sweep_seconds: float = 5.0) -> Services:
    engine = create_engine(config.database.url)
    sessions = create_session_factory(engine)
    slack = SlackGateway(make_web_client(token=config.slack.bot_token.get_secret_value(),
                                         api_url=config.slack.api_url))
    support = config.channels.support
    people = People(config, slack)
    model = ModelClient(config.llm)
    # The outbox retries on its own terms (see bot/services/outbox.py): no retries in the call.
    outbox_slack = SlackGateway(make_web_client(
        token=config.slack.bot_token.get_secret_value(), api_url=config.slack.api_url,
        retries=0, timeout=15))
    outbox = Outbox(sessions, outbox_slack, support, retry_for=config.slack.retry_posts_for)
    worker = Worker(sessions, outbox, sweep_seconds=sweep_seconds,
                    concurrency=config.database.concurrency)
    intake = Intake(sessions, support)
    human_requests = HumanRequests(sessions, support)
    handoff = Handoff(config, sessions, human_requests)
    drafts = Drafts(sessions, support)
    agent = Agent(config, sessions, model, handoff=handoff, drafts=drafts,
                  router=build_router(config, model))
    inbox = Inbox(config=config, slack=slack, people=people, intake=intake,
                  human_requests=human_requests, worker=worker)
    staff_replies = StaffReplies(config, sessions, slack, people, handoff)
    cases = Cases(config, sessions)
    services = Services(config=config, engine=engine, sessions=sessions, slack=slack,
                        people=people, model=model, outbox=outbox, worker=worker, agent=agent,
                        intake=intake, human_requests=human_requests, inbox=inbox,
                        handoff=handoff, staff_replies=staff_replies,
                        conversations=cases, drafts=drafts,
                        reactions=Reactions(config, people, cases, handoff),
                        support_channel=SupportChannel(config, slack, sessions, worker))
    # Posts to the support channel wait while it is shared, from either client.
    slack.holds = outbox_slack.holds = services.support_channel.holds
    _connect_staff_hooks(services)

    async def respond(item: WorkItem) -> None:
        await agent.step(item.conversation_id, upto_message_id=item.payload.get("message_id"))

    async def flush(item: WorkItem) -> None:
        return None  # the worker flushes the outbox after every item

    worker.register("respond", respond)
    worker.register("flush", flush)
    return services


def _connect_staff_hooks(services: Services) -> None:
    """What staff write outside the askHuman flow: support-thread replies, their edits, and
    direct answers in a customer's thread (which take the case over at once)."""

    async def on_support_reply(conversation: Any, event: dict[str, Any], name: str) -> None:
        conversation_id = await services.staff_replies.on_reply(conversation, event, name)
        if conversation_id is not None:
            services.worker.kick(conversation_id)

    async def on_support_edit(event: dict[str, Any]) -> None:
        conversation_id = await services.staff_replies.on_edit_or_delete(event)
        if conversation_id is not None:
            services.worker.kick(conversation_id)

    async def on_staff_in_customer_thread(conversation_id: int, incoming: Any) -> None:
        if await services.handoff.claim_unowned(
                conversation_id, user_id=incoming.user_id,
                reason="answered directly in the customer's thread"):
            services.worker.kick(conversation_id)

    services.inbox.support_reply_hooks.append(on_support_reply)
    services.inbox.support_edit_hooks.append(on_support_edit)
    services.inbox.staff_in_customer_thread_hooks.append(on_staff_in_customer_thread)
