"""Every sentence people read, as named functions; tests build expectations with the same ones."""

from __future__ import annotations

from datetime import timedelta


def case_label(case_number: int) -> str:
    return f"Case #{case_number}"


def holding_reaction() -> str:
    """Reaction put on a customer's message while the bot works on it."""
    return "hourglass_flowing_sand"


def waiting_on_staff_reaction() -> str:
    """Reaction shown on the customer's thread root while staff are consulted."""
    return "busts_in_silhouette"


def waiting_on_team_note() -> str:
    return "I've asked our support team about this and will get back to you here shortly."


def answer_split_notice() -> str:
    return "(continued)"


def model_failed_customer() -> str:
    return ("Sorry, I'm having trouble answering right now. I've let our support team know, "
            "and someone will follow up in this thread.")


def model_failed_staff(case_number: int, error: str) -> str:
    return (f":warning: {case_label(case_number)}: the model failed after retries ({error}). "
            "The customer was told a person will follow up.")


def slack_post_failed_staff(case_number: int | None, error: str) -> str:
    label = case_label(case_number) if case_number else "A message"
    return f":warning: {label}: a Slack post could not be delivered ({error})."


def human_request_header(case_number: int) -> str:
    return f"{case_label(case_number)}: the bot needs help"


def human_request_question(number: int, question: str) -> str:
    return f"*Question #{number}:* {question}"


def human_request_answer_hint() -> str:
    return ("Reply in this thread to answer (start with `#2` to pick a question), "
            "or use the buttons.")


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


def bot_answers_alone_result(name: str) -> str:
    return (f"Support staff member {name} asked you to answer on your own, without their help. "
            "Answer as best you can and be honest about anything you are unsure of.")


def request_cancelled_result(name: str) -> str:
    return (f"The question was cancelled by {name}; no human answer will come. Continue "
            "without it and be honest with the customer about what you do not know.")


def request_expired_result() -> str:
    return ("No human answered in time. Tell the customer honestly that the team has not "
            "answered yet and will follow up in this thread; do not invent an answer.")


def took_over_result(name: str) -> str:
    return f"A human support agent ({name}) took over the conversation; this question is closed."


def customer_wrote_while_waiting(name: str, text: str) -> str:
    return f":speech_balloon: {name} wrote meanwhile: {text}"


def customer_message_forward(name: str, text: str) -> str:
    return f":speech_balloon: *{name}:* {text}"


def excerpt_line(role: str, text: str, limit: int = 200) -> str:
    clean = " ".join(text.split())
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return f"> *{role}:* {clean}"


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def missing_tokens_help() -> str:
    return (
        "No Slack tokens configured. Create the Slack app from slack-manifest.yaml (README: "
        "'Create the Slack app') and export SLACK_BOT_TOKEN and SLACK_APP_TOKEN, or try the bot "
        "without Slack: python -m bot sandbox"
    )
