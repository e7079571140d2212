"""Issue 13: the `ratings`, `accounts` and `timers.tiers` keys of app.yaml are validated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ConfigError, parse_config


def test_defaults_ask_nobody_and_map_no_account():
    config = parse_config({})
    assert config.ratings.enabled is False and config.ratings.after_bot_alone is False
    assert config.accounts == {} and config.account_for("C0ACME") is None
    assert config.timers_for("C0ACME") == config.timers


def test_ratings_keys_parse():
    ratings = parse_config({"ratings": {"enabled": True, "sample": 0.25,
                                        "cooldown": "30d"}}).ratings
    assert (ratings.sample, ratings.cooldown) == (0.25, timedelta(days=30))


@pytest.mark.parametrize("ratings, where", [
    ({"sample": 1.5}, "ratings.sample"),
    ({"sample": -0.1}, "ratings.sample"),
    ({"cooldown": "soon"}, "ratings.cooldown"),
    ({"enable": True}, "ratings.enable"),
])
def test_bad_ratings_keys_are_errors_naming_the_key(ratings, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config({"ratings": ratings})


def test_an_accounts_tier_overrides_only_its_timers():
    config = parse_config({
        "accounts": {"C0ACME": {"name": "Acme", "tier": "gold", "notes": "VIP"},
                     "C0GLOBEX": {"name": "Globex", "tier": "bronze"}},
        "timers": {"remind_after": "10m", "escalate_after": "30m",
                   "tiers": {"gold": {"remind_after": "5m"}}},
    })
    gold = config.timers_for("C0ACME")
    assert (gold.remind_after, gold.escalate_after) == (timedelta(minutes=5),
                                                        timedelta(minutes=30))
    assert config.timers_for("C0GLOBEX") == config.timers  # a tier without overrides
    assert config.timers_for("C0OTHER") == config.timers
    assert config.account_for("C0ACME").notes == "VIP"


@pytest.mark.parametrize("raw, where", [
    ({"accounts": {"acme": {"name": "Acme"}}}, "accounts"),
    ({"accounts": {"C0ACME": {"tier": "gold"}}}, "accounts.C0ACME.name"),
    ({"accounts": {"C0ACME": {"name": " "}}}, "accounts.C0ACME.name"),
    ({"accounts": {"C0ACME": {"name": "Acme", "colour": "red"}}}, "accounts.C0ACME.colour"),
    ({"timers": {"tiers": {"gold": {"remind_after": "often"}}}},
     "timers.tiers.gold.remind_after"),
    ({"timers": {"tiers": {"gold": {"max_reminders": 1}}}}, "timers.tiers.gold.max_reminders"),
])
def test_bad_account_and_tier_keys_are_errors_naming_the_key(raw, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config(raw)
