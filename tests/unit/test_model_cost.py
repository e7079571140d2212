"""What a model call costs: litellm's table for the models it knows, 0.0 for the others, and an
unknown model entered in litellm's table at zero cost once, so litellm's own per-call pricing
(for its logging) finds it at once instead of searching its whole table for a look-alike."""

from __future__ import annotations

import logging

import litellm

from bot.agent.model import call_cost, warm_up


def test_a_known_model_is_priced_from_litellm_table():
    prompt, completion = litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1000,
                                                completion_tokens=100)
    assert call_cost("openai/gpt-4o-mini", "gpt-4o-mini", 1000, 100) == prompt + completion > 0


def test_an_unknown_model_costs_nothing_and_is_entered_at_zero_once():
    name = "openai/self-hosted-test-model"
    assert name not in litellm.model_cost
    assert call_cost(name, "self-hosted-test-model", 120, 30) == 0.0
    assert litellm.model_cost[name]["input_cost_per_token"] == 0.0
    # litellm's own pricing of the provider's answer now finds it
    assert litellm.cost_per_token(model="self-hosted-test-model", custom_llm_provider="openai",
                                  prompt_tokens=120, completion_tokens=30) == (0.0, 0.0)
    assert call_cost(name, "self-hosted-test-model", 120, 30) == 0.0


def test_a_name_without_a_known_provider_is_left_out_of_the_table():
    assert call_cost("no-such-provider/x", None, 5, 5) == 0.0
    assert "no-such-provider/x" not in litellm.model_cost


def test_no_tokens_cost_nothing():
    assert call_cost("openai/gpt-4o-mini", None, None, 0) == 0.0


async def test_warm_up_enters_the_configured_models_and_starts_despite_a_bad_one(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.agent.model"):
        await warm_up(["openai/warm-up-test-model", "no-provider-model"])
    assert litellm.model_cost["openai/warm-up-test-model"]["output_cost_per_token"] == 0.0
    [warning] = [r.getMessage() for r in caplog.records]
    assert "no-provider-model" in warning and "\n" not in warning
