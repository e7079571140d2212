"""Buttons on case posts (take over, return to bot, assign, resolve, reopen), on the private
"what did you mean?" question about a staff reply, and on draft answers. Every click re-checks
that the clicker is staff. *Take over* re-checks that the case is still with the assignee its
card was drawn for, so an old card never silently takes a case from someone; returning to the
bot and assigning name the next owner on purpose and work from any card. Draft buttons
re-check that the draft is still waiting."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.errors import UserFacingError
from bot.listeners.guard import require_staff, tell
from bot.pipeline.worker import Worker
from bot.toolkit import texts
from bot.toolkit.blocks import assign_modal, text_modal
from bot.toolkit.ids import CaseAction, CaseButtonValue, DraftAction, DraftView, StaffReplyAction
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.drafts import Drafts
from bot.usecases.handoff import Handoff
from bot.usecases.home import Home
from bot.usecases.people import People
from bot.usecases.staff_replies import StaffReplies


def register(app: AsyncApp, *, people: People, slack: SlackGateway, handoff: Handoff,
             staff_replies: StaffReplies, drafts: Drafts, worker: Worker,
             home: Home | None = None) -> None:
    async def guarded(body: dict[str, Any], operation: Any) -> None:
        try:
            name = await require_staff(people, body["user"]["id"])
            conversation_id = await operation(body["user"]["id"], name)
        except UserFacingError as error:
            await tell(slack, body, str(error), home)
            return
        if conversation_id:
            worker.kick(conversation_id)

    def assign_on_click(to_clicker: bool, reason: str) -> Any:
        """A button that gives the case to the clicker (only from the assignee its card was
        drawn for), or back to the bot."""

        async def on_click(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            value = CaseButtonValue.decode(action["value"])

            async def assign(user_id: str, _name: str) -> int:
                changed = await handoff.assign(
                    case_number=value.case_number, to=user_id if to_clicker else "bot",
                    by=user_id, reason=reason, expect=value.drawn_for if to_clicker else None)
                return changed.conversation_id

            await guarded(body, assign)

        return on_click

    async def on_assign_button_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()

        async def open_modal(_user_id: str, _name: str) -> None:
            case_number = CaseButtonValue.decode(action["value"]).case_number
            await slack.open_view(trigger_id=body["trigger_id"],
                                  view=assign_modal(case_number=case_number))

        await guarded(body, open_modal)

    async def on_resolve_or_reopen_click(ack: AsyncAck, body: dict[str, Any],
                                         action: dict[str, Any]) -> None:
        await ack()
        case_number = CaseButtonValue.decode(action["value"]).case_number
        operation = (handoff.resolve if action["action_id"] == CaseAction.resolve
                     else handoff.reopen)

        async def change(user_id: str, _name: str) -> int:
            return (await operation(case_number=case_number, by=user_id)).conversation_id

        await guarded(body, change)

    async def on_staff_reply_choice(ack: AsyncAck, body: dict[str, Any],
                                    action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        choice = json.loads(action["value"])

        async def decide(user_id: str, name: str) -> int | None:
            if action["action_id"] == StaffReplyAction.keep_note:
                await respond(text=texts.kept_as_note(), replace_original=True)
                return None
            text = await staff_replies.original_text(thread_ts=choice["t"], ts=choice["ts"])
            if text is None:
                raise UserFacingError("That reply no longer exists; nothing was sent.")
            if action["action_id"] == StaffReplyAction.take_over:
                await handoff.claim_unowned(choice["c"], user_id=user_id,
                                            reason="took over from a support reply")
            await staff_replies.relay(choice["c"], text=text, user_id=user_id, name=name,
                                      support_ts=choice["ts"])
            await respond(text="Sent to the customer.", replace_original=True)
            return int(choice["c"])

        await guarded(body, decide)

    async def on_draft_send_click(ack: AsyncAck, body: dict[str, Any],
                                  action: dict[str, Any]) -> None:
        await ack()

        async def send(user_id: str, name: str) -> int:
            return await drafts.send(message_id=int(action["value"]), user_id=user_id,
                                     name=name)

        await guarded(body, send)

    async def on_draft_discard_click(ack: AsyncAck, body: dict[str, Any],
                                     action: dict[str, Any]) -> None:
        await ack()

        async def discard(_user_id: str, name: str) -> int:
            return await drafts.discard(message_id=int(action["value"]), name=name)

        await guarded(body, discard)

    async def on_draft_edit_click(ack: AsyncAck, body: dict[str, Any],
                                  action: dict[str, Any]) -> None:
        await ack()

        async def open_editor(_user_id: str, _name: str) -> None:
            text = await drafts.text_of(int(action["value"]))
            await slack.open_view(trigger_id=body["trigger_id"], view=text_modal(
                callback_id=DraftView.edit_submit, title="Edit draft",
                block_id=DraftView.edit_block, action_id=DraftView.edit_input,
                label="Answer to the customer", initial=text,
                private_metadata=action["value"], submit="Send"))

        await guarded(body, open_editor)

    app.action(CaseAction.take.value)(assign_on_click(True, "Take over button"))
    app.action(CaseAction.return_to_bot.value)(assign_on_click(False, "Return to bot button"))
    app.action(CaseAction.assign.value)(on_assign_button_click)
    app.action(CaseAction.resolve.value)(on_resolve_or_reopen_click)
    app.action(CaseAction.reopen.value)(on_resolve_or_reopen_click)
    for choice in StaffReplyAction:
        app.action(choice.value)(on_staff_reply_choice)
    app.action(DraftAction.send.value)(on_draft_send_click)
    app.action(DraftAction.discard.value)(on_draft_discard_click)
    app.action(DraftAction.edit.value)(on_draft_edit_click)
