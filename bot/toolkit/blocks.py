"""Pure Block Kit builders (slack_sdk models); none touches the database or the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.toolkit import texts
from bot.toolkit.ids import (
    FEEDBACK_ACTION,
    AnswerViewState,
    CaseAction,
    CaseButtonValue,
    CaseView,
    DraftAction,
    FeedbackValue,
    KnowledgeAction,
    KnowledgeView,
    RatingAction,
    RatingButtonValue,
    RequestAction,
    RequestView,
    StaffReplyAction,
)
from bot.toolkit.mrkdwn import neutralise_mentions

if TYPE_CHECKING:
    from bot.config import AccountSettings


def thread_link(channel_id: str, ts: str, thread_ts: str | None = None) -> str:
    """A link to a Slack message that works without knowing the workspace's domain."""
    link = f"https://slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


def _blocks(*blocks: Any) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def case_header_text(*, case_number: int, customer_name: str, channel_id: str,
                     thread_ts: str, account: AccountSettings | None = None) -> str:
    """The first line of a case's card; with the channel's account (app.yaml `accounts`) on a
    second line. Names and notes are not the bot's words: their mentions ping nobody."""
    link = thread_link(channel_id, thread_ts)
    header = (f"*{texts.case_label(case_number)}* · {neutralise_mentions(customer_name)} in "
              f"<#{channel_id}> · "
              f"<{link}|open the customer's thread>")
    if account is not None:
        header += "\n" + neutralise_mentions(texts.account_line(
            account.name, account.tier, account.notes))[:1000]
    return header


def human_request_blocks(*, case_number: int, customer_name: str, channel_id: str,
                         thread_ts: str, excerpt: list[str], request_id: int, number: int,
                         question: str, first: bool, drawn_for: str,
                         suggestion: str | None = None,
                         account: AccountSettings | None = None) -> list[dict[str, Any]]:
    """The support-channel post of one askHuman question (the first one opens the case);
    `drawn_for` is the case's assignee as the post is drawn."""
    blocks: list[Any] = []
    if first:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=case_header_text(
            case_number=case_number, customer_name=customer_name, channel_id=channel_id,
            thread_ts=thread_ts, account=account))))
        if excerpt:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(excerpt)[:2900])))
    blocks.append(SectionBlock(text=MarkdownTextObject(
        text=texts.human_request_question(number, question)[:2900])))
    if suggestion:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=texts.suggested_answer_section(suggestion)[:2990])))
        blocks.append(suggestion_buttons(request_id))
    blocks.append(request_buttons(request_id, case_number, drawn_for))
    hint = MarkdownTextObject(text=texts.human_request_answer_hint(number))
    blocks.append(ContextBlock(elements=[hint]))
    return _blocks(*blocks)


@dataclass(frozen=True)
class QuestionPart:
    """The question a case card shows when that question's post opened the case thread."""

    request_id: int
    number: int
    question: str
    suggestion: str | None
    outcome: str | None  # None while the question waits for an answer


def case_root_blocks(*, case_number: int, customer_name: str, channel_id: str,
                     thread_ts: str, status: str, excerpt: list[str], assignee: str,
                     resolved: bool, question: QuestionPart | None,
                     account: AccountSettings | None = None) -> list[dict[str, Any]]:
    """The first post of a case thread, drawn from the case's state: who has it and since when,
    the recent conversation, the question that opened it (if one did), and only the buttons
    that make sense now."""
    blocks: list[Any] = [
        SectionBlock(text=MarkdownTextObject(text=case_header_text(
            case_number=case_number, customer_name=customer_name, channel_id=channel_id,
            thread_ts=thread_ts, account=account))),
        ContextBlock(elements=[MarkdownTextObject(text=status[:2900])]),
    ]
    if excerpt:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(excerpt)[:2900])))
    if question is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=texts.human_request_question(question.number, question.question)[:2900])))
        if question.outcome is not None:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=question.outcome)]))
        else:
            if question.suggestion:
                blocks.append(SectionBlock(text=MarkdownTextObject(
                    text=texts.suggested_answer_section(question.suggestion)[:2990])))
                blocks.append(suggestion_buttons(question.request_id))
            blocks.append(request_buttons(question.request_id, case_number, assignee,
                                          with_take_over=False))
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text=texts.human_request_answer_hint(question.number))]))
    blocks.append(case_buttons(case_number, assignee, resolved=resolved, live=True))
    return _blocks(*blocks)


def suggestion_buttons(request_id: int) -> ActionsBlock:
    """Send the model's suggested answer as it is, or edit it first."""
    value = str(request_id)
    return ActionsBlock(block_id=f"suggestion-{request_id}", elements=[
        ButtonElement(text="Use this", action_id=RequestAction.use_suggestion, value=value,
                      style="primary"),
        ButtonElement(text="Edit", action_id=RequestAction.edit_suggestion, value=value),
    ])


