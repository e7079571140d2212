"""Builds the bot's object graph from the configuration: one place where parts are wired."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.agent.model import ModelClient
from bot.agent.turn import Agent
from bot.config import AppConfig
from bot.services.human_requests import HumanRequests
from bot.services.inbox import Inbox
from bot.services.intake import Intake
from bot.services.outbox import Outbox
from bot.services.people import People
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

    async def close(self) -> None:
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
    outbox = Outbox(sessions, slack, support)
    worker = Worker(sessions, outbox, sweep_seconds=sweep_seconds)
    agent = Agent(config, sessions, model)
    intake = Intake(sessions, support)
    human_requests = HumanRequests(sessions, support)
    inbox = Inbox(config=config, slack=slack, people=people, intake=intake,
                  human_requests=human_requests, worker=worker)
    services = Services(config=config, engine=engine, sessions=sessions, slack=slack,
                        people=people, model=model, outbox=outbox, worker=worker, agent=agent,
                        intake=intake, human_requests=human_requests, inbox=inbox)

    async def respond(item: WorkItem) -> None:
        await agent.step(item.conversation_id, upto_message_id=item.payload.get("message_id"))

    async def flush(item: WorkItem) -> None:
        return None  # the worker flushes the outbox after every item

    worker.register("respond", respond)
    worker.register("flush", flush)
    return services
