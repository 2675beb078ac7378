"""Specs, registries, configuration and the suite planner."""

from __future__ import annotations

import dataclasses

import pytest

from vlaeval.harness import registry
from vlaeval.harness.config import ConfigError, load_config, parse_assignments, parse_int_list
from vlaeval.harness.registry import UnknownNameError
from vlaeval.harness.specs import EpisodeSpec
from vlaeval.harness.suite import Selection, SelectionError

BASE = EpisodeSpec(suite="s", suite_version="1", task_id="t", episode_index=0, seed=0, max_steps=10,
                   instruction="do it", protocol={"a": 1})


def test_episode_key_is_stable_and_sensitive_to_every_identity_field():
    assert BASE.key("m") == EpisodeSpec.from_dict(BASE.to_dict()).key("m")
    variants = [
        dataclasses.replace(BASE, seed=1),
        dataclasses.replace(BASE, episode_index=1),
        dataclasses.replace(BASE, task_id="u"),
        dataclasses.replace(BASE, suite_version="2"),
        dataclasses.replace(BASE, protocol={"a": 2}),
        dataclasses.replace(BASE, max_steps=11),
    ]
    keys = {BASE.key("m"), BASE.key("other-model"), *(v.key("m") for v in variants)}
    assert len(keys) == len(variants) + 2


def test_builtin_names_come_from_entry_points():
    assert {"libero-spatial", "libero-10", "libero-long"} <= set(registry.suites.names())
    assert {"random", "zero", "replay", "remote", "openpi"} <= set(registry.adapters.names())


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'libero-spatial'"):
        registry.suites.resolve_name("libero-spatail")
    with pytest.raises(UnknownNameError, match="unknown adapter 'nothing-like-it'"):
        registry.adapters.create("nothing-like-it")


def test_int_lists_and_assignments():
    assert parse_int_list("0,1,2") == [0, 1, 2]
    assert parse_int_list("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(ConfigError):
        parse_int_list("a,b")
    assert parse_assignments(["x=3", "y=true", "z=abc"], "--protocol") == {"x": 3, "y": True, "z": "abc"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["novalue"], "--protocol")


def test_config_file_with_cli_overrides(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("suite: toy\nmodel: random\nseeds: 0-2\nprotocol: {max_steps: 5, tolerance: 0.1}\n")
    config = load_config(path, {"seeds": [7], "protocol": {"max_steps": 9}})
    assert config.seeds == [7]
    assert config.protocol == {"max_steps": 9, "tolerance": 0.1}
    assert str(config.output_dir()) == "runs/toy__random"


@pytest.mark.parametrize(
    "text, message",
    [
        ("suite: toy\nmodel: random\nwrokers: 2\n", "wrokers: unknown option"),
        ("suite: toy\nmodel: random\nworkers: 0\n", "workers:"),
        ("suite: [toy\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
        ("suite: toy\nmodel: random\nepisodes: 3-4\nepisodes_per_task: 2\n", "either episodes .* or episodes_per_task"),
        ("suite: toy\nmodel: random\nepisodes: 2-x\n", "cannot read '2-x' as a list of integers"),
    ],
)
def test_bad_config_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, {})
    assert "\n" not in str(info.value)


def test_planner_orders_selects_and_limits():
    suite = registry.suites.create("toy")
    episodes = suite.episodes(Selection(seeds=[0, 1], episodes_per_task=2))
    assert len(episodes) == 2 * 2 * 3
    # seed-major, then init state, then task: a partial run covers every task early
    assert [(e.seed, e.episode_index, e.task_index) for e in episodes[:4]] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)]
    assert len(suite.episodes(Selection(seeds=[0], limit=5))) == 5
    only = suite.episodes(Selection(seeds=[0], tasks=["reach_1", "2"]))
    assert {e.task_id for e in only} == {"reach_1", "reach_2"}
    overridden = suite.episodes(Selection(seeds=[0], protocol_overrides={"max_steps": 7}))
    assert {e.max_steps for e in overridden} == {7}
    assert {e.protocol["max_steps"] for e in overridden} == {7}
    assert suite.protocol({"ensemble": False})["ensemble"] == "off"  # `--protocol ensemble=off` is YAML's False
    assert suite.protocol({"crash_always": True})["crash_always"] is True  # real booleans stay booleans
    with pytest.raises(SelectionError, match="unknown protocol parameter 'max_step'"):
        suite.episodes(Selection(protocol_overrides={"max_step": 7}))
    with pytest.raises(SelectionError, match="no task of toy matches"):
        suite.episodes(Selection(tasks=["nope"]))


def test_explicit_init_states_select_held_out_episodes():
    suite = registry.suites.create("toy")
    n_states = min(t.n_init_states for t in suite.tasks())
    held_out = suite.episodes(Selection(seeds=[0], episode_indices=[n_states - 1, 1, 1]))
    assert [(e.episode_index, e.task_index) for e in held_out[:4]] == [(n_states - 1, 0), (n_states - 1, 1),
                                                                      (n_states - 1, 2), (1, 0)]
    assert len(held_out) == 2 * len(suite.tasks())  # duplicates dropped, order kept
    first = suite.episodes(Selection(seeds=[0], episodes_per_task=2))
    assert [e.key("m") for e in suite.episodes(Selection(seeds=[0], episode_indices=[0, 1]))] == [e.key("m") for e in first]
    with pytest.raises(SelectionError, match=rf"episodes \[{n_states}\] do not exist"):
        suite.episodes(Selection(episode_indices=[0, n_states]))
    assert load_config(None, {"suite": "toy", "model": "random", "episodes": "3-5"}).episodes == [3, 4, 5]


def test_libero_catalog_drives_the_suite_without_the_simulator():
    suite = registry.suites.create("libero-spatial")
    tasks = suite.tasks()
    assert len(tasks) == 10 and all(t.n_init_states == 50 for t in tasks)
    assert suite.spec.protocol["max_steps"] == 220
    assert registry.suites.create("libero-long").spec.protocol["max_steps"] == 520
    assert len(registry.suites.create("libero-90").tasks()) == 90


def test_libero_family_runs_each_task_under_its_own_suite_protocol():
    suite = registry.suites.create("libero")
    assert len(suite.tasks()) == 40
    episodes = suite.episodes(Selection(seeds=[0], episodes_per_task=1))
    limits = {e.protocol["benchmark"]: e.max_steps for e in episodes}
    assert limits == {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}
    assert all(e.task_id.startswith(e.protocol["benchmark"] + "/") for e in episodes)
    short = suite.episodes(Selection(seeds=[0], episodes_per_task=1, protocol_overrides={"max_steps": 9}))
    assert {e.max_steps for e in short} == {9}
