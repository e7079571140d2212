"""Every sentence people read, as named functions; tests build expectations with the same ones."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.toolkit.mrkdwn import neutralise_mentions


def case_label(case_number: int) -> str:
    return f"Case #{case_number}"


def holding_reaction() -> str:
    """Reaction put on a customer's message while the bot works on it."""
    return "hourglass_flowing_sand"




def waiting_on_team_note() -> str:
    return "I've asked our support team about this and will get back to you here shortly."




def model_failed_customer() -> str:
    return ("Sorry, I'm having trouble answering right now. I've let our support team know, "
            "and someone will follow up in this thread.")


def model_failed_staff(case_number: int, error: str) -> str:
    return (f":warning: {case_label(case_number)}: the model failed after retries ({error}). "
            "The customer was told a person will follow up.")


def model_gave_up_staff(case_number: int, reason: str, command: str) -> str:
    """Told to staff when bad model output stopped the bot on a customer message."""
    return (f":warning: {case_label(case_number)}: {reason}. The customer was told a person "
            f"will follow up: take the case with `{command} take {case_number}`.")


def model_no_usable_answer(attempts: int) -> str:
    return f"the model gave no usable answer (empty, {attempts} tries)"


def model_step_limit(steps: int) -> str:
    return f"the bot stopped after {steps} model steps on one customer message"


def model_tool_errors(count: int, last: str) -> str:
    return f"the bot stopped after {count} tool errors in a row (last: {last})"


def unknown_tool_error(name: str) -> str:
    return f"unknown tool `{name}`"


def bad_arguments_error(name: str) -> str:
    return f"unreadable arguments for `{name}`"


def slack_post_failed_staff(case_number: int | None, error: str) -> str:
    label = case_label(case_number) if case_number else "A message"
    return f":warning: {label}: a Slack post could not be delivered ({error})."


def slack_post_expired(error: str, retried_for: timedelta) -> str:
    hours = retried_for.total_seconds() / 3600
    window = f"{hours:g} h" if hours >= 1 else f"{retried_for.total_seconds() / 60:g} min"
    return f"Slack kept refusing it for {window}, last with {error}"


def support_channel_shared_at_start(channel: str, teams: list[str]) -> str:
    """Why start-up stops: the support channel is shared with another workspace."""
    who = f" ({', '.join(teams)})" if teams else ""
    return (f"channels.support={channel} is shared with another workspace or organisation"
            f"{who}, and the bot posts customer conversations there. Use an internal channel "
            "of your own workspace for channels.support, or stop sharing this one (channel "
            "details → Settings → Stop sharing / Disconnect, or cancel the pending invitation), "
            "then start the bot again.")


def support_channel_unverifiable_at_start(channel: str, error: str) -> str:
    return (f"cannot check channels.support={channel} ({error}): check the channel id, invite "
            "the bot to it, and that the app has the channels:read (groups:read for a private "
            "channel) scope")


def support_channel_paused() -> str:
    """Posted in the support channel when it becomes shared with another workspace."""
    return (":double_vertical_bar: This channel is now shared with another workspace, so the "
            "support bot has paused: it will not post customer conversations here. Its posts "
            "are kept and will follow once the channel is internal again (stop sharing it), or "
            "point channels.support at an internal channel.")


def support_channel_resumed(held: int) -> str:
    later = f" Posting the {held} held message(s) now." if held else ""
    return f":arrow_forward: This channel is internal again, so the support bot resumed.{later}"


def human_request_header(case_number: int) -> str:
    return f"{case_label(case_number)}: the bot needs help"


def human_request_notification(case_number: int, question: str) -> str:
    """The plain text (notification) of an askHuman post; the model's question pings nobody."""
    return f"{human_request_header(case_number)}: {neutralise_mentions(question)}"


def human_request_question(number: int, question: str) -> str:
    return f"*Question #{number}:* {neutralise_mentions(question)}"


def no_suggestion(number: int) -> str:
    return f"Question #{number} has no suggested answer; nothing was sent."


def suggested_answer_section(suggestion: str) -> str:
    """The model's suggested reply on a question's card; its words ping nobody."""
    quoted = "\n".join(f">{line}" for line in neutralise_mentions(suggestion).split("\n"))
    return f"*Suggested answer* (sent as it is with *Use this*):\n{quoted}"


def unreadable_question(raw: str, limit: int = 500) -> str:
    """An askHuman question whose arguments could not be read: the raw text, shown as code."""
    shown = raw if len(raw) <= limit else raw[: limit - 1] + "…"
    shown = shown.replace("```", "'''") or " "
    return f"(the model asked without a readable question)\n```{shown}```"


