"""Issue 3: our staff writing in a shared customer channel are agents, never customers."""

from __future__ import annotations

from sqlalchemy import select

from sandbox.model_server import Reply
from storage.models import Message
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF


async def test_staff_message_is_saved_as_agent_message_and_not_answered(bot, slack, model):
    model.script(Reply("bot answer"))
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "Is the API down?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=root)

    await slack.user_posts(CUSTOMERS, STAFF, "We're looking into it right now.", thread_ts=root)
    top_level = await slack.user_posts(CUSTOMERS, STAFF, "Maintenance tonight at 22:00 UTC")
    await bot.services.idle()
    await slack.settle()

    assert len(model.requests) == 1
    assert not [m for m in slack.messages(CUSTOMERS, thread_ts=top_level) if m.get("bot_id")]
    async with bot.services.sessions() as session:
        rows = list((await session.execute(select(Message).order_by(Message.id))).scalars())
    staff_message = rows[-1]
    assert staff_message.role == "assistant"
    assert staff_message.text == "We're looking into it right now."
    assert staff_message.agent_name == "Sam Staff"
    assert staff_message.meta == {
        "provider": "human",
        "providerMetadata": {"human": {"name": "Sam Staff", "slack_user_id": STAFF}},
    }
