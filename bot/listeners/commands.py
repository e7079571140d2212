"""The slash command (`/handoff` by default): take, assign, bot, status, list, resolve, help."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import BadCommand, UserFacingError
from bot.listeners.guard import require_staff
from bot.pipeline.worker import Worker
from bot.toolkit import texts
from bot.toolkit.blocks import knowledge_edit_modal
from bot.toolkit.slack_api import SlackGateway
from bot.usecases.handoff import Handoff, parse_case_number
from bot.usecases.home import Home
from bot.usecases.knowledge import Knowledge
from bot.usecases.people import People

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class Command:
    verb: str
    case_number: int | None = None
    user_id: str | None = None
    # `kb` only: its own words (`list`, `show 12`, `expire 12 2027-01-31`, ...).
    args: tuple[str, ...] = ()


def parse_command(text: str, command: str) -> Command:
    """`take 42`, `assign #42 <@U1>`, `bot 42`, `status 42`, `list`, `resolve 42`, `help`."""
    words = text.split()
    if not words or words[0].lower() == "help":
        return Command("help")
    verb, rest = words[0].lower(), words[1:]
    if verb == "list" and not rest:
        return Command("list")
    if verb == "kb":
        return Command("kb", args=tuple(rest))
    if verb in ("take", "bot", "status", "resolve") and len(rest) == 1:
        return Command(verb, parse_case_number(rest[0]))
    if verb == "assign" and len(rest) == 2:
        match = _USER_MENTION.match(rest[1])
        if not match:
            raise BadCommand(f"Pick the person with @-autocomplete, for example "
                             f"`{command} assign {rest[0]} @sam`.\n\n"
                             + texts.usage(command))
        return Command(verb, parse_case_number(rest[0]), match.group(1))
    raise BadCommand(f"I didn't understand `{command} {text.strip()}`.\n\n"
                     + texts.usage(command))


async def run_command(parsed: Command, *, user_id: str, command: str, people: People,
                      handoff: Handoff, worker: Worker,
                      knowledge: Knowledge | None = None) -> str:
    if parsed.verb == "help":
        return texts.usage(command)
    if not await people.is_staff(user_id):
        return texts.not_staff()
    if parsed.verb == "kb":
        if knowledge is None:
            raise BadCommand(texts.usage(command))
        return await knowledge.command(list(parsed.args), user_id=user_id)
    if parsed.verb == "list":
        return await handoff.list_open()
    number = parsed.case_number
    if number is None:  # the parser gives every other verb its case number
        raise BadCommand(texts.usage(command))
    if parsed.verb == "status":
        return await handoff.status(case_number=number)
    if parsed.verb == "resolve":
        changed = await handoff.resolve(case_number=number, by=user_id)
    elif parsed.verb == "take":
        changed = await handoff.assign(case_number=number, to=user_id, by=user_id,
                                       reason=f"{command} take")
    elif parsed.verb == "bot":
        changed = await handoff.assign(case_number=number, to="bot", by=user_id,
                                       reason=f"{command} bot")
    else:
        if not await people.is_staff(parsed.user_id):
            raise BadCommand(f"<@{parsed.user_id}> is not on the support team.")
        changed = await handoff.assign(case_number=number, to=parsed.user_id or "", by=user_id,
                                       reason=f"{command} assign")
    worker.kick(changed.conversation_id)
    return f"Done: case #{changed.case_number} → {texts.who(changed.assignee)}."


def kb_edit_entry(parsed: Command) -> int | None:
    """The entry of `kb edit N` (it opens a modal), else None."""
    args = parsed.args
    if parsed.verb == "kb" and len(args) == 2 and args[0].lower() == "edit":
        number = args[1].lstrip("#")
        if number.isdigit():
            return int(number)
    return None


def register(app: AsyncApp, *, command_name: str, people: People, handoff: Handoff,
             worker: Worker, home: Home | None = None, knowledge: Knowledge | None = None,
             slack: SlackGateway | None = None) -> None:
    async def on_handoff_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        blocks = None
        try:
            parsed = parse_command(command.get("text", ""), command_name)
            entry_id = kb_edit_entry(parsed)
            if entry_id is not None and knowledge is not None and slack is not None:
                await require_staff(people, command["user_id"])
                question, answer = await knowledge.entry_words(entry_id)
                await ack()
                await slack.open_view(trigger_id=command["trigger_id"], view=knowledge_edit_modal(
                    entry_id=entry_id, question=question, answer=answer))
                return
            reply = await run_command(parsed, user_id=command["user_id"], command=command_name,
                                      people=people, handoff=handoff, worker=worker,
                                      knowledge=knowledge)
            if parsed.verb == "list" and home is not None and reply != texts.not_staff():
                # The same queue as the Home tab, with its buttons; the text stays as the
                # notification's words.
                _, blocks = await home.queue_message(command["user_id"])
        except UserFacingError as error:
            reply = str(error)
        await ack(text=reply, blocks=blocks, response_type="ephemeral")

    app.command(command_name)(on_handoff_command)
