"""ncf tune: search spaces, a baseline study end to end, HParams read back, pruning, timeout,
and a neural study killed mid-trial and resumed by running the same command again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from conftest import QUICKSTART, REPO, TINY, set_args

from ncf import registry
from ncf.errors import ConfigError, NcfError
from ncf.tune import tune
from ncf.tune.space import load_space

EASE_SPACE = """
trials: 4
startup_trials: 4
params:
  model.ease.l2: {low: 1.0, high: 5000.0, log: true}
"""

NEURAL_SPACE = """
trials: 2
startup_trials: 2
prune_after_trials: 1
prune_warmup_epochs: 0
fixed:
  train.epochs: 2
  train.early_stopping.patience: 0
params:
  train.learning_rate: {low: 0.003, high: 0.02, log: true}
  model.mlp_layers: {choices: [[16, 8], [8, 4]]}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tiny(tmp_path: Path, *extra: str) -> list[str]:
    return [f"run.dir={tmp_path / 'runs'}", *TINY, *extra]


@pytest.mark.parametrize("kind", [k.name for k in registry.families() if k.search_space])
def test_every_default_search_space_fits_its_model_type(kind):
    from ncf.config import read_yaml
    from ncf.tune.space import check_space
    from ncf.tune.study import default_space

    space = default_space(kind)
    raw = read_yaml(QUICKSTART)
    raw["model"]["type"] = kind
    check_space(raw, space, kind)
    assert space.trials > 0 and space.timeout_minutes and space.timeout_minutes <= 30


def test_every_tunable_family_has_a_default_search_space():
    assert {k.name for k in registry.families() if not k.search_space} == {"popularity"}


@pytest.mark.parametrize(
    "text,message",
    [
        ("params:\n  model.bogus: {low: 1, high: 2}\n", "model.bogus"),
        ("params:\n  train.learning_rate: {low: 0, high: 1, log: true}\n", "low > 0"),
        ("params:\n  train.learning_rate: {low: 2.0, high: 1.0}\n", "must be below"),
        ("params: {}\n", "params is empty"),
        ("tirals: 3\nparams:\n  model.ease.l2: {low: 1, high: 2}\n", "tirals"),
        ("params:\n  model.mlp_layers: {choices: [[15, 8]]}\n", "even"),
    ],
)
def test_bad_search_spaces_are_one_clear_error(tmp_path, text, message):
    space = write(tmp_path / "space.yaml", text)
    with pytest.raises(ConfigError, match=message):
        tune(QUICKSTART, tiny(tmp_path), space_path=space, study_dir=tmp_path / "study")
    assert not (tmp_path / "study" / "study.db").exists() or "bogus" not in message


def test_a_missing_search_space_file_is_named_as_one(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=r"nowhere.yaml: search-space file not found"):
        tune(QUICKSTART, tiny(tmp_path), space_path=missing, study_dir=tmp_path / "study")


