"""Sentences of the handoff flow: assignment, commands, relays, drafts, routers."""

from __future__ import annotations


def who(assignee: str) -> str:
    if assignee == "bot":
        return "the bot"
    if assignee == "humans":
        return "the support team (unclaimed)"
    return f"<@{assignee}>"


def assignment_note(case_number: int, old: str, new: str, by: str, reason: str) -> str:
    actor = "the bot" if by in ("router", "scheduler", "bot") else who(by)
    return (f":arrows_counterclockwise: Case #{case_number}: {who(old)} → *{who(new)}* "
            f"(by {actor}: {reason})")


def already_assigned(case_number: int, assignee: str) -> str:
    return f"Case #{case_number} is already assigned to {who(assignee)}; nothing changed."


def case_resolved(case_number: int, by: str) -> str:
    return f":white_check_mark: Case #{case_number} resolved by {who(by)}."


def case_already_resolved(case_number: int) -> str:
    return f"Case #{case_number} is already resolved; nothing changed."


def not_staff() -> str:
    return "Sorry, only members of the support team can do that. Nothing was changed."


def unknown_case(text: str) -> str:
    return f"There is no case {text}. Use `/handoff list` to see open cases."


def usage(command: str) -> str:
    return (
        f"*{command}* — who answers a customer conversation (a *case*):\n"
        f"• `{command} take 42` — assign case #42 to yourself; the bot stays silent\n"
        f"• `{command} assign 42 @someone` — assign it to another staff member\n"
        f"• `{command} bot 42` — give it back to the bot\n"
        f"• `{command} status 42` — who has it, what is pending\n"
        f"• `{command} list` — open cases with assignee, waiting time, pending questions\n"
        f"• `{command} resolve 42` — close the case\n"
        f"• `{command} help` — this help"
    )


def customer_handed_to_humans() -> str:
    return "I've passed this to a person on our support team; they'll reply here shortly."


def staff_reply_what_did_you_mean(case_number: int) -> str:
    return (f"Case #{case_number} is answered by the bot and has no pending question. "
            "What should happen with your reply? Nothing reaches the customer until you choose.")


def kept_as_note() -> str:
    return "Kept as an internal note; the customer did not see it."


def draft_header(case_number: int) -> str:
    return f":memo: Case #{case_number}: draft answer, waiting for approval"


def draft_sent(name: str, edited: bool) -> str:
    return f":outbox_tray: Sent to the customer by {name}{' (edited)' if edited else ''}."


def draft_discarded(name: str) -> str:
    return f":wastebasket: Discarded by {name}; the customer did not see it."


def draft_not_pending() -> str:
    return "This draft was already sent or discarded; nothing changed."


def customer_team_is_on_it() -> str:
    return "Thanks! Our team is looking at this and will reply here shortly."


def stale_button() -> str:
    return "This card is out of date: the case changed since it was drawn. Nothing changed."