def request_buttons(request_id: int, case_number: int, drawn_for: str, *,
                    with_take_over: bool = True) -> ActionsBlock:
    value = str(request_id)
    case_value = CaseButtonValue(case_number, drawn_for).encode()
    elements = [
        ButtonElement(text="Answer", action_id=RequestAction.answer, value=value, style="primary"),
        ButtonElement(text="Let the bot answer", action_id=RequestAction.bot_answers, value=value),
        ButtonElement(text="Cancel question", action_id=RequestAction.cancel, value=value,
                      style="danger"),
    ]
    if with_take_over:
        elements.append(ButtonElement(text="Take over", action_id=CaseAction.take,
                                      value=case_value))
    return ActionsBlock(block_id=f"request-{request_id}", elements=elements)


def case_buttons(case_number: int, drawn_for: str, *, resolved: bool = False,
                 live: bool = False) -> ActionsBlock:
    """The case's buttons; each carries the assignee the card was drawn for. A `live` card (the
    case card, drawn from the case's state) shows only what makes sense in that state: a
    resolved case offers *Reopen*; a case with the bot has nothing to return; any open case can
    be resolved."""
    value = CaseButtonValue(case_number, drawn_for).encode()
    if resolved:
        return ActionsBlock(block_id=f"case-{case_number}", elements=[
            ButtonElement(text="Reopen", action_id=CaseAction.reopen, value=value)])
    elements = [ButtonElement(text="Take over", action_id=CaseAction.take, value=value,
                              style="primary")]
    if not live or drawn_for != "bot":
        elements.append(ButtonElement(text="Return to bot", action_id=CaseAction.return_to_bot,
                                      value=value))
    elements.append(ButtonElement(text="Assign…", action_id=CaseAction.assign, value=value))
    if live:
        elements.append(ButtonElement(text="Resolve", action_id=CaseAction.resolve,
                                      value=value))
    return ActionsBlock(block_id=f"case-{case_number}", elements=elements)


def case_card_blocks(*, case_number: int, customer_name: str, channel_id: str, thread_ts: str,
                     reason: str, excerpt: list[str], drawn_for: str,
                     account: AccountSettings | None = None) -> list[dict[str, Any]]:
    """The first post of a case thread opened by a handoff, a router or a draft; `drawn_for`
    is the case's assignee as the card is drawn."""
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=case_header_text(
        case_number=case_number, customer_name=customer_name, channel_id=channel_id,
        thread_ts=thread_ts, account=account)))]
    if excerpt:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(excerpt)[:2900])))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=reason[:2900])]))
    blocks.append(case_buttons(case_number, drawn_for))
    return _blocks(*blocks)


def draft_blocks(*, message_id: int, header: str, text: str) -> list[dict[str, Any]]:
    """A model answer waiting for approval (`text` is mrkdwn; its mentions ping nobody)."""
    value = str(message_id)
    return _blocks(
        SectionBlock(text=MarkdownTextObject(text=header)),
        SectionBlock(text=MarkdownTextObject(text=neutralise_mentions(text)[:2900])),
        ActionsBlock(block_id=f"draft-{message_id}", elements=[
            ButtonElement(text="Send", action_id=DraftAction.send, value=value, style="primary"),
            ButtonElement(text="Edit…", action_id=DraftAction.edit, value=value),
            ButtonElement(text="Discard", action_id=DraftAction.discard, value=value,
                          style="danger"),
        ]),
    )


def outcome_blocks(*, header: str, text: str, outcome: str) -> list[dict[str, Any]]:
    """A draft card once sent or discarded; the answer's mentions ping nobody."""
    return _blocks(
        SectionBlock(text=MarkdownTextObject(text=header)),
        SectionBlock(text=MarkdownTextObject(text=neutralise_mentions(text)[:2900])),
        ContextBlock(elements=[MarkdownTextObject(text=outcome)]),
    )


def staff_reply_choice_blocks(*, prompt: str, value: str) -> list[dict[str, Any]]:
    return _blocks(
        SectionBlock(text=MarkdownTextObject(text=prompt)),
        ActionsBlock(block_id="staff-reply-choice", elements=[
            ButtonElement(text="Take over the case", action_id=StaffReplyAction.take_over,
                          value=value, style="primary"),
            ButtonElement(text="Send once as the agent", action_id=StaffReplyAction.send_once,
                          value=value),
            ButtonElement(text="Keep as internal note", action_id=StaffReplyAction.keep_note,
                          value=value),
        ]),
    )