def human_request_answer_hint(number: int) -> str:
    """How to answer one question; with several open, a reply names it by its own number."""
    return (f"Reply in this thread to answer, or use the buttons. With several questions open, "
            f"begin your reply with `#{number}` to answer this one (question #{number}).")


def human_request_answered(number: int, name: str, answer: str) -> str:
    return f":white_check_mark: Question #{number} answered by {name}: {answer}"


def human_request_closed(number: int, status: str) -> str:
    return f"Question #{number} is {status}."


def request_already_closed(number: int, status: str, by: str | None) -> str:
    who = f" by {by}" if by else ""
    return f"Question #{number} was already {status}{who}; your reply changed nothing."


def no_pending_question(case_number: int) -> str:
    return f"{case_label(case_number)} has no pending question with that number."


def not_staff_answer() -> str:
    return "Only support staff can answer the bot's questions; your reply was not used."


def instruction_result(outcome: str, instruction: str) -> str:
    """An askHuman result that carries no person's answer, only what the model should do now.
    JSON, so that any model (the offline one included) can tell it from a staff member's words
    and never repeats it to the customer."""
    return json.dumps({"outcome": outcome, "instruction": instruction})


def bot_answers_alone_result(name: str) -> str:
    return instruction_result(
        "answer_on_your_own",
        f"Support staff member {name} asked you to answer on your own, without their help. "
        "Answer as best you can and be honest about anything you are unsure of.")


def request_cancelled_result(name: str) -> str:
    return instruction_result(
        "cancelled",
        f"The question was cancelled by {name}; no human answer will come. Continue "
        "without it and be honest with the customer about what you do not know.")


def request_expired_result() -> str:
    return instruction_result(
        "no_answer_in_time",
        "No human answered in time. Tell the customer honestly that the team has not "
        "answered yet and will follow up in this thread; do not invent an answer.")


def unknown_tool_result(name: str, known: list[str]) -> str:
    return (f"There is no tool named {name!r}; the only tools are {', '.join(known)}. "
            "Answer the customer without it, or call one of those.")


def bad_arguments_result(name: str, raw: str, limit: int = 300) -> str:
    shown = raw if len(raw) <= limit else raw[:limit] + "…"
    return (f"The arguments of your {name} call could not be read (they must be one JSON "
            f"object matching the tool's parameters); you sent: {shown}. Call it again with "
            "valid arguments, or answer without it.")


def took_over_result(name: str) -> str:
    return instruction_result(
        "taken_over",
        f"A human support agent ({name}) took over the conversation; this question is closed.")


def customer_wrote_while_waiting(name: str, text: str) -> str:
    """Copy of a customer's message into the case thread while the bot waits on staff."""
    return (f":speech_balloon: {neutralise_mentions(name)} wrote meanwhile: "
            f"{neutralise_mentions(text)}")


def cannot_read_files() -> str:
    """Told to a customer whose message has no words (only files, images or attachments)."""
    return ("Sorry, I can only read text for now: I can't open files or images. Could you "
            "write your question here in the thread?")


def message_without_words(file_names: list[str]) -> str:
    """What the history (and staff) keep of a customer's message that had no words."""
    if not file_names:
        return "(sent a message without text)"
    return f"(sent {len(file_names)} file(s) without text: {', '.join(file_names)})"


def customer_message_forward(name: str, text: str) -> str:
    """Copy of a customer's message to the staff member who owns the case."""
    return f":speech_balloon: *{neutralise_mentions(name)}:* {neutralise_mentions(text)}"


def excerpt_line(role: str, text: str, limit: int = 200) -> str:
    """One quoted line of the conversation on a case card; mentions in it ping nobody."""
    clean = " ".join(text.split())
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return f"> *{neutralise_mentions(role)}:* {neutralise_mentions(clean)}"


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"




def team_back_at(opening: datetime, timezone: str) -> str:
    """When the team is back, in the team's time zone: `Monday 4 January, 09:00 (Europe/Berlin)`."""
    local = opening.astimezone(ZoneInfo(timezone))
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M} ({timezone})"


def team_away_note(back: str) -> str:
    """Told to a customer whose question reaches staff outside business hours."""
    return (f"Our support team is outside business hours right now and will be back on {back}. "
            "They'll pick up your question then and reply in this thread.")


def customer_holding_notice() -> str:
    return ("Thanks for your patience: our support team is still on your question and will "
            "reply in this thread as soon as they can.")


def customer_holding_notice_after_hours(back: str) -> str:
    return ("Thanks for your patience: our support team is outside business hours right now "
            f"and will be back on {back}. They'll reply in this thread then.")


