"""Builds the bot's object graph from the configuration: one place where parts are wired."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.agent.knowledge import KnowledgeBase
from bot.agent.loop import Agent
from bot.agent.model import ModelClient
from bot.agent.triage import build_router
from bot.config import AppConfig
from bot.listeners.app import ListenerParts
from bot.pipeline.deliveries import Deliveries
from bot.pipeline.outbox import Outbox
from bot.pipeline.streaming import AnswerStreams
from bot.pipeline.worker import Worker
from bot.toolkit.posts import PostQueue
from bot.toolkit.slack_api import SlackGateway, close_web_client, make_web_client
from bot.usecases.case_lookup import CaseLookup
from bot.usecases.drafts import Drafts
from bot.usecases.feedback import Feedback
from bot.usecases.followups import FollowUps
from bot.usecases.handoff import Handoff
from bot.usecases.holding import HoldingReaction
from bot.usecases.home import Home
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.inbox import Inbox
from bot.usecases.intake import Intake
from bot.usecases.knowledge import EMBED, PROPOSE, Knowledge
from bot.usecases.people import People
from bot.usecases.ratings import Ratings
from bot.usecases.reactions import Reactions
from bot.usecases.staff_replies import StaffReplies
from bot.usecases.support_channel import SupportChannel
from storage.db import create_engine, create_session_factory
from storage.models import WorkItem

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Every long-lived part of one bot process; listeners get only the parts they use."""

    config: AppConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    slack: SlackGateway
    people: People
    model: ModelClient
    posts: PostQueue
    outbox: Outbox
    worker: Worker
    agent: Agent
    intake: Intake
    human_answers: HumanAnswers
    inbox: Inbox
    handoff: Handoff
    staff_replies: StaffReplies
    cases: CaseLookup
    drafts: Drafts
    reactions: Reactions
    support_channel: SupportChannel
    followups: FollowUps
    holding: HoldingReaction
    ratings: Ratings
    feedback: Feedback
    home: Home
    deliveries: Deliveries

    knowledge: Knowledge

    @property
    def home_slack(self) -> SlackGateway:
        return self.home.slack

    def listener_parts(self) -> ListenerParts:
        """The parts the Slack listeners call."""
        return ListenerParts(
            config=self.config, slack=self.slack, worker=self.worker, people=self.people,
            inbox=self.inbox, human_answers=self.human_answers, handoff=self.handoff,
            staff_replies=self.staff_replies, cases=self.cases, drafts=self.drafts,
            reactions=self.reactions, support_channel=self.support_channel,
            ratings=self.ratings, feedback=self.feedback, home=self.home,
            knowledge=self.knowledge, deliveries=self.deliveries)

    async def idle(self) -> None:
        """Wait until this process has handed every stored Slack delivery to the listeners
        and works on no conversation (tests, shutdown)."""
        await self.deliveries.idle()
        await self.worker.idle()

    async def close(self) -> None:
        await self.deliveries.stop()
        await self.holding.stop()
        await self.home.stop()
        await self.support_channel.stop()
        await self.worker.stop()
        await self.engine.dispose()
        await self.outbox.close()
        await close_web_client(self.slack.client)
        await close_web_client(self.home_slack.client)


def build_services(config: AppConfig, *, sweep_seconds: float = 5.0,
                   front_only: bool = False) -> Services:
    """Every service of one process. `front_only`: the Slack front of worker processes, whose
    acks must not wait behind a long read (a report) on the event loop: its SQLite statements
    keep to the connection's thread (`storage.db.create_engine`)."""
    engine = create_engine(config.database.url, pool_size=config.database_pool_size,
                           sqlite_on_loop=not front_only)
    sessions = create_session_factory(engine)
    slack = SlackGateway(make_web_client(token=config.slack.bot_token.get_secret_value(),
                                         api_url=config.slack.api_url))
    posts = PostQueue(config.channels.support, config.channels.escalation, config.accounts)
    people = People(config, slack)
    model = ModelClient(config.llm)
    # The outbox retries on its own terms (see bot/pipeline/outbox.py): no retries in the call.
    outbox_slack = SlackGateway(make_web_client(
        token=config.slack.bot_token.get_secret_value(), api_url=config.slack.api_url,
        retries=0, timeout=15))
    outbox = Outbox(sessions, outbox_slack, posts, retry_for=config.slack.retry_posts_for)
    worker = Worker(sessions, outbox, sweep_seconds=sweep_seconds,
                    concurrency=config.worker_concurrency)
    intake = Intake(sessions, posts)
    answers = HumanAnswers(sessions, posts)
    ratings = Ratings(config, sessions, posts)
    knowledge_base = KnowledgeBase(config, sessions, model)
    knowledge = Knowledge(sessions, model, knowledge_base, posts,
                          command=config.slack.command)
    handoff = Handoff(config, sessions, answers, posts, ratings, knowledge)
    # Streams go through the outbox's client: no retries inside a call (an append that must
    # wait is left to the stream's end, which the outbox retries on Slack's terms).
    streams = AnswerStreams(sessions, outbox_slack, config.slack, busy=worker.queueing)
    agent = Agent(config, sessions, model, posts, handoff,
                  router=build_router(config, model, sessions), streams=streams,
                  knowledge_base=knowledge_base, outbox=outbox)
    staff_replies = StaffReplies(config, sessions, slack, people, handoff, posts)
    holding = HoldingReaction(sessions, posts, outbox, after=config.slack.holding_reaction_after)
    inbox = Inbox(config=config, slack=slack, people=people, intake=intake,
                  human_answers=answers, staff_replies=staff_replies, handoff=handoff,
                  holding=holding, worker=worker)
    cases = CaseLookup(config, sessions)
    # Home views retry on the refresher's terms (Retry-After as a due time), not in the call.
    home_slack = SlackGateway(make_web_client(
        token=config.slack.bot_token.get_secret_value(), api_url=config.slack.api_url,
        retries=0, timeout=15))
    services = Services(config=config, engine=engine, sessions=sessions, slack=slack,
                        people=people, model=model, posts=posts, outbox=outbox, worker=worker,
                        agent=agent, intake=intake, human_answers=answers, inbox=inbox,
                        handoff=handoff, staff_replies=staff_replies, cases=cases,
                        drafts=Drafts(sessions, posts),
                        reactions=Reactions(config, people, cases, handoff),
                        support_channel=SupportChannel(config, slack, sessions, worker),
                        followups=FollowUps(config, sessions, posts, answers, worker.kick,
                                            ratings=ratings),
                        holding=holding, ratings=ratings,
                        feedback=Feedback(sessions, posts),
                        home=Home(config, sessions, home_slack, people), knowledge=knowledge,
                        deliveries=Deliveries(
                            engine, sessions, sweep_seconds=sweep_seconds,
                            bot_user_id=slack.bot_user_id, at_once=config.worker_concurrency,
                            signing_secret=config.slack.signing_secret.get_secret_value()
                            if config.slack.mode == "http" else None))
    # Posts to the support channel wait while it is shared, from either client.
    slack.holds = outbox_slack.holds = services.support_channel.holds

    async def respond(item: WorkItem) -> None:
        await agent.step(item.conversation_id, upto_message_id=item.payload.get("message_id"))

    async def flush(item: WorkItem) -> None:
        return None  # the worker flushes the outbox after every item

    worker.register("respond", respond)
    worker.register("flush", flush)
    worker.register(PROPOSE, knowledge.propose)
    worker.register(EMBED, knowledge.embed)
    return services

