"""What a person does on the sandbox page, done the way a Slack client does it: the emulator
stores it and sends the bot the same signed payload Slack would send.

Every function raises `ActionError` with a sentence for the page when the action cannot be done.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox import slack_payloads as p
from sandbox.slack_api import remove_reaction
from sandbox.slack_delivery import DeliveryResult
from sandbox.slack_emulator import SlackEmulator
from sandbox.slack_state import SlackError

_MENTION = re.compile(r"(?<![\w<|@])@([A-Za-z][\w.-]*)")
_CHANNEL = re.compile(r"(?<![\w<|&#])#([a-z0-9][a-z0-9_-]*)")


class ActionError(Exception):
    """The action was refused; the message says why."""


def escape(text: str) -> str:
    """Slack's escaping of what a person types: &, < and > become entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def find_user(emulator: SlackEmulator, word: str) -> str | None:
    """A user id for `@word`: the handle, the display name or the first name."""
    wanted = word.lower().rstrip(".")
    for user in emulator.ws.users.values():
        names = {user.name.lower(), user.display_name.lower(),
                 user.real_name.split(" ")[0].lower()}
        if wanted in names:
            return user.id
    return None


def link_names(emulator: SlackEmulator, text: str, *, with_names: bool = False) -> str:
    """`@sam` and `#support` as a Slack client sends them: `<@U…>` and `<#C…|support>`
    (`<@U…|sam>` when `with_names`, as in escaped slash command text)."""
    def user(match: re.Match[str]) -> str:
        user_id = find_user(emulator, match.group(1))
        if user_id is None:
            return match.group(0)
        return f"<@{user_id}|{emulator.ws.users[user_id].name}>" if with_names else f"<@{user_id}>"

    def channel(match: re.Match[str]) -> str:
        found = next((c for c in emulator.ws.channels.values() if c.name == match.group(1)),
                     None)
        return f"<#{found.id}|{found.name}>" if found else match.group(0)

    return _CHANNEL.sub(channel, _MENTION.sub(user, text))


def whisper(emulator: SlackEmulator, *, channel: str, user: str, text: str,
            blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None,
            source: str = "sandbox") -> None:
    """Show an ephemeral message to one person, as Slack shows a command's reply."""
    emulator.ws.ephemerals.append({"channel": channel, "user": user, "ts": emulator.ws.next_ts(),
                                   "thread_ts": thread_ts, "text": text, "blocks": blocks,
                                   "username": None, "source": source})


def _check(result: DeliveryResult, what: str) -> DeliveryResult:
    if not result.ok:
        detail = f"HTTP {result.status}" if result.status else (result.error or "no answer")
        raise ActionError(f"The bot did not accept the {what} ({detail}).")
    return result


async def post_message(emulator: SlackEmulator, *, user: str, channel: str, text: str,
                       thread_ts: str | None = None) -> str:
    try:
        return await emulator.user_posts(channel, user, link_names(emulator, escape(text)),
                                         thread_ts=thread_ts)
    except ValueError as error:
        raise ActionError(str(error)) from None


async def run_command(emulator: SlackEmulator, *, user: str, channel: str, line: str,
                      command: str, escape_names: bool, thread_ts: str | None = None) -> None:
    """`/handoff take 1` typed in a composer: the command goes to the bot; its immediate
    answer is shown to the person only, as Slack does."""
    name, _, text = line.strip().partition(" ")
    if name != command:
        whisper(emulator, channel=channel, user=user, thread_ts=thread_ts,
                text=f"`{name}` is not a valid command. The bot's command is `{command}` "
                     f"(try `{command} help`).")
        return
    text = link_names(emulator, text.strip(), with_names=True) if escape_names else text.strip()
    result = _check(await emulator.slash_command(name, text, user=user, channel=channel),
                    "command")
    try:
        answer = result.json()
    except ValueError:
        answer = {"text": result.body}
    if not isinstance(answer, dict) or not (answer.get("text") or answer.get("blocks")):
        return
    if answer.get("response_type") == "in_channel":
        emulator.api.chat_post_message({"channel": channel, "text": answer.get("text", ""),
                                        "blocks": answer.get("blocks")})
    else:
        whisper(emulator, channel=channel, user=user, thread_ts=thread_ts,
                text=answer.get("text", ""), blocks=answer.get("blocks"), source="command")


