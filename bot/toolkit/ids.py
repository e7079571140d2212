"""Every action_id, callback_id and block_id the bot draws, in one place."""

from __future__ import annotations

from enum import StrEnum


class RequestAction(StrEnum):
    answer = "request-answer"
    bot_answers = "request-bot-answers"
    cancel = "request-cancel"


class RequestView(StrEnum):
    answer_submit = "request-answer-submit"
    answer_block = "request-answer-input"
    answer_input = "request-answer-text"


class CaseAction(StrEnum):
    take = "case-take"
    return_to_bot = "case-return"
    assign = "case-assign"


class CaseView(StrEnum):
    assign_submit = "case-assign-submit"
    assign_block = "case-assign-user"
    assign_input = "case-assign-select"


class CaseShortcut(StrEnum):
    take = "case-take-shortcut"


class DraftAction(StrEnum):
    send = "draft-send"
    edit = "draft-edit"
    discard = "draft-discard"


class DraftView(StrEnum):
    edit_submit = "draft-edit-submit"
    edit_block = "draft-edit-input"
    edit_input = "draft-edit-text"


class StaffReplyAction(StrEnum):
    take_over = "staff-reply-take"
    send_once = "staff-reply-send"
    keep_note = "staff-reply-note"
