"""Modal submissions: the answer to one askHuman question."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.runtime import Services
from bot.slack.actions import require_staff
from bot.slack.ids import RequestView


def submitted_text(view: dict[str, Any], block_id: str, action_id: str) -> str:
    values = view.get("state", {}).get("values", {})
    return str((values.get(block_id, {}).get(action_id, {}) or {}).get("value") or "").strip()


def register(app: AsyncApp, services: Services) -> None:
    async def on_answer_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = submitted_text(view, RequestView.answer_block, RequestView.answer_input)
        if not text:
            await ack(response_action="errors",
                      errors={RequestView.answer_block.value: "Write an answer first."})
            return
        user_id = body["user"]["id"]
        try:
            name = await require_staff(services, user_id)
            closed = await services.human_requests.answer(
                request_id=int(view["private_metadata"]), text=text, user_id=user_id, name=name)
        except UserFacingError as error:
            await ack(response_action="errors",
                      errors={RequestView.answer_block.value: str(error)[:150]})
            return
        await ack()
        services.worker.kick(closed.conversation_id)

    app.view(RequestView.answer_submit.value)(on_answer_submit)
