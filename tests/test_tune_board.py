"""The HParams dashboard of a study: integer keys, trial states and session statuses.

Trials are made with Optuna's ``create_trial`` (no training): a completed, a pruned and a
failed one, over an integer range, integer choices, a float range and list choices. What
the board writes is read back with TensorBoard's own parsers.
"""

from __future__ import annotations

import datetime as dt
import json

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from ncf.tune import board
from ncf.tune.space import parse_space

SPACE = {
    "params": {
        "train.num_negatives": {"low": 2, "high": 12},
        "model.embedding_dim": {"choices": [8, 16, 32]},
        "train.learning_rate": {"low": 0.001, "high": 0.01, "log": True},
        "model.mlp_layers": {"choices": [[16, 8], [32, 16, 8]]},
    }
}


def trial(number: int, state: str, negatives: int, dim: int) -> optuna.trial.FrozenTrial:
    start = dt.datetime(2026, 12, 1, 10, 0, number)
    distributions = {
        "train.num_negatives": optuna.distributions.IntDistribution(2, 12),
        "model.embedding_dim": optuna.distributions.CategoricalDistribution(["8", "16", "32"]),
        "train.learning_rate": optuna.distributions.FloatDistribution(0.001, 0.01, log=True),
        "model.mlp_layers": optuna.distributions.CategoricalDistribution(
            [json.dumps([16, 8]), json.dumps([32, 16, 8])]
        ),
    }
    params = {"train.num_negatives": negatives, "model.embedding_dim": str(dim),
              "train.learning_rate": 0.005, "model.mlp_layers": json.dumps([16, 8])}  # fmt: skip
    made = optuna.trial.create_trial(
        state=getattr(optuna.trial.TrialState, state),
        value=0.3 if state == "COMPLETE" else None,
        params=params,
        distributions=distributions,
        intermediate_values={1: 0.2, 2: 0.25},
        user_attrs={"monitor": "val/sampled/NDCG@10", "val/sampled/NDCG@10": 0.25},
    )
    made.number, made.datetime_start = number, start
    made.datetime_complete = start + dt.timedelta(seconds=30)
    return made


def plugin_data(folder, tag: str):
    run = EventAccumulator(str(folder))
    run.Reload()
    return run.PluginTagToContent(metadata.PLUGIN_NAME)[tag]


def test_integer_keys_states_and_statuses(tmp_path):
    space = parse_space(SPACE, "test space")
    board.write_experiment(tmp_path, space, "val/sampled/NDCG@10")
    trials = [trial(0, "COMPLETE", 4, 8), trial(1, "PRUNED", 7, 16), trial(2, "FAIL", 12, 32)]
    for t in trials:
        board.write_trial(tmp_path, space, t)

    experiment = metadata.parse_experiment_plugin_data(
        plugin_data(tmp_path, metadata.EXPERIMENT_TAG)
    )
    infos = {h.name: h for h in experiment.hparam_infos}
    assert list(infos) == [*SPACE["params"], "trial_state"]
    negatives = infos["train.num_negatives"]
    assert negatives.description == "integer" and negatives.type == api_pb2.DATA_TYPE_FLOAT64
    assert (negatives.domain_interval.min_value, negatives.domain_interval.max_value) == (2, 12)
    dims = infos["model.embedding_dim"]
    assert dims.description == "integer" and [
        v.number_value for v in dims.domain_discrete.values
    ] == [8, 16, 32]
    assert infos["train.learning_rate"].description == ""
    assert infos["trial_state"].type == api_pb2.DATA_TYPE_STRING
    states = {v.string_value for v in infos["trial_state"].domain_discrete.values}
    assert states == {"COMPLETE", "PRUNED", "FAIL"}

    statuses = {}
    for t in trials:
        folder = tmp_path / f"trial-{t.number:04d}"
        start = metadata.parse_session_start_info_plugin_data(
            plugin_data(folder, metadata.SESSION_START_INFO_TAG)
        )
        values = start.hparams
        assert values["trial_state"].string_value == t.state.name
        assert values["train.num_negatives"].number_value == t.params["train.num_negatives"]
        assert values["model.embedding_dim"].number_value == int(t.params["model.embedding_dim"])
        assert values["model.mlp_layers"].string_value == "[16, 8]"
        assert start.start_time_secs == pytest.approx(t.datetime_start.timestamp())
        end = metadata.parse_session_end_info_plugin_data(
            plugin_data(folder, metadata.SESSION_END_INFO_TAG)
        )
        assert end.end_time_secs == pytest.approx(t.datetime_complete.timestamp())
        statuses[t.state.name] = api_pb2.Status.Name(end.status)
    assert statuses == {
        "COMPLETE": "STATUS_SUCCESS",
        "PRUNED": "STATUS_SUCCESS",
        "FAIL": "STATUS_FAILURE",
    }
