"""Issue 10: the bounds on bad model output in app.yaml (`llm:`), and readable askHuman text."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent.tools import readable_question
from bot.config import ConfigError, load_config, parse_config
from bot.toolkit import texts

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_the_shipped_app_yaml() -> None:
    llm = parse_config({}).llm
    assert (llm.max_steps_per_message, llm.max_tool_errors, llm.empty_answer_retries) == (8, 3, 1)
    shipped = load_config(ROOT / "app.yaml", environ={}).llm
    assert (shipped.max_steps_per_message, shipped.max_tool_errors,
            shipped.empty_answer_retries) == (8, 3, 1)


def test_values_come_from_the_environment() -> None:
    config = parse_config({"llm": {"max_steps_per_message": "${STEPS:-5}"}}, environ={})
    assert config.llm.max_steps_per_message == 5


@pytest.mark.parametrize(("key", "value"), [
    ("max_steps_per_message", 0), ("max_tool_errors", 0), ("empty_answer_retries", -1),
    ("max_steps_per_message", "many"),
])
def test_bad_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"llm\.{key}"):
        parse_config({"llm": {key: value}})


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"llm\.max_step: unknown key"):
        parse_config({"llm": {"max_step": 3}})


@pytest.mark.parametrize(("arguments", "question"), [
    ({"question": " Is order 42 shipped? "}, "Is order 42 shipped?"),
    ({"_raw": "Is order 42 shipped?"}, "Is order 42 shipped?"),
    ({"_raw": '"Is order 42 shipped?"'}, "Is order 42 shipped?"),
    ({"_raw": '{"question": "Is order 42'}, texts.unreadable_question('{"question": "Is order 42')),
    ({"_raw": "[1, 2]"}, texts.unreadable_question("[1, 2]")),
    ({}, texts.unreadable_question("{}")),
    ({"q": "Is it?"}, texts.unreadable_question('{"q": "Is it?"}')),
    ({"question": '{"question": "x"}'}, texts.unreadable_question('{"question": "x"}')),
])
def test_readable_question(arguments: dict[str, object], question: str) -> None:
    assert readable_question(arguments) == question


def test_unreadable_question_is_truncated_and_keeps_its_code_block() -> None:
    shown = texts.unreadable_question("`" * 3 + "x" * 2000)
    assert shown.startswith("(the model asked without a readable question)\n```")
    assert shown.endswith("…```") and shown.count("```") == 2
    assert len(shown) < 600
