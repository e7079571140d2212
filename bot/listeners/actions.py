"""Button clicks on question posts: answer (opens a modal), use or edit the suggested answer,
let the bot answer, cancel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.listeners.guard import require_staff, tell
from bot.pipeline.worker import Worker
from bot.toolkit.blocks import answer_modal
from bot.toolkit.ids import RequestAction
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.home import Home
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.people import People


def register(app: AsyncApp, *, people: People, slack: SlackGateway,
             human_answers: HumanAnswers, worker: Worker,
             home: Home | None = None) -> None:
    async def on_answer_button_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()
        await _open_answer_form(body, action, with_suggestion=False)

    async def on_edit_suggestion_click(ack: AsyncAck, body: dict[str, Any],
                                       action: dict[str, Any]) -> None:
        await ack()
        await _open_answer_form(body, action, with_suggestion=True)

    async def _open_answer_form(body: dict[str, Any], action: dict[str, Any], *,
                                with_suggestion: bool) -> None:
        try:
            await require_staff(people, body["user"]["id"])
            form = await human_answers.answer_form(int(action["value"]))
        except UserFacingError as error:
            await tell(slack, body, str(error), home)
            return
        await slack.open_view(trigger_id=body["trigger_id"], view=answer_modal(
            request_id=form.request_id, number=form.number, question=form.question,
            case_number=form.case_number,
            suggestion=form.suggestion if with_suggestion else None))

    async def on_use_suggestion_click(ack: AsyncAck, body: dict[str, Any],
                                      action: dict[str, Any]) -> None:
        await ack()
        await _close(body, action, human_answers.use_suggestion)

    async def on_bot_answers_button_click(ack: AsyncAck, body: dict[str, Any],
                                          action: dict[str, Any]) -> None:
        await ack()
        await _close(body, action, human_answers.let_bot_answer)

    async def on_cancel_button_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()
        await _close(body, action, human_answers.cancel)

    async def _close(body: dict[str, Any], action: dict[str, Any], operation: Any) -> None:
        try:
            name = await require_staff(people, body["user"]["id"])
            closed = await operation(request_id=int(action["value"]), user_id=body["user"]["id"],
                                     name=name)
        except UserFacingError as error:
            await tell(slack, body, str(error), home)
            return
        worker.kick(closed.conversation_id)

    app.action(RequestAction.answer.value)(on_answer_button_click)
    app.action(RequestAction.bot_answers.value)(on_bot_answers_button_click)
    app.action(RequestAction.cancel.value)(on_cancel_button_click)
    app.action(RequestAction.use_suggestion.value)(on_use_suggestion_click)
    app.action(RequestAction.edit_suggestion.value)(on_edit_suggestion_click)
