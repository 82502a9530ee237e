"""The training run end to end, on small synthetic data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICKSTART, TINY, set_args, tiny_config

from ncf.baselines import Popularity
from ncf.config import load_config
from ncf.data import pipeline
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.train import train
from ncf.train.rundir import RunDir


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    config = tiny_config(tmp_path, "train.epochs=4", "train.early_stopping.patience=0")
    return train(config, verbose=0)


def test_run_directory_is_complete(finished_run):
    run = finished_run.run_dir
    for name in [
        "config.yaml",
        "data.json",
        "split.npz",
        "vocab/users.txt",
        "vocab/items.txt",
        "model.keras",
    ]:
        assert (run / name).is_file(), name
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert (run / "checkpoints" / state["checkpoint"]).is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"sampled", "full"}
    assert {"HR@10", "NDCG@10", "MRR"} <= set(metrics["test"]["sampled"])
    assert {"HR@10", "NDCG@10"} <= set(metrics["val"]["full"])
    assert len(metrics["history"]) == 4 and metrics["train_seconds"] > 0
    assert 1 <= metrics["best_epoch"] <= 4
    assert RunDir(run).config == load_config(run / "config.yaml")


def test_loss_falls_and_model_beats_popularity(finished_run):
    history = finished_run.metrics["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    run = RunDir(finished_run.run_dir)
    split = run.split()
    popularity = Popularity.fit(
        split.num_users, split.num_items, split.train_user, split.train_item
    )
    baseline = evaluate(popularity, split, "test", ["sampled"], [10])["sampled"]
    model = finished_run.metrics["test"]["sampled"]
    assert model["HR@10"] > baseline["HR@10"] + 0.05
    assert model["NDCG@10"] > baseline["NDCG@10"]


def test_best_epoch_is_chosen_on_validation(finished_run):
    metrics = finished_run.metrics
    monitor = metrics["monitor"].removeprefix("val/")
    values = [h["val"][monitor] for h in metrics["history"]]
    assert metrics["best_epoch"] == int(np.argmax(values)) + 1
    # the reported val metrics are those of the restored best epoch
    protocol, name = monitor.split("/")
    assert metrics["val"][protocol][name] == pytest.approx(max(values), abs=1e-6)


def test_tensorboard_has_promised_tags(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = finished_run.run_dir / "tensorboard"
    events = EventAccumulator(str(board), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for tag in [
        "train/loss",
        "train/learning_rate",
        "val/sampled/HR@10",
        "val/sampled/NDCG@10",
        "val/full/NDCG@10",
    ]:
        assert tag in tags, f"{tag} missing from {sorted(tags)[:20]}"
        assert len(events.Tensors(tag)) == 4
    assert any(t.startswith("weights/") for t in tags)
    assert (board / "projector_config.pbtxt").is_file()
    rows = (board / "items.tsv").read_text().splitlines()
    assert rows[0] == "id\ttitle" and len(rows) == 1 + 150


def test_same_seed_same_metrics(finished_run, tmp_path):
    config = tiny_config(tmp_path, "train.epochs=4", "train.early_stopping.patience=0")
    again = train(config, verbose=0)
    for protocol in ("sampled", "full"):
        for name, value in finished_run.metrics["test"][protocol].items():
            assert again.metrics["test"][protocol][name] == pytest.approx(value, abs=1e-6), name


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    original = pipeline.TrainingStream.dataset

    def poisoned(self, epoch):
        scale = np.nan if epoch == 1 else 1.0
        return original(self, epoch).map(lambda features, label: (features, label * scale))

    monkeypatch.setattr(pipeline.TrainingStream, "dataset", poisoned)
    config = tiny_config(tmp_path, "train.epochs=3")
    with pytest.raises(
        NcfError, match=r"NaN or infinite in epoch 2.*last good checkpoint \(epoch 1\)"
    ):
        train(config, verbose=0)
    run = next((tmp_path / "runs" / "quickstart").iterdir())
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and (run / "checkpoints" / state["checkpoint"]).is_file()
    assert not (run / "metrics.json").exists()


def test_early_stopping_metric_must_be_computed(tmp_path):
    config = tiny_config(tmp_path, "train.early_stopping.metric=NDCG@50")
    with pytest.raises(ConfigError, match="train.early_stopping.metric"):
        train(config, verbose=0)


BIGGER = [
    "data.synthetic.users=600",
    "data.synthetic.items=400",
    "data.synthetic.interactions=30000",
    "train.batch_size=256",
]


def _train_command(tmp_path: Path, *extra: str) -> list[str]:
    sets = [f"run.dir={tmp_path / 'runs'}", *TINY, *BIGGER, *extra]
    return [sys.executable, "-m", "ncf.cli", "train", str(QUICKSTART), *set_args(*sets)]


# Trains like `ncf train CONFIG --set ...` and SIGKILLs itself from inside, after BATCH
# batches of the (1-based) EPOCH-th epoch the process runs (refit epochs count after the
# selection's), so the kill lands mid-epoch however loaded the machine is.
KILLED_RUN = """
import os, signal, sys
import keras
from ncf.config import load_config
from ncf.train import train

