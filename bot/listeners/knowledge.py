"""The buttons of a proposed knowledge entry (Save, Edit…, Discard) and the edit modal. Every
click re-checks that the clicker is staff. The click is recorded before it is acknowledged, so a
crash in between leaves the proposal with its buttons, to click again."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import BadCommand, UserFacingError
from bot.listeners.guard import require_staff, tell
from bot.listeners.views import submitted_text
from bot.pipeline.worker import Worker
from bot.toolkit.blocks import knowledge_edit_modal
from bot.toolkit.ids import KnowledgeAction, KnowledgeView
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.knowledge import Knowledge
from bot.usecases.people import People


def register(app: AsyncApp, *, people: People, slack: SlackGateway, knowledge: Knowledge,
             worker: Worker) -> None:
    async def on_click(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        try:
            entry_id = int(action.get("value") or "")
        except ValueError:
            await ack()
            return
        try:
            name = await require_staff(people, user_id)
            if action["action_id"] == KnowledgeAction.edit:
                question, answer = await knowledge.entry_words(entry_id)
                await ack()
                await slack.open_view(trigger_id=body["trigger_id"], view=knowledge_edit_modal(
                    entry_id=entry_id, question=question, answer=answer))
                return
            operation = (knowledge.save if action["action_id"] == KnowledgeAction.save
                         else knowledge.discard)
            conversation_id = await operation(entry_id=entry_id, user_id=user_id, name=name)
        except UserFacingError as error:
            await ack()
            await tell(slack, body, str(error))
            return
        await ack()
        if conversation_id:
            worker.kick(conversation_id)

    async def on_edit_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        question = submitted_text(view, KnowledgeView.question_block,
                                  KnowledgeView.question_input)
        answer = submitted_text(view, KnowledgeView.answer_block, KnowledgeView.answer_input)
        user_id = body["user"]["id"]
        try:
            name = await require_staff(people, user_id)
            if not question or not answer:
                raise BadCommand("Write both a question and an answer.")
            conversation_id = await knowledge.save(
                entry_id=int(view["private_metadata"]), user_id=user_id, name=name,
                question=question, answer=answer)
        except UserFacingError as error:
            await ack(response_action="errors",
                      errors={KnowledgeView.answer_block.value: str(error)[:150]})
            return
        await ack()
        if conversation_id:
            worker.kick(conversation_id)

    for action_id in KnowledgeAction:
        app.action(action_id.value)(on_click)
    app.view(KnowledgeView.edit_submit.value)(on_edit_submit)
