"""Reactions, as support teams already work in Slack: 👀 on a case's support post claims it
for the reactor; ✅ on it, or on the customer's message, resolves the case. Reactions from
anyone who is not staff change nothing."""

from __future__ import annotations

import logging
from typing import Any

from bot.config import AppConfig
from bot.errors import UserFacingError
from bot.usecases.case_lookup import CaseLookup
from bot.usecases.handoff import Handoff
from bot.usecases.people import People

log = logging.getLogger(__name__)

CLAIM_REACTIONS = frozenset({"eyes"})
RESOLVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})


class Reactions:
    def __init__(self, config: AppConfig, people: People, cases: CaseLookup,
                 handoff: Handoff) -> None:
        self._config = config
        self._people = people
        self._cases = cases
        self._handoff = handoff

    async def on_reaction(self, event: dict[str, Any]) -> int | None:
        name = event.get("reaction", "").split("::")[0]
        item = event.get("item") or {}
        channel, ts, user_id = item.get("channel"), item.get("ts"), event.get("user")
        if name not in CLAIM_REACTIONS | RESOLVE_REACTIONS or not (channel and ts):
            return None
        if not await self._people.is_staff(user_id):
            return None
        if channel == self._config.channels.support:
            conversation = await self._cases.by_support_post(ts)
        elif name in RESOLVE_REACTIONS and self._config.channels.is_customer_channel(channel):
            conversation = await self._cases.by_customer_message(channel, ts)
        else:
            return None
        if conversation is None:
            return None
        case_number = await self._cases.case_number(conversation.id)
        try:
            if name in CLAIM_REACTIONS:
                changed = await self._handoff.assign(case_number=case_number, to=user_id,
                                                     by=user_id, reason=":eyes: reaction")
            else:
                changed = await self._handoff.resolve(case_number=case_number, by=user_id)
        except UserFacingError as error:
            log.info("reaction %s on case %s changed nothing: %s", name, case_number, error)
            return None
        return changed.conversation_id