async def toggle_reaction(emulator: SlackEmulator, *, user: str, channel: str, ts: str,
                          name: str) -> None:
    """Add the reaction, or take it back when this person already reacted with it."""
    try:
        message = emulator.ws.message(emulator.ws.channel(channel), ts)
    except SlackError:
        raise ActionError("That message no longer exists.") from None
    mine = any(r["name"] == name and user in r["users"] for r in message.get("reactions") or [])
    if not mine:
        try:
            await emulator.add_reaction(channel, ts, name, user)
        except ValueError as error:
            raise ActionError(str(error)) from None
        return
    remove_reaction(message, name, user)
    await emulator.send_event(p.reaction_event("reaction_removed", emulator.ws.channel(channel),
                                               message, name, user, emulator.ws.next_ts()))


async def click(emulator: SlackEmulator, *, user: str, channel: str, ts: str, action_id: str,
                block_id: str | None = None, value: str | None = None,
                ephemeral: bool = False) -> None:
    try:
        if ephemeral:
            result = await emulator.click_ephemeral_button(
                user=user, ephemeral_ts=ts, action_id=action_id, value=value)
        else:
            result = await emulator.click_button(user=user, channel=channel, message_ts=ts,
                                                 action_id=action_id, value=value,
                                                 block_id=block_id)
    except ValueError as error:
        raise ActionError(str(error)) from None
    _check(result, "click")


async def open_home(emulator: SlackEmulator, *, user: str) -> None:
    """The person opens the app's Home tab: Slack tells the bot (`app_home_opened`), and the
    bot publishes the view the page then shows."""
    result = await emulator.open_home(user)
    if result is not None:
        _check(result, "Home tab")


async def click_home(emulator: SlackEmulator, *, user: str, action_id: str,
                     block_id: str | None = None, value: str | None = None) -> None:
    """A click on a button of the person's Home tab."""
    try:
        result = await emulator.click_home_button(user=user, action_id=action_id,
                                                  block_id=block_id, value=value)
    except ValueError as error:
        raise ActionError(str(error)) from None
    _check(result, "click")


async def shortcut(emulator: SlackEmulator, *, user: str, channel: str, ts: str,
                   callback_id: str) -> None:
    try:
        result = await emulator.message_shortcut(callback_id, user=user, channel=channel,
                                                 message_ts=ts)
    except ValueError as error:
        raise ActionError(str(error)) from None
    _check(result, "shortcut")


async def submit_view(emulator: SlackEmulator, *, user: str, view_id: str,
                      values: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Submit a modal; the field errors the bot answered with (empty when it closed)."""
    view = emulator.ws.views.get(view_id)
    if view is None or view.get("user") != user:
        raise ActionError("That window is no longer open.")
    result = _check(await emulator.submit_view(view_id, user=user, values=values), "form")
    try:
        answer = result.json() or {}
    except ValueError:
        answer = {}
    if isinstance(answer, dict) and answer.get("response_action") == "errors":
        return {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
    return {}


def close_view(emulator: SlackEmulator, *, user: str, view_id: str) -> None:
    """Close a modal and the views stacked with it (the app is not told, as with
    `notify_on_close: false`)."""
    views = emulator.ws.views
    view = views.get(view_id)
    if view is None or view.get("user") != user:
        return
    for other in [v["id"] for v in views.values() if v["root_view_id"] == view["root_view_id"]]:
        del views[other]


def dismiss(emulator: SlackEmulator, *, user: str, ts: str) -> None:
    emulator.ws.ephemerals[:] = [e for e in emulator.ws.ephemerals
                                 if not (e["ts"] == ts and e["user"] == user)]
