"""`workers.processes`, `workers.sweep_every` and `slack.holding_reaction_after`: validated,
"auto" sized to the cores, on either database."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from bot.config import ConfigError, load_config, parse_config

PG = "postgresql://postgres@127.0.0.1:5432/bot"


def cores() -> int:
    return len(os.sched_getaffinity(0))


def test_auto_is_one_per_core():
    workers = parse_config({}).workers
    assert workers.processes == "auto"
    assert workers.process_count() == cores()


def test_a_number_is_taken_as_it_is():
    for raw in (2, "2"):
        assert parse_config({"workers": {"processes": raw}}).workers.process_count() == 2
    assert parse_config({"workers": {"processes": 0}}).workers.process_count() == 0


@pytest.mark.parametrize("section", [
    {"workers": {"processes": -1}}, {"workers": {"processes": 65}},
    {"workers": {"processes": "many"}}, {"workers": {"sweep_every": "0s"}},
    {"workers": {"sweep_every": "soon"}}, {"workers": {"threads": 2}},
    {"slack": {"holding_reaction_after": "later"}},
])
def test_bad_values_name_their_key(section):
    with pytest.raises(ConfigError) as error:
        parse_config(section)
    key = next(iter(next(iter(section.values()))))
    assert key in str(error.value)


def test_shipped_app_yaml_reads_the_new_keys_from_the_environment():
    config = load_config("app.yaml", environ={"WORKER_PROCESSES": "3"})
    assert config.workers.processes == 3
    assert config.workers.sweep_every == timedelta(seconds=5)
    assert config.slack.holding_reaction_after == timedelta(seconds=2)
    assert load_config("app.yaml", environ={}).workers.processes == "auto"


def test_workers_concurrency_bounds_the_worker_and_sizes_the_pool() -> None:
    assert parse_config({}).worker_concurrency == 8
    former = parse_config({"database": {"concurrency": 5}})
    assert (former.worker_concurrency, former.database_pool_size) == (5, 9)
    both = parse_config({"database": {"concurrency": 5}, "workers": {"concurrency": 3}})
    assert (both.worker_concurrency, both.database_pool_size) == (3, 7)
    with pytest.raises(ConfigError):
        parse_config({"workers": {"concurrency": 0}})
