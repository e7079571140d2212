"""The message shortcut "Take over conversation" on any customer message."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import UserFacingError
from bot.listeners.actions import require_staff, tell
from bot.process.wiring import Services
from bot.toolkit import texts
from bot.toolkit.ids import CaseShortcut
from bot.toolkit.payloads import thread_root_ts


def register(app: AsyncApp, services: Services) -> None:
    async def on_take_shortcut(ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await ack()
        user_id = shortcut["user"]["id"]
        channel = shortcut["channel"]["id"]
        try:
            await require_staff(services, user_id)
            conversation_id = await services.cases.find_or_open(
                team_id=(shortcut.get("team") or {}).get("id", ""), channel_id=channel,
                thread_ts=thread_root_ts(shortcut["message"]))
            if conversation_id is None:
                raise UserFacingError("That message is not in a customer channel.")
            case_number = await services.cases.case_number(conversation_id)
            changed = await services.handoff.assign(
                case_number=case_number, to=user_id, by=user_id,
                reason="message shortcut: Take over conversation")
        except UserFacingError as error:
            await tell(services, shortcut, str(error))
            return
        services.worker.kick(changed.conversation_id)
        await tell(services, shortcut, f"Case #{changed.case_number} is yours now "
                                       f"({texts.who(user_id)}).")

    app.shortcut(CaseShortcut.take.value)(on_take_shortcut)
