"""Button clicks on support posts: answer (opens a modal), let the bot answer, cancel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import NotStaff, UserFacingError
from bot.process.wiring import Services
from bot.toolkit.blocks import answer_modal
from bot.toolkit.ids import RequestAction
from storage import conversations, human_requests


async def require_staff(services: Services, user_id: str) -> str:
    """The staff member's display name, or NotStaff."""
    if not await services.people.is_staff(user_id):
        raise NotStaff("Only support staff can do this; nothing was changed.")
    return await services.people.name(user_id)


async def tell(services: Services, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    message = body.get("message") or {}
    if channel and user:
        await services.slack.post_ephemeral(channel=channel, user=user, text=text,
                                            thread_ts=message.get("thread_ts"))


def register(app: AsyncApp, services: Services) -> None:
    async def on_answer_button_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()
        try:
            await require_staff(services, body["user"]["id"])
            async with services.sessions() as session:
                request = await human_requests.get_request(session, int(action["value"]))
                if request is None or request.status != "pending":
                    raise UserFacingError("That question is no longer waiting for an answer.")
                conversation = await conversations.get_conversation(session,
                                                                     request.conversation_id)
                view = answer_modal(request_id=request.id, number=request.number,
                                    question=request.question,
                                    case_number=conversation.case_number)
            await services.slack.open_view(trigger_id=body["trigger_id"], view=view)
        except UserFacingError as error:
            await tell(services, body, str(error))

    async def on_bot_answers_button_click(ack: AsyncAck, body: dict[str, Any],
                                          action: dict[str, Any]) -> None:
        await ack()
        await _close(body, action, services.human_answers.let_bot_answer)

    async def on_cancel_button_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()
        await _close(body, action, services.human_answers.cancel)

    async def _close(body: dict[str, Any], action: dict[str, Any], operation: Any) -> None:
        try:
            name = await require_staff(services, body["user"]["id"])
            closed = await operation(request_id=int(action["value"]), user_id=body["user"]["id"],
                                     name=name)
        except UserFacingError as error:
            await tell(services, body, str(error))
            return
        services.worker.kick(closed.conversation_id)

    app.action(RequestAction.answer.value)(on_answer_button_click)
    app.action(RequestAction.bot_answers.value)(on_bot_answers_button_click)
    app.action(RequestAction.cancel.value)(on_cancel_button_click)
