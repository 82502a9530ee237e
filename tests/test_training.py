"""The training run end to end, on small synthetic data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ncf.baselines import fit_baseline
from ncf.config import ModelConfig, load_config
from ncf.data import pipeline
from ncf.errors import ConfigError, NcfError
from ncf.evaluation import evaluate
from ncf.rundir import RunDir
from ncf.training import train

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "data.synthetic.users=300",
    "data.synthetic.items=150",
    "data.synthetic.interactions=9000",
    "model.embedding_dim=8",
    "model.mlp_layers=[16,8]",
    "train.batch_size=512",
    "train.learning_rate=0.01",
    "eval.k=[5,10]",
    "eval.sampled_negatives=50",
]


def tiny_config(tmp_path: Path, *extra: str):
    return load_config(
        REPO / "configs" / "quickstart.yaml", [f"run.dir={tmp_path / 'runs'}", *TINY, *extra]
    )


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
    popularity = fit_baseline(
        ModelConfig(type="popularity"),
        split.num_users,
        split.num_items,
        split.train_user,
        split.train_item,
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
    original = pipeline.TrainingStream.epoch

    def poisoned(self, epoch):
        for features, label in original(self, epoch):
            yield features, (label * np.nan if epoch == 1 else label)

    monkeypatch.setattr(pipeline.TrainingStream, "epoch", poisoned)
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
    return [sys.executable, "-m", "ncf.cli", "train", str(REPO / "configs" / "quickstart.yaml")] + [
        arg for s in sets for arg in ("--set", s)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "phase, options, state_file",
    [
        ("selection", [], "checkpoints/state.json"),
        # with a refit, killed in the middle of the refit's second epoch
        ("refit", ["train.refit=true"], "checkpoints/refit/state.json"),
    ],
)
def test_sigkill_mid_epoch_then_same_command_resumes_to_same_metrics(
    tmp_path, phase, options, state_file
):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    settings = ["train.epochs=4", "train.early_stopping.patience=0", *options]
    command = _train_command(tmp_path / "killed", *settings)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    state_files = tmp_path / "killed" / "runs" / "quickstart"
    kill_after = 2 if phase == "selection" else 1
    deadline = time.time() + 240
    while time.time() < deadline:
        states = list(state_files.glob(f"*/{state_file}"))
        if states and json.loads(states[0].read_text())["epoch"] >= kill_after:
            break
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    time.sleep(0.3)  # well inside epoch 3
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list(state_files.glob("*/metrics.json"))
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout
    runs = list(state_files.iterdir())
    assert len(runs) == 1
    killed_metrics = json.loads((runs[0] / "metrics.json").read_text())

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
