"""Every action_id, callback_id and block_id the bot draws, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RequestAction(StrEnum):
    answer = "request-answer"
    bot_answers = "request-bot-answers"
    cancel = "request-cancel"
    use_suggestion = "request-use-suggestion"
    edit_suggestion = "request-edit-suggestion"


class RequestView(StrEnum):
    answer_submit = "request-answer-submit"
    answer_block = "request-answer-input"
    answer_input = "request-answer-text"


@dataclass(frozen=True)
class AnswerViewState:
    """The answer modal's private metadata: its question, and whether it was opened to edit
    the model's suggested answer."""

    request_id: int
    editing_suggestion: bool = False

    def encode(self) -> str:
        return f"{self.request_id}:edit" if self.editing_suggestion else str(self.request_id)

    @classmethod
    def decode(cls, value: str) -> AnswerViewState:
        request_id, _, mode = value.partition(":")
        return cls(int(request_id), mode == "edit")


class CaseAction(StrEnum):
    take = "case-take"
    return_to_bot = "case-return"
    assign = "case-assign"
    resolve = "case-resolve"
    reopen = "case-reopen"


@dataclass(frozen=True)
class CaseButtonValue:
    """What a case button carries: its case, and the assignee the card was drawn for (None on
    cards drawn before buttons carried it: such a click expects nothing)."""

    case_number: int
    drawn_for: str | None = None

    def encode(self) -> str:
        """`42:humans`, `42:U123`; just `42` when the drawn-for state is unknown."""
        return f"{self.case_number}:{self.drawn_for}" if self.drawn_for else str(self.case_number)

    @classmethod
    def decode(cls, value: str) -> CaseButtonValue:
        number, _, drawn_for = value.partition(":")
        return cls(int(number), drawn_for or None)


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


class RatingAction(StrEnum):
    """The rating buttons in a customer's thread; each carries `<rating id>:<score>`."""

    good = "rating-good"
    ok = "rating-ok"
    bad = "rating-bad"


@dataclass(frozen=True)
class RatingButtonValue:
    rating_id: int
    score: int

    def encode(self) -> str:
        return f"{self.rating_id}:{self.score}"

    @classmethod
    def decode(cls, value: str) -> RatingButtonValue:
        rating_id, _, score = value.partition(":")
        return cls(int(rating_id), int(score))


FEEDBACK_ACTION = "answer-feedback"  # the 👍/👎 feedback buttons under every bot answer


@dataclass(frozen=True)
class FeedbackValue:
    """What a feedback button carries: the answer (assistant message id) and the verdict."""

    message_id: int
    positive: bool

    def encode(self) -> str:
        return f"{'up' if self.positive else 'down'}:{self.message_id}"

    @classmethod
    def decode(cls, value: str) -> FeedbackValue:
        verdict, _, message_id = value.partition(":")
        if verdict not in ("up", "down"):
            raise ValueError(value)
        return cls(int(message_id), verdict == "up")


# How a model answer cites a saved knowledge entry ("[kb:12]"); the tag is removed before the
# customer sees the answer, so a streamed answer never shows text from a tag on.
KNOWLEDGE_TAG = "[kb:"


class KnowledgeAction(StrEnum):
    """The buttons of a proposed knowledge entry; each carries the entry's id."""

    save = "kb-save"
    edit = "kb-edit"
    discard = "kb-discard"


class KnowledgeView(StrEnum):
    edit_submit = "kb-edit-submit"
    question_block = "kb-edit-question"
    question_input = "kb-edit-question-text"
    answer_block = "kb-edit-answer"
    answer_input = "kb-edit-answer-text"