def test_baseline_study_chooses_on_validation_and_tests_once(tmp_path):
    space = write(tmp_path / "space.yaml", EASE_SPACE)
    study_dir = tmp_path / "study"
    result = tune(
        QUICKSTART, tiny(tmp_path, "model.type=ease"), space_path=space, study_dir=study_dir
    )
    study = optuna.load_study(study_name="ncf", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    best = max(trials, key=lambda t: t.value)
    assert result.best_trial == best.number and result.best_values == best.params
    # The first trial is the config's own value (quickstart: the default l2 of 500).
    assert trials[0].params == {"model.ease.l2": 500.0}
    for trial in trials:  # trials never rank the test split
        metrics = json.loads((Path(trial.user_attrs["run_dir"]) / "metrics.json").read_text())
        assert metrics["test"] == {} and metrics["fit_on"] == "train"
        assert metrics["val"]["sampled"]["NDCG@10"] == pytest.approx(trial.value)
    refit = result.refit
    assert refit is not None and refit.metrics["fit_on"] == "train+val"
    assert refit.metrics["test"]["sampled"]["HR@10"] > 0 and "full" in refit.metrics["test"]
    # The refit chose the same setting on the same validation split: same validation figure.
    assert refit.metrics["val"]["sampled"]["NDCG@10"] == pytest.approx(best.value)
    summary = json.loads((study_dir / "tune.json").read_text())
    assert summary["best_trial"] == best.number and summary["test"] == refit.metrics["test"]
    lines = (study_dir / "leaderboard.md").read_text().splitlines()
    assert len(lines) == 2 + 4 and lines[2].startswith(f"| {best.number} | COMPLETE |")
    assert "test" not in lines[0]
    csv_rows = (study_dir / "leaderboard.csv").read_text().splitlines()
    assert csv_rows[0].startswith("trial,state,val/sampled/NDCG@10") and len(csv_rows) == 5
    # Run again: the study is complete, nothing is refitted or re-run.
    again = tune(
        QUICKSTART, tiny(tmp_path, "model.type=ease"), space_path=space, study_dir=study_dir
    )
    assert again.best_trial == result.best_trial and len(study.get_trials()) == 4
    hparams_read_back(study_dir / "tensorboard", trials)
    with pytest.raises(NcfError, match="another config or search space"):
        tune(QUICKSTART, tiny(tmp_path, "model.type=ease", "run.seed=3"), space_path=space,
             study_dir=study_dir)  # fmt: skip


def hparams_read_back(log_dir: Path, trials) -> None:
    """The HParams plugin's own data: the experiment and one session per trial."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    root = EventAccumulator(str(log_dir))
    root.Reload()
    content = root.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    assert [h.name for h in experiment.hparam_infos] == ["model.ease.l2", "trial_state"]
    assert "val/sampled/NDCG@10" in [m.name.tag for m in experiment.metric_infos]
    for trial in trials:
        run = EventAccumulator(str(log_dir / f"trial-{trial.number:04d}"))
        run.Reload()
        start = run.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
        info = metadata.parse_session_start_info_plugin_data(start)
        assert info.hparams["model.ease.l2"].number_value == pytest.approx(
            trial.params["model.ease.l2"]
        )
        from tensorboard.util import tensor_util

        (event,) = run.Tensors("val/sampled/NDCG@10")
        assert float(tensor_util.make_ndarray(event.tensor_proto)) == pytest.approx(trial.value)


def test_timeout_stops_the_search(tmp_path):
    space = write(tmp_path / "space.yaml", EASE_SPACE.replace("trials: 4", "trials: 500"))
    start = time.perf_counter()
    result = tune(QUICKSTART, tiny(tmp_path, "model.type=ease"), space_path=space,
                  study_dir=tmp_path / "study", timeout_minutes=0.05)  # fmt: skip
    study = optuna.load_study(
        study_name="ncf", storage=f"sqlite:///{result.study_dir / 'study.db'}"
    )
    assert 1 <= len(study.get_trials()) < 500
    assert time.perf_counter() - start < 120 and result.refit is not None


class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.prune, self.reports, self.user_attrs = prune, [], {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune


def test_pruning_callback_reports_validation_and_prunes():
    from ncf.tune.pruning import PruneOnValidation

    keep = PruneOnValidation(FakeTrial(False), "val/sampled/NDCG@10", None)
    keep.on_epoch_end(0, {"loss": 0.3, "val/sampled/NDCG@10": 0.25})
    keep.on_epoch_end(1, {"loss": 0.2})  # not validated this epoch: nothing reported
    assert keep.trial.reports == [(1, 0.25)]
    with pytest.raises(optuna.TrialPruned, match="median"):
        PruneOnValidation(FakeTrial(True), "val/sampled/NDCG@10", None).on_epoch_end(
            2, {"val/sampled/NDCG@10": 0.1}
        )
    # past its deadline a trial is not pruned: its run ends as early stopping would
    late = PruneOnValidation(FakeTrial(False), "val/sampled/NDCG@10", time.time() - 1)
    late.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    late.on_epoch_end(0, {"val/sampled/NDCG@10": 0.3})
    assert late.model.stop_training and late.model.stop_reason == "time budget"
    assert late.trial.user_attrs["note"] == "stopped after epoch 1: time budget"


def _tune_command(tmp_path: Path, space: Path) -> list[str]:
    args = tiny(tmp_path, "train.batch_size=256")
    return [sys.executable, "-m", "ncf.cli", "tune", str(QUICKSTART), "--space", str(space),
            "--study-dir", str(tmp_path / "study"), "--heartbeat", "1", *set_args(*args)]  # fmt: skip


@pytest.mark.slow
def test_neural_study_killed_mid_trial_resumes(tmp_path):
    """SIGKILL while trial 1 trains; the same command then retries it in its own directory
    (resuming from its checkpoint), finishes the study, refits the best and tests it once."""
    space = write(tmp_path / "space.yaml", NEURAL_SPACE)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(_tune_command(tmp_path, space), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    state = tmp_path / "study" / "trials" / "trial-0001" / "checkpoints" / "state.json"
    deadline = time.time() + 400
    while not state.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, first.stdout.read() if first.stdout else ""
    first.send_signal(signal.SIGKILL)
    first.wait()
    trial0 = tmp_path / "study" / "trials" / "trial-0000" / "metrics.json"
    finished_before = trial0.stat().st_mtime
    time.sleep(2.5)  # past the grace period (twice the 1 s heartbeat): trial 1 is stale
    done = subprocess.run(_tune_command(tmp_path, space), env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert trial0.stat().st_mtime == finished_before  # the finished trial was not run again
    storage = f"sqlite:///{tmp_path / 'study' / 'study.db'}"
    trials = optuna.load_study(study_name="ncf", storage=storage).get_trials()
    states = [t.state.name for t in trials]
    assert states[1] == "FAIL" and states.count("COMPLETE") + states.count("PRUNED") == 2
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 1)
    assert retry.params == trials[1].params
    assert retry.user_attrs["run_dir"] == trials[1].user_attrs["run_dir"]
    if retry.state.name == "COMPLETE":  # every validated epoch was reported to the pruner
        assert sorted(retry.intermediate_values) == [1, 2]
    summary = json.loads((tmp_path / "study" / "tune.json").read_text())
    refit = Path(summary["refit_run"])
    metrics = json.loads((refit / "metrics.json").read_text())
    assert metrics["fit_on"] == "train+val" and np.isfinite(metrics["test"]["full"]["HR@10"])
    assert "chosen on validation: trial" in done.stdout and "test metrics" in done.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "model.type=popularity"], "model.type popularity has nothing to search"),
        (["--trials", "0"], "--trials 0"),
        (["--set", "data.split.validation=false", "--set", "train.refit=false"], "validation"),
    ],
)
def test_tune_command_user_errors_are_one_line(tmp_path, args, message):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncf.cli",
            "tune",
            str(QUICKSTART),
            "--study-dir",
            str(tmp_path / "s"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "s" / "study.db").exists()


def test_the_config_tuned_from_is_the_starting_point(tmp_path):
    from ncf.config import load_config
    from ncf.tune.study import default_space

    space = default_space("neumf")
    config = load_config(REPO / "configs" / "ml-100k" / "neumf.yaml")
    point = space.starting_point(config)
    assert point is not None and point["model.mlp_layers"] == "[64, 32, 16, 8]"
    assert point["train.learning_rate"] == 0.004 and point["train.num_negatives"] == 8
    assert space.decode(point)["model.mlp_layers"] == [64, 32, 16, 8]
    outside = load_config(QUICKSTART, ["model.mlp_layers=[48,24]"])  # not among the choices
    assert space.starting_point(outside) is None
    too_fast = load_config(REPO / "configs" / "ml-100k" / "neumf.yaml", ["train.learning_rate=0.5"])
    assert space.starting_point(too_fast) is None


def test_show_space_prints_the_family_default_as_a_usable_file(tmp_path):
    from ncf.tune.study import default_space

    done = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "tune", str(QUICKSTART), "--set", "model.type=ials",
         "--show-space"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# The default search space of ncf tune for model.type ials")
    path = tmp_path / "space.yaml"
    path.write_text(done.stdout)
    assert load_space(path) == default_space("ials")
