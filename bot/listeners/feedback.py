"""A click on the 👍/👎 feedback buttons under a bot answer: stored by `usecases.feedback`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.listeners.guard import tell
from bot.pipeline.worker import Worker
from bot.toolkit.ids import FEEDBACK_ACTION, FeedbackValue
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.feedback import Feedback


def register(app: AsyncApp, *, slack: SlackGateway, feedback: Feedback, worker: Worker) -> None:
    async def on_feedback_click(ack: AsyncAck, body: dict[str, Any],
                                action: dict[str, Any]) -> None:
        await ack()
        try:
            value = FeedbackValue.decode(str(action.get("value") or ""))
        except ValueError:
            return
        channel = (body.get("channel") or {}).get("id") or (
            (body.get("container") or {}).get("channel_id") or "")
        try:
            clicked = await feedback.click(value=value, user_id=body["user"]["id"],
                                           channel_id=str(channel))
        except UserFacingError as error:
            await tell(slack, body, str(error))
            return
        if not clicked.positive:
            worker.kick(clicked.conversation_id)  # sends the note to staff

    app.action(FEEDBACK_ACTION)(on_feedback_click)
