"""ncf tune across model families (``--models``, ``model.type: auto``): the joint space, the
data steering, the per-family pruner, and a search end to end in a subprocess in which every
family is tried, only validation chooses and the test split is ranked once, by the refit."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import QUICKSTART, TINY, set_args

from ncf import registry
from ncf.config import load_config, read_yaml
from ncf.errors import ConfigError
from ncf.tune.joint import FAMILY_KEY, families_for, joint_space
from ncf.tune.pruning import FamilyMedianPruner
from ncf.tune.space import with_values


def test_each_family_draws_its_own_parameters_and_starts_from_its_own_point():
    base = load_config(QUICKSTART, ["model.type=auto"])
    space = joint_space(["history", "ease", "itemknn"], base, has_timestamps=True)
    points = space.starting_points(base)
    assert [p[FAMILY_KEY] for p in points] == ["ease", "itemknn", "history"]  # baselines first
    ease = space.decode(points[0])
    assert ease[FAMILY_KEY] == "ease" and set(ease) == {FAMILY_KEY, "model.ease.l2"}
    assert "history/model.embedding_dim" in space.params
    assert space.hparams(points[0]) == {
        FAMILY_KEY: "ease",
        "ease/model.ease.l2": ease["model.ease.l2"],
    }
    # a family trains with its own loss when the config's does not fit it
    assert space.fixed_for({FAMILY_KEY: "history"})["train.loss"] == "softmax"
    assert "train.loss" not in space.fixed_for({FAMILY_KEY: "ease"})


SHIPPED = {  # family -> its config under configs/ml-100k (the settings it was chosen with)
    "history": "best.yaml",
    "sequence": "sequence.yaml",
    "vae": "vae.yaml",
    "ease": "ease.yaml",
    "ials": "ials.yaml",
    "itemknn": "itemknn.yaml",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_search_across_families_starts_each_at_its_shipped_settings(name):
    """The first trial of each family is its shipped config's values of the searched keys,
    not the base config's (model.type auto has no family settings) nor the space's middle."""
    base = load_config(QUICKSTART, ["model.type=auto"])
    space = joint_space([name], base, has_timestamps=True)
    (point,) = space.starting_points(base)
    shipped = load_config(QUICKSTART.parent / "ml-100k" / SHIPPED[name]).model_dump(mode="json")
    started = space.decode(point)
    assert started.pop(FAMILY_KEY) == name
    assert set(started) == set(space.spaces[name].params)
    for key, value in started.items():
        expected = shipped
        for part in key.split("."):
            expected = expected[part]
        assert value == expected, key


TRAINED_WITH = [
    "epochs", "batch_size", "loss", "optimizer", "learning_rate", "lr_schedule", "lr_decay_rate",
    "early_stopping", "refit_from",
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_family_start_trial_trains_the_shipped_model(name):
    """The start trial's whole config, built as a trial builds it from configs/auto.yaml
    (the base, the family's fixed keys, its start), trains the shipped config's model: every
    ``model`` key and the training keys that shape it, not only the searched ones."""
    raw = read_yaml(QUICKSTART.parent / "auto.yaml")
    base = load_config(QUICKSTART.parent / "auto.yaml")
    space = joint_space([name], base, has_timestamps=True)
    (point,) = space.starting_points(base)
    values = space.decode(point)
    trial = with_values(raw, {**space.fixed_for(values), **values}, "auto.yaml")
    shipped = load_config(QUICKSTART.parent / "ml-100k" / SHIPPED[name])
    assert trial.model.model_dump(mode="json") == shipped.model.model_dump(mode="json")
    if registry.family(name).neural:
        started, wanted = trial.train.model_dump(mode="json"), shipped.train.model_dump(mode="json")
        assert {k: started[k] for k in TRAINED_WITH} == {k: wanted[k] for k in TRAINED_WITH}


def test_a_start_outside_its_space_is_one_clear_error():
    from ncf.tune.space import parse_space

    raw = {"params": {"train.learning_rate": {"low": 0.001, "high": 0.01}}}
    for start, says in [({"train.learning_rate": 0.5}, "outside"), ({"model.x": 1}, "not one")]:
        with pytest.raises(ConfigError, match=says):
            parse_space({**raw, "start": start}, "space.yaml")


def test_data_without_timestamps_fix_the_order_free_setting():
    kept, fixed = families_for(["history", "ease"], has_timestamps=False)
    assert kept == ["history", "ease"] and fixed == {"history": {"model.history.causal": False}}
    base = load_config(QUICKSTART, ["model.type=auto"])
    space = joint_space(["history", "ease"], base, has_timestamps=False)
    assert space.fixed_for({FAMILY_KEY: "history"})["model.history.causal"] is False
    assert families_for(["history"], has_timestamps=True) == (["history"], {})
    # neither the start nor a drawn history trial sets the pinned setting (it would override
    # the fixed one)
    (history,) = [p for p in space.starting_points(base) if p[FAMILY_KEY] == "history"]
    assert "history/model.history.causal" not in history
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(12):
        values = space.sample(study.ask())
        assert "model.history.causal" not in values


@pytest.mark.parametrize("models", [["ease", "ease"], ["bogus"], []])
def test_bad_model_lists_are_one_clear_error(models):
    base = load_config(QUICKSTART, ["model.type=auto"])
    with pytest.raises(ConfigError, match="--models"):
        joint_space(models, base, has_timestamps=True)


def _trial(number, kind, values, state="COMPLETE"):
    return SimpleNamespace(
        number=number,
        params={FAMILY_KEY: kind},
        intermediate_values=dict(enumerate(values, start=1)),
        last_step=len(values),
        state=state,
    )


class _Study:
    def __init__(self, trials):
        self.trials = trials

    def get_trials(self, deepcopy=False, states=None):
        return list(self.trials)


def test_the_pruner_compares_a_trial_with_its_own_family_only():
    pruner = FamilyMedianPruner(n_startup_trials=1, n_warmup_steps=2)
    study = _Study(
        [_trial(0, "history", [0.30, 0.40, 0.45]), _trial(1, "sequence", [0.1, 0.2, 0.3])]
    )
    slow_sequence = _trial(2, "sequence", [0.05, 0.15, 0.25])
    assert pruner.prune(study, slow_sequence)  # below its own family's median at epoch 3
    fine_sequence = _trial(3, "sequence", [0.1, 0.2, 0.31])
    assert not pruner.prune(study, fine_sequence)  # far below history, but history is not its bar
    early = _trial(4, "sequence", [0.01])
    assert not pruner.prune(study, early)  # warm-up


@pytest.mark.slow
def test_a_search_across_families_tries_each_and_only_validation_chooses(tmp_path):
    study = tmp_path / "study"
    args = set_args(f"run.dir={tmp_path / 'runs'}", *TINY, "model.type=auto")
    done = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "tune", str(QUICKSTART), *args,
         "--models", "ease,itemknn,history", "--trials", "4", "--timeout", "6",
         "--study-dir", str(study)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open(study / "leaderboard.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["model.type"] for r in rows if r["state"] == "COMPLETE"} == {
        "ease",
        "itemknn",
        "history",
    }
    assert not any("test" in column for column in rows[0])  # validation only
    for trial_dir in (study / "trials").iterdir():
        if (trial_dir / "metrics.json").is_file():
            assert json.loads((trial_dir / "metrics.json").read_text())["test"] == {}
    summary = json.loads((study / "tune.json").read_text())
    monitor = "val/sampled/NDCG@10"
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r[monitor]))
    assert summary["best_trial"] == int(best["trial"])
    assert summary["best_values"][FAMILY_KEY] == best["model.type"]
    refit = json.loads(
        (study / f"best-trial-{int(best['trial']):04d}" / "metrics.json").read_text()
    )
    assert refit["fit_on"] == "train+val" and refit["model"] == best["model.type"] and refit["test"]
    assert "chosen on validation: trial" in done.stdout


def test_ncf_train_refuses_model_type_auto(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "train", str(QUICKSTART),
         *set_args(f"run.dir={tmp_path}", "model.type=auto")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "model.type auto: ncf tune chooses the family" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