def text_modal(*, callback_id: str, title: str, block_id: str, action_id: str, label: str,
               initial: str, private_metadata: str, submit: str) -> dict[str, Any]:
    return View(
        type="modal", callback_id=callback_id, private_metadata=private_metadata,
        title=title[:24], submit=submit, close="Cancel",
        blocks=[InputBlock(block_id=block_id, label=label,
                           element=PlainTextInputElement(action_id=action_id, multiline=True,
                                                         initial_value=initial[:3000]))],
    ).to_dict()


def assign_modal(*, case_number: int) -> dict[str, Any]:
    return View(
        type="modal", callback_id=CaseView.assign_submit, private_metadata=str(case_number),
        title=f"Assign case #{case_number}"[:24], submit="Assign", close="Cancel",
        blocks=[InputBlock(block_id=CaseView.assign_block, label="Assign to",
                           element=UserSelectElement(action_id=CaseView.assign_input))],
    ).to_dict()


def closed_request_blocks(*, number: int, question: str, outcome: str, case_number: int,
                          drawn_for: str, header: str | None = None) -> list[dict[str, Any]]:
    """What a request post becomes once answered, cancelled or expired: the question's
    buttons go, the case's buttons stay, and a post that opened the case keeps its header."""
    blocks: list[Any] = []
    if header:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=header)))
    blocks += [
        SectionBlock(text=MarkdownTextObject(text=texts.human_request_question(number, question))),
        ContextBlock(elements=[MarkdownTextObject(text=outcome)]),
        case_buttons(case_number, drawn_for),
    ]
    return _blocks(*blocks)


def answer_modal(*, request_id: int, number: int, question: str, case_number: int,
                 suggestion: str | None = None) -> dict[str, Any]:
    """The answer form; with `suggestion`, prefilled with the model's suggested answer to edit."""
    view = View(
        type="modal", callback_id=RequestView.answer_submit,
        private_metadata=AnswerViewState(request_id, suggestion is not None).encode(),
        title=f"Answer #{number}"[:24], submit="Send answer", close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(
                text=f"*{texts.case_label(case_number)}*\n{question}"[:2900])),
            InputBlock(block_id=RequestView.answer_block, label="Your answer",
                       element=PlainTextInputElement(action_id=RequestView.answer_input,
                                                     multiline=True,
                                                     initial_value=suggestion)),
        ],
    )
    return view.to_dict()


def rating_blocks(rating_id: int) -> list[dict[str, Any]]:
    """The one-click satisfaction prompt in the customer's thread."""
    def button(action: RatingAction, score: int) -> ButtonElement:
        return ButtonElement(text=texts.rating_label(score), action_id=action,
                             value=RatingButtonValue(rating_id, score).encode())

    return _blocks(
        SectionBlock(text=MarkdownTextObject(text=texts.rating_prompt())),
        ActionsBlock(block_id=f"rating-{rating_id}", elements=[
            button(RatingAction.good, 3), button(RatingAction.ok, 2), button(RatingAction.bad, 1),
        ]),
    )


def rating_thanks_blocks(score: int) -> list[dict[str, Any]]:
    """The prompt once answered: the buttons go, the thank-you stays."""
    return _blocks(SectionBlock(text=MarkdownTextObject(text=texts.rating_thanks(score))))


def feedback_block(message_id: int) -> dict[str, Any]:
    """The 👍/👎 `feedback_buttons` in a `context_actions` block, under a bot answer (plain
    dicts: slack_sdk 3.48 has no model class for them)."""
    def button(positive: bool) -> dict[str, Any]:
        label = (texts.feedback_positive_label() if positive
                 else texts.feedback_negative_label())
        return {"text": {"type": "plain_text", "text": label, "emoji": True},
                "value": FeedbackValue(message_id, positive).encode(),
                "accessibility_label": texts.feedback_accessibility(positive)}

    return {"type": "context_actions", "block_id": f"feedback-{message_id}",
            "elements": [{"type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
                          "positive_button": button(True), "negative_button": button(False)}]}


def answer_blocks(text: str, message_id: int | None) -> list[dict[str, Any]] | None:
    """An answer post's blocks: its mrkdwn text, and the feedback buttons when it is a model
    answer (None: the post is text only)."""
    if message_id is None:
        return None
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
            feedback_block(message_id)]
# The queue: the app's Home tab and `/handoff list` draw the same blocks.

HOME_MAX_BLOCKS = 100  # Slack's limit for a Home view
MESSAGE_MAX_BLOCKS = 50  # and for a message


@dataclass(frozen=True)
class QueueEntry:
    """One case of the queue, as drawn: its card's header, status and buttons."""

    case_number: int
    customer_name: str
    channel_id: str
    thread_ts: str
    status: str
    assignee: str
    support_link: str | None
    question: QuestionPart | None = None
    account: AccountSettings | None = None


