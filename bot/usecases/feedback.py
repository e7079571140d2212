"""👍/👎 feedback buttons under every bot answer to a customer.

The buttons are put on the answer by `PostQueue.answer_customer` (they carry the answer's
message id). `click` stores the click of the conversation's customer, with the answer: who,
which answer, when; the first click of a person on an answer counts and a later one (a change
of mind, a double delivery, another replica) records nothing, as for the satisfaction rating.
Anyone else's click (a colleague in a shared channel, staff) is refused with a private note.
A 👎 puts the case in front of staff: the customer's question and the bot's answer are posted
in the case's support thread (top level in the support channel when the case has none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import FeedbackRefused
from bot.toolkit import texts
from bot.toolkit.ids import FeedbackValue
from bot.toolkit.mrkdwn import neutralise_mentions
from bot.toolkit.posts import PostQueue
from storage import conversations, feedback, messages
from storage.models import Conversation, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clicked:
    conversation_id: int
    positive: bool


def question_before(history: list[Message], answer: Message) -> str:
    """The customer's last words before the answer (what the answer answered)."""
    asked = [m for m in history if m.role == "user" and m.order <= answer.order]
    return asked[-1].text or "" if asked else ""


class Feedback:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], posts: PostQueue) -> None:
        self._sessions = sessions
        self._posts = posts

    async def click(self, *, value: FeedbackValue, user_id: str, channel_id: str) -> Clicked:
        """A click on a feedback button: stored once; a 👎 tells staff."""
        async with self._sessions() as session:
            answer = await messages.get_message(session, value.message_id)
            conversation = (await conversations.get_conversation(session, answer.conversation_id)
                            if answer is not None and answer.role == "assistant" else None)
            if conversation is None or conversation.channel_id != channel_id:
                raise FeedbackRefused(texts.feedback_not_yours())
            if conversation.customer_user_id != user_id:
                log.info("feedback on answer %s by %s refused: not the customer",
                         answer.id, user_id)
                raise FeedbackRefused(texts.feedback_not_yours())
            if not await feedback.record_click(session, message_id=answer.id,
                                               conversation_id=conversation.id,
                                               user_id=user_id, positive=value.positive):
                raise FeedbackRefused(texts.feedback_already_given())
            if not value.positive:
                await self._tell_staff(session, conversation, answer)
            await session.commit()
            return Clicked(conversation.id, value.positive)

    async def _tell_staff(self, session: AsyncSession, conversation: Conversation,
                          answer: Message) -> None:
        history = await messages.list_history(session, conversation.id)
        case_number = await conversations.number_case(session, conversation)
        note = texts.feedback_staff_note(
            case_number, neutralise_mentions(question_before(history, answer)),
            neutralise_mentions(answer.text or ""),
            conversation.customer_name or "The customer")
        await self._posts.note_in_case_thread(session, conversation, note,
                                              key=f"feedback-down:{answer.id}")