epoch_to_kill, batch_to_kill, config_path, *sets = sys.argv[1:]

class Kill(keras.callbacks.Callback):
    epochs_begun = 0
    def on_epoch_begin(self, epoch, logs=None):
        Kill.epochs_begun += 1
    def on_train_batch_end(self, batch, logs=None):
        if Kill.epochs_begun == int(epoch_to_kill) and batch >= int(batch_to_kill):
            os.kill(os.getpid(), signal.SIGKILL)

train(load_config(config_path, sets), verbose=0, extra_callbacks=[Kill()])
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "phase, options, epoch_to_kill",
    [
        ("selection", [], 3),
        # with a refit: 4 selection epochs (patience 0), then the refit's second epoch
        ("refit", ["train.refit=true"], 6),
    ],
)
def test_sigkill_mid_epoch_then_same_command_resumes_to_same_metrics(
    tmp_path, phase, options, epoch_to_kill
):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    settings = ["train.epochs=4", "train.early_stopping.patience=0", *options]
    command = _train_command(tmp_path / "killed", *settings)
    config, sets = command[4], command[6::2]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(epoch_to_kill), "100", config, *sets],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    state_files = tmp_path / "killed" / "runs" / "quickstart"
    (run,) = state_files.iterdir()
    assert not (run / "metrics.json").exists()
    state_file = "checkpoints/refit/state.json" if phase == "refit" else "checkpoints/state.json"
    state = json.loads((run / state_file).read_text())
    assert state["epoch"] == (epoch_to_kill - 1) - (4 if phase == "refit" else 0)
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {run}" in resumed.stdout
    assert list(state_files.iterdir()) == [run]
    killed_metrics = json.loads((run / "metrics.json").read_text())

    straight = subprocess.run(
        _train_command(tmp_path / "straight", *settings),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert straight.returncode == 0, straight.stderr
    run = next((tmp_path / "straight" / "runs" / "quickstart").iterdir())
    straight_metrics = json.loads((run / "metrics.json").read_text())
    assert [h["loss"] for h in killed_metrics["history"]] == pytest.approx(
        [h["loss"] for h in straight_metrics["history"]], abs=1e-6
    )
    if phase == "refit":
        assert straight_metrics["refit"]["epochs"] >= 2, "the kill must land inside the refit"
        assert "refit: training a fresh model" in resumed.stdout
        assert [h["loss"] for h in killed_metrics["refit"]["history"]] == pytest.approx(
            [h["loss"] for h in straight_metrics["refit"]["history"]], abs=1e-6
        )
    for protocol in ("sampled", "full"):
        for name, value in straight_metrics["test"][protocol].items():
            assert killed_metrics["test"][protocol][name] == pytest.approx(value, abs=1e-6), name


# -- figures: timings, the epoch cap, sparser validation -----------------------------------------


def test_timings_report_the_compiled_first_epoch_apart(finished_run):
    metrics = finished_run.metrics
    history = metrics["history"]
    assert history[0].get("compiled") is True
    assert not any(h.get("compiled") for h in history[1:])
    steady = [h["seconds"]["epoch"] for h in history[1:]]
    assert metrics["seconds_per_epoch"]["epoch"] == pytest.approx(float(np.median(steady)))
    assert metrics["first_epoch_seconds"] == history[0]["seconds"]
    assert metrics["examples_per_second"] == pytest.approx(
        metrics["examples_per_epoch"] / metrics["seconds_per_epoch"]["train"]
    )


def test_summary_line_shows_train_and_validation_seconds():
    from ncf.train.callbacks import summary_line

    record = {
        "epoch": 1,
        "loss": 0.5,
        "compiled": True,
        "seconds": {"epoch": 6.0, "train": 4.5, "eval": 1.5},
        "val": {"sampled/HR@10": 0.5, "sampled/NDCG@10": 0.25},
    }
    line = summary_line(record, "val/sampled/NDCG@10", True, "epoch")
    assert line.endswith("(6.0s incl. compile: train 4.5, val 1.5) *")
    record.pop("compiled")
    assert "(6.0s: train 4.5, val 1.5)" in summary_line(record, "", False, "epoch")


def test_epoch_cap_and_early_stopping_are_told_apart(finished_run, tmp_path):
    assert finished_run.metrics["stopped"] == "epoch cap"  # patience 0: never stops early
    # Nothing improves by 1.0, so patience 1 stops after epoch 2.
    config = tiny_config(
        tmp_path, "train.epochs=4", "train.early_stopping.min_delta=1.0",
        "train.early_stopping.patience=1",
    )  # fmt: skip
    metrics = train(config, verbose=0).metrics
    assert metrics["stopped"] == "early stopping" and metrics["epochs_run"] == 2


def test_cli_says_when_the_epoch_cap_was_reached(tmp_path, capsys):
    from ncf.cli import main

    args = ["train", str(QUICKSTART), *set_args(f"run.dir={tmp_path}", *TINY, "train.epochs=2")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "early stopping never triggered: the run stopped at the epoch cap (train.epochs=2)" in out
    )
    assert "incl. compile" in out and ", val " in out
    metrics = json.loads(next(tmp_path.glob("*/*/metrics.json")).read_text())
    steady, first = metrics["seconds_per_epoch"], metrics["first_epoch_seconds"]
    assert (
        f"timing: {steady['epoch']:.2f} s per epoch (median of 1 epoch that compiled nothing: "
        f"train {steady['train']:.2f}, val {steady['eval']:.2f}), first epoch "
        f"{first['epoch']:.2f} s incl. compile; {metrics['examples_per_second']:,.0f} training "
        "examples/s"
    ) in out


def test_a_cosine_schedule_that_runs_its_length_ends_by_plan_without_the_cap_note(tmp_path):
    from ncf.report.text import format_run_result

    config = tiny_config(tmp_path, "train.epochs=2", "train.lr_schedule=cosine")
    metrics = train(config, verbose=0).metrics
    assert metrics["stopped"] == "schedule end" and metrics["epochs_run"] == 2
    assert "early stopping never triggered" not in format_run_result(metrics, tmp_path)


def test_val_every_validates_every_nth_and_the_last_epoch(tmp_path):
    config = tiny_config(
        tmp_path, "train.epochs=5", "train.early_stopping.patience=0", "eval.val_every=2"
    )
    metrics = train(config, verbose=0).metrics
    history = metrics["history"]
    validated = [h["epoch"] for h in history if h["val"]]
    assert validated == [2, 4, 5]
    # epoch 1 compiles the training step, epoch 2 traces the scorer: neither is steady
    assert [h["epoch"] for h in history if h.get("compiled")] == [1, 2]
    assert metrics["first_epoch_seconds"] == history[0]["seconds"]
    # the steady validation cost is that of one validation (epochs 4 and 5), not a median
    # mixed with the epochs that skipped it
    steady = metrics["seconds_per_epoch"]
    assert steady["eval"] == pytest.approx(
        np.median([history[i]["seconds"]["eval"] for i in (3, 4)])
    )
    assert steady["eval"] > 0
    assert steady["train"] == pytest.approx(np.median([h["seconds"]["train"] for h in history[2:]]))
    assert metrics["best_epoch"] in validated
    best = metrics["history"][metrics["best_epoch"] - 1]["val"]["sampled/NDCG@10"]
    assert best == max(metrics["history"][e - 1]["val"]["sampled/NDCG@10"] for e in validated)


def test_val_users_ranks_a_fixed_sample_and_reports_every_user(tmp_path):
    from ncf.data.dataset import load_dataset
    from ncf.train.phase import validation_split

    config = tiny_config(tmp_path, "train.epochs=2", "eval.val_users=40")
    split = load_dataset(config).split
    sample = validation_split(config, split)
    assert len(np.unique(sample.val_user)) == 40 < len(np.unique(split.val_user))
    assert np.array_equal(validation_split(config, split).val_user, sample.val_user)  # seeded
    result = train(config, verbose=0)
    # the chosen model's validation metrics are computed once more, on every user
    assert result.metrics["val"]["sampled"]["cases"] == len(split.val_user)
    selected = RunDir(result.run_dir).load_scorer()
    again = evaluate(selected, split, "val", ["sampled"], [10])["sampled"]
    assert result.metrics["val"]["sampled"]["HR@10"] == pytest.approx(again["HR@10"])