def queue_entry_blocks(entry: QueueEntry) -> list[Any]:
    """A case in the queue: the card's header and status, a link to its support thread, its
    oldest question with that question's buttons, and the card's case buttons (same action
    ids and values, so the card's listeners and stale-click checks handle them)."""
    text = case_header_text(case_number=entry.case_number, customer_name=entry.customer_name,
                            channel_id=entry.channel_id, thread_ts=entry.thread_ts,
                            account=entry.account)
    status = entry.status
    if entry.support_link:
        status += " · " + texts.home_support_thread_link(entry.support_link)
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=text[:2900])),
                         ContextBlock(elements=[MarkdownTextObject(text=status[:2900])])]
    question = entry.question
    if question is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=texts.human_request_question(question.number, question.question)[:2900])))
        if question.suggestion:
            blocks.append(SectionBlock(text=MarkdownTextObject(
                text=texts.suggested_answer_section(question.suggestion)[:2990])))
            blocks.append(suggestion_buttons(question.request_id))
        blocks.append(request_buttons(question.request_id, entry.case_number, entry.assignee,
                                      with_take_over=False))
    blocks.append(case_buttons(entry.case_number, entry.assignee, live=True))
    return blocks


def queue_blocks(*, sections: list[tuple[str, list[QueueEntry]]], more: int, command: str,
                 max_blocks: int, notice: str | None = None,
                 footer: str | None = None) -> list[dict[str, Any]]:
    """The queue's lists (`(kind, entries)`), cut to `max_blocks`: what does not fit is
    counted in the last line, never drawn half."""
    blocks: list[Any] = []
    if notice:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=notice[:2900])))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=texts.home_title())))
    left_out = more
    reserve = 2  # the "more" line and the footer
    for kind, entries in sections:
        if len(blocks) + 2 + reserve > max_blocks:
            left_out += len(entries)
            continue
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=texts.home_section(kind, len(entries)))))
        if not entries:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text=texts.home_section_empty(kind))]))
        for entry in entries:
            drawn = queue_entry_blocks(entry)
            if len(blocks) + len(drawn) + reserve > max_blocks:
                left_out += 1
                continue
            blocks.extend(drawn)
    if left_out:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=texts.home_more(left_out, command))]))
    if footer:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return _blocks(*blocks)


def home_view(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Home tab view of these blocks."""
    return {"type": "home", "blocks": blocks}


def home_not_staff_view() -> dict[str, Any]:
    return home_view(_blocks(SectionBlock(text=MarkdownTextObject(text=texts.home_not_staff()))))
def knowledge_proposal_blocks(*, entry_id: int, header: str, question: str,
                              answer: str) -> list[dict[str, Any]]:
    """A proposed knowledge entry with Save, Edit and Discard (its words ping nobody)."""
    value = str(entry_id)
    return _blocks(
        SectionBlock(text=MarkdownTextObject(text=header)),
        SectionBlock(text=MarkdownTextObject(text=neutralise_mentions(
            texts.knowledge_entry_text(question, answer))[:2900])),
        ActionsBlock(block_id=f"kb-{entry_id}", elements=[
            ButtonElement(text="Save", action_id=KnowledgeAction.save, value=value,
                          style="primary"),
            ButtonElement(text="Edit…", action_id=KnowledgeAction.edit, value=value),
            ButtonElement(text="Discard", action_id=KnowledgeAction.discard, value=value,
                          style="danger"),
        ]),
    )


def knowledge_outcome_blocks(*, header: str, question: str, answer: str,
                             outcome: str) -> list[dict[str, Any]]:
    """A proposed entry once saved or discarded: its buttons go."""
    return outcome_blocks(header=header, text=texts.knowledge_entry_text(question, answer),
                          outcome=outcome)


def knowledge_edit_modal(*, entry_id: int, question: str, answer: str,
                         submit: str = "Save") -> dict[str, Any]:
    """The entry's question and answer, prefilled, to correct before saving."""
    return View(
        type="modal", callback_id=KnowledgeView.edit_submit, private_metadata=str(entry_id),
        title=f"Knowledge entry #{entry_id}"[:24], submit=submit, close="Cancel",
        blocks=[
            InputBlock(block_id=KnowledgeView.question_block, label="Question",
                       element=PlainTextInputElement(action_id=KnowledgeView.question_input,
                                                     multiline=True,
                                                     initial_value=question[:3000])),
            InputBlock(block_id=KnowledgeView.answer_block, label="Answer",
                       element=PlainTextInputElement(action_id=KnowledgeView.answer_input,
                                                     multiline=True,
                                                     initial_value=answer[:3000])),
        ],
    ).to_dict()