def reminder(case_number: int, number: int, question: str, mentions: str, sent: int,
             limit: int) -> str:
    who = f"{mentions} " if mentions else ""
    return (f"{who}:bell: Reminder {sent}/{limit}: {case_label(case_number)} is still waiting "
            f"for an answer to question #{number}: {neutralise_mentions(question)}\n"
            "Reply in this thread to answer.")


def escalation(case_number: int, number: int, question: str, waited: timedelta,
               link: str | None) -> str:
    where = f" <{link}|Open the support thread>" if link else ""
    return (f":rotating_light: {case_label(case_number)} has waited {format_duration(waited)} "
            f"for an answer to question #{number}: {neutralise_mentions(question)}.{where}")


def request_expired_staff(number: int, waited: timedelta) -> str:
    return (f":hourglass: Nobody answered question #{number} within "
            f"{format_duration(waited)}, so it was closed and the bot told the customer the "
            "team will follow up. You can still reply in this thread.")


def case_released(case_number: int, owner: str, idle: timedelta, to: str) -> str:
    after = f"{case_label(case_number)} had no activity from <@{owner}> for {format_duration(idle)}"
    if to == "bot":
        return f":leftwards_arrow_with_hook: {after}, so it went back to the bot."
    return f":leftwards_arrow_with_hook: {after}, so it is unassigned again: anyone can take it."


def release_reason(idle: timedelta) -> str:
    return f"no human activity for {format_duration(idle)}"


# Handoff flow: assignment, commands, relays, drafts, routers.

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


def case_not_resolved(case_number: int) -> str:
    return f"Case #{case_number} is not resolved; nothing to reopen."


def case_reopened(case_number: int, by: str) -> str:
    return f":leftwards_arrow_with_hook: Case #{case_number} reopened by {who(by)}."


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
        f"• `{command} kb list` · `kb show 12` · `kb edit 12` · `kb retire 12` · "
        f"`kb expire 12 2027-01-31` — knowledge learnt from staff answers\n"
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


def stale_button(case_number: int, assignee: str, command: str) -> str:
    return (f"This card is out of date: case #{case_number} is now with {who(assignee)}, so "
            f"nothing changed. See `{command} status #{case_number}`, and use "
            f"`{command} take {case_number}` if you still mean to take it over.")


def question_outcome(number: int, status: str, name: str | None, answer: str | None) -> str:
    """How a closed question ended, as its card says it."""
    if status == "answered" and answer:
        return human_request_answered(number, name or "someone", answer)
    return f"{human_request_closed(number, status)} ({name or 'scheduler'})"


def case_status(*, status: str, assignee: str, pending: int, waiting: timedelta | None,
                oldest_question: timedelta | None) -> str:
    """The case card's status line: who has the case now, and how long people have waited."""
    if status == "resolved":
        return ":white_check_mark: *Resolved.* Reopen it if the customer needs more."
    if assignee == "humans":
        line = ":raising_hand: *Unclaimed:* waiting for someone on the team to take it"
    elif assignee != "bot":
        line = f":bust_in_silhouette: *Owned by {who(assignee)}*"
    elif pending:
        line = f":hourglass_flowing_sand: *Waiting on staff:* {pending} question(s) open"
    else:
        line = ":robot_face: *The bot is answering*"
    if oldest_question is not None:
        line += f" · oldest question waiting {format_duration(oldest_question)}"
    elif waiting is not None:
        line += f" · customer waiting {format_duration(waiting)}"
    return line


# Satisfaction ratings.

RATING_LABELS = {3: ":grinning: Good", 2: ":neutral_face: OK", 1: ":slightly_frowning_face: Bad"}


def rating_label(score: int) -> str:
    return RATING_LABELS.get(score, str(score))


def rating_prompt() -> str:
    return "Your question is resolved. How did we do? One click tells us."


def rating_thanks(score: int) -> str:
    return f"Thank you for your feedback! You rated this: {rating_label(score)}"


def rating_note(case_number: int, score: int) -> str:
    return f":star: Case #{case_number}: the customer rated the support {rating_label(score)}."


def rating_not_yours() -> str:
    return "Only the customer who was asked can rate this conversation; nothing was recorded."


def rating_already_given() -> str:
    return "This conversation was already rated; thank you."


def account_line(name: str, tier: str | None, notes: str | None) -> str:
    """The account of a case's customer channel, shown on the case card (from app.yaml)."""
    line = f"*Account:* {name}"
    if tier:
        line += f" · tier {tier}"
    if notes:
        line += f"\n_{notes}_"
    return line


# answers streamed, thinking status, feedback buttons (issue 15) -------------------------------
def thinking_status() -> str:
    """The assistant status under a customer's thread while the model works."""
    return "is thinking…"


