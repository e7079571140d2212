"""Event listeners: messages, mentions and reactions become calls on use cases."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.pipeline.deliveries import STORED_DELIVERY
from bot.pipeline.worker import Worker
from bot.usecases.inbox import Inbox
from bot.usecases.people import People
from bot.usecases.reactions import Reactions
from bot.usecases.support_channel import SupportChannel


def register(app: AsyncApp, *, support_channel_id: str, inbox: Inbox, people: People,
             support_channel: SupportChannel, reactions: Reactions, worker: Worker) -> None:
    async def on_message(body: dict[str, Any], event: dict[str, Any],
                         context: AsyncBoltContext) -> None:
        await inbox.on_message_event(body, event, delivery=context.get(STORED_DELIVERY))

    async def on_app_mention(body: dict[str, Any], event: dict[str, Any],
                             context: AsyncBoltContext) -> None:
        # Slack delivers a mention both as `message` and `app_mention`; the inbox
        # de-duplicates by message, so handling both is safe and loses nothing.
        await inbox.on_message_event(body, event, delivery=context.get(STORED_DELIVERY))

    async def on_member_change(event: dict[str, Any]) -> None:
        if event.get("channel") == support_channel_id:
            people.forget_staff()

    async def on_channel_shared(event: dict[str, Any]) -> None:
        await support_channel.on_channel_shared(event)

    async def on_channel_unshared(event: dict[str, Any]) -> None:
        await support_channel.on_channel_unshared(event)

    async def on_reaction_added(event: dict[str, Any]) -> None:
        conversation_id = await reactions.on_reaction(event)
        if conversation_id is not None:
            worker.kick(conversation_id)

    async def on_reaction_removed() -> None:
        return None

    app.event("message")(on_message)
    app.event("reaction_added")(on_reaction_added)
    app.event("reaction_removed")(on_reaction_removed)
    app.event("app_mention")(on_app_mention)
    app.event("member_joined_channel")(on_member_change)
    app.event("member_left_channel")(on_member_change)
    app.event("channel_shared")(on_channel_shared)
    app.event("channel_unshared")(on_channel_unshared)
