"""Modal submissions: the answer to one askHuman question."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import BadCommand, UserFacingError
from bot.listeners.guard import require_staff
from bot.pipeline.worker import Worker
from bot.toolkit.ids import AnswerViewState, CaseView, DraftView, RequestView
from bot.usecases.drafts import Drafts
from bot.usecases.handoff import Handoff
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.people import People


def submitted_text(view: dict[str, Any], block_id: str, action_id: str) -> str:
    values = view.get("state", {}).get("values", {})
    return str((values.get(block_id, {}).get(action_id, {}) or {}).get("value") or "").strip()


def register(app: AsyncApp, *, people: People, human_answers: HumanAnswers, handoff: Handoff,
             drafts: Drafts, worker: Worker) -> None:
    async def on_answer_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = submitted_text(view, RequestView.answer_block, RequestView.answer_input)
        if not text:
            await ack(response_action="errors",
                      errors={RequestView.answer_block.value: "Write an answer first."})
            return
        user_id = body["user"]["id"]
        state = AnswerViewState.decode(view["private_metadata"])
        try:
            name = await require_staff(people, user_id)
            closed = await human_answers.answer(
                request_id=state.request_id, text=text, user_id=user_id, name=name,
                from_suggestion=state.editing_suggestion)
        except UserFacingError as error:
            await ack(response_action="errors",
                      errors={RequestView.answer_block.value: str(error)[:150]})
            return
        await ack()
        worker.kick(closed.conversation_id)

    async def on_assign_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
                               ) -> None:
        values = view.get("state", {}).get("values", {})
        chosen = (values.get(CaseView.assign_block, {}).get(CaseView.assign_input, {})
                  or {}).get("selected_user")
        user_id = body["user"]["id"]
        try:
            await require_staff(people, user_id)
            if not chosen or not await people.is_staff(chosen):
                raise BadCommand("Pick someone on the support team.")
            changed = await handoff.assign(
                case_number=int(view["private_metadata"]), to=chosen, by=user_id,
                reason="Assign button")
        except UserFacingError as error:
            await ack(response_action="errors",
                      errors={CaseView.assign_block.value: str(error)[:150]})
            return
        await ack()
        worker.kick(changed.conversation_id)

    async def on_draft_edit_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
                                   ) -> None:
        text = submitted_text(view, DraftView.edit_block, DraftView.edit_input)
        user_id = body["user"]["id"]
        try:
            name = await require_staff(people, user_id)
            if not text:
                raise BadCommand("The answer cannot be empty.")
            conversation_id = await drafts.send(
                message_id=int(view["private_metadata"]), user_id=user_id, name=name, text=text)
        except UserFacingError as error:
            await ack(response_action="errors",
                      errors={DraftView.edit_block.value: str(error)[:150]})
            return
        await ack()
        worker.kick(conversation_id)

    app.view(RequestView.answer_submit.value)(on_answer_submit)
    app.view(CaseView.assign_submit.value)(on_assign_submit)
    app.view(DraftView.edit_submit.value)(on_draft_edit_submit)
