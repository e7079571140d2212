"""The message shortcut "Take over conversation" on any customer message."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.listeners.guard import require_staff, tell
from bot.pipeline.worker import Worker
from bot.toolkit import texts
from bot.toolkit.ids import CaseShortcut
from bot.toolkit.payloads import thread_root_ts
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.case_lookup import CaseLookup
from bot.usecases.handoff import Handoff
from bot.usecases.people import People


def register(app: AsyncApp, *, people: People, slack: SlackGateway, cases: CaseLookup,
             handoff: Handoff, worker: Worker) -> None:
    async def on_take_shortcut(ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await ack()
        user_id = shortcut["user"]["id"]
        channel = shortcut["channel"]["id"]
        try:
            await require_staff(people, user_id)
            conversation_id = await cases.find_or_open(
                team_id=(shortcut.get("team") or {}).get("id", ""), channel_id=channel,
                thread_ts=thread_root_ts(shortcut["message"]))
            if conversation_id is None:
                raise UserFacingError("That message is not in a customer channel.")
            case_number = await cases.case_number(conversation_id)
            changed = await handoff.assign(
                case_number=case_number, to=user_id, by=user_id,
                reason="message shortcut: Take over conversation")
        except UserFacingError as error:
            await tell(slack, shortcut, str(error))
            return
        worker.kick(changed.conversation_id)
        await tell(slack, shortcut, f"Case #{changed.case_number} is yours now "
                                    f"({texts.who(user_id)}).")

    app.shortcut(CaseShortcut.take.value)(on_take_shortcut)
