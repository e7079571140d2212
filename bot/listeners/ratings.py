"""The customer's click on a rating button in their thread: stored by `usecases.ratings`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.listeners.guard import tell
from bot.pipeline.worker import Worker
from bot.toolkit.ids import RatingAction, RatingButtonValue
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.ratings import Ratings


def register(app: AsyncApp, *, slack: SlackGateway, ratings: Ratings, worker: Worker) -> None:
    async def on_rating_click(ack: AsyncAck, body: dict[str, Any],
                              action: dict[str, Any]) -> None:
        await ack()
        try:
            value = RatingButtonValue.decode(action.get("value") or "")
        except ValueError:
            return
        try:
            rated = await ratings.rate(rating_id=value.rating_id, score=value.score,
                                       user_id=body["user"]["id"])
        except UserFacingError as error:
            await tell(slack, body, str(error))
            return
        worker.kick(rated.conversation_id)

    for action_id in RatingAction:
        app.action(action_id.value)(on_rating_click)