def thinking_messages() -> list[str]:
    """Loading messages Slack rotates under the status."""
    return ["Reading your question…", "Looking for the answer…", "Writing the answer…"]


def feedback_positive_label() -> str:
    return "👍"


def feedback_negative_label() -> str:
    return "👎"


def feedback_accessibility(positive: bool) -> str:
    return "This answer helped" if positive else "This answer did not help"


def feedback_thanks() -> str:
    return "Thank you, your feedback on this answer was recorded."


def feedback_not_yours() -> str:
    return "Only the customer who asked can rate this answer; nothing was recorded."


def feedback_already_given() -> str:
    return "You already rated this answer; the first click counts."


def feedback_staff_note(case_number: int, question: str, answer: str, who: str) -> str:
    """A 👎 on a bot answer, for staff to step in; the words quoted are not ours."""
    return (f":thumbsdown: Case #{case_number}: {who} found the bot's answer unhelpful.\n"
            f"*Question:*\n{_quote(question)}\n*Answer:*\n{_quote(answer)}")


def _quote(text: str, limit: int = 1500) -> str:
    text = text if len(text) <= limit else text[:limit] + "…"
    return "\n".join("> " + line for line in (text.splitlines() or [""]))
# The queue (the app's Home tab and `/handoff list`).

def home_title() -> str:
    return ":inbox_tray: *Support queue*"


def home_section(kind: str, count: int) -> str:
    """The heading of one list of the queue."""
    names = {"mine": "Your cases", "unclaimed": "Unclaimed: waiting on staff, no owner",
             "questions": "Questions waiting longest"}
    return f"*{names.get(kind, kind)}* ({count})"


def home_section_empty(kind: str) -> str:
    return {"mine": "_Nothing assigned to you._",
            "unclaimed": "_No unclaimed cases._",
            "questions": "_No question is waiting for staff._"}.get(kind, "_Nothing here._")


def home_support_thread_link(link: str) -> str:
    return f"<{link}|support thread>"


def home_more(count: int, command: str) -> str:
    return f"…and {count} more case(s) not shown. `{command} status N` shows any case."


def home_updated(stamp: str) -> str:
    return f"Updated {stamp} UTC · refreshed when a case changes"


def home_not_staff() -> str:
    return ("This is for the support team: it lists the cases staff work on. To get help, "
            "write in your company's support channel and the bot or a person will answer.")


def home_refused(text: str) -> str:
    """A click from Home that changed nothing, shown at the top of the redrawn view."""
    return f":warning: {text}"


def queue_fallback(open_count: int) -> str:
    return f"Support queue: {open_count} case(s) need staff."


# Knowledge learnt from staff (issue 16) ---------------------------------------------------------

def knowledge_proposal_header(case_number: int | None, entry_id: int) -> str:
    case = f" from case #{case_number}" if case_number else ""
    return (f":bulb: *Save this answer for next time?* (knowledge entry #{entry_id}{case}) "
            "The bot uses it only once someone saves it.")


def knowledge_entry_text(question: str, answer: str) -> str:
    return f"*Q:* {question}\n*A:* {answer}"


def knowledge_saved(name: str, entry_id: int, edited: bool) -> str:
    how = "edited and saved" if edited else "saved"
    return f":white_check_mark: {name} {how} knowledge entry #{entry_id}; the bot now uses it."


def knowledge_discarded(name: str, entry_id: int) -> str:
    return f":wastebasket: {name} discarded knowledge entry #{entry_id}; it is never used."


def knowledge_not_pending(entry_id: int, status: str, by_name: str | None) -> str:
    who_did = f" by {by_name}" if by_name else ""
    return f"Knowledge entry #{entry_id} was already {status}{who_did}; nothing changed."


def knowledge_unknown(entry_id: str) -> str:
    return f"There is no knowledge entry {entry_id}."


def knowledge_conflict(entry_id: int, question: str, answer: str, new_answer: str) -> str:
    return (f":warning: This answer may contradict saved knowledge entry #{entry_id}.\n"
            f"*Saved:* {question} → {answer}\n*Now:* {new_answer}\n"
            f"Retire or edit the entry if it is out of date (`/handoff kb show {entry_id}`).")


def knowledge_usage(command: str) -> str:
    return (f"`{command} kb list` · `{command} kb show 12` · `{command} kb edit 12` · "
            f"`{command} kb retire 12` · `{command} kb expire 12 2027-01-31` "
            f"(or `never`)")


def knowledge_bad_date(value: str) -> str:
    return f"`{value}` is not a date; write it as 2027-01-31, or `never`."
