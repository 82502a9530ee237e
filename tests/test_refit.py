"""``train.refit``: the epoch is chosen on validation, then a fresh model is trained on
train + validation for that many epochs and is the one tested and exported."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_config

from ncf.cli import main
from ncf.errors import ConfigError
from ncf.evaluation import evaluate
from ncf.family import FitInputs
from ncf.models.scorer import NeuralScorer, load_keras_model
from ncf.registry import family
from ncf.train import train
from ncf.train.rundir import RunDir


@pytest.fixture(scope="module")
def refit_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("refit")
    config = tiny_config(
        tmp_path, "train.epochs=3", "train.early_stopping.patience=0", "train.refit=true"
    )
    return train(config, verbose=0)


def test_refit_trains_for_the_chosen_epochs_on_train_and_validation(refit_run):
    metrics = refit_run.metrics
    run = RunDir(refit_run.run_dir)
    split, config = run.split(), run.config
    best = metrics["best_epoch"]
    assert metrics["fit_on"] == "train+val"
    assert metrics["refit"]["epochs"] == best
    assert [h["epoch"] for h in metrics["refit"]["history"]] == list(range(1, best + 1))
    per_positive = 1 + config.train.num_negatives
    assert metrics["refit"]["examples_per_epoch"] == per_positive * (
        split.num_train + len(split.val_user)
    )
    assert metrics["examples_per_epoch"] == per_positive * split.num_train


def test_validation_metrics_are_the_selected_models_and_test_the_refit_models(refit_run):
    path, metrics = refit_run.run_dir, refit_run.metrics
    split, config = RunDir(path).split(), RunDir(path).config
    selected = NeuralScorer(load_keras_model(path / "selected.keras"))
    final = NeuralScorer(load_keras_model(path / "model.keras"))
    args = (config.eval.protocols, config.eval.k)
    val = evaluate(selected, split, "val", *args)
    test = evaluate(final, split, "test", *args)
    for protocol in ("sampled", "full"):
        for name in ("HR@10", "NDCG@10"):
            assert metrics["val"][protocol][name] == pytest.approx(val[protocol][name], abs=1e-6)
            assert metrics["test"][protocol][name] == pytest.approx(test[protocol][name], abs=1e-6)
    best = metrics["history"][metrics["best_epoch"] - 1]["val"]["sampled/NDCG@10"]
    assert metrics["val"]["sampled"]["NDCG@10"] == pytest.approx(best, abs=1e-6)
    users = np.arange(5, dtype=np.int32)
    assert not np.allclose(selected.score_all(users), final.score_all(users))


def test_the_refit_on_the_shared_compiled_model_equals_a_fresh_model(refit_run, tmp_path):
    """The run compiles once and reinitialises its model for the refit; a model built and
    compiled afresh for the refit phase must train to the same losses and scores."""
    from ncf.data.dataset import load_dataset
    from ncf.train.neural import build_for
    from ncf.train.phase import Phase, compile_model, run_phase, seed_everything

    config = RunDir(refit_run.run_dir).config
    dataset = load_dataset(config)
    epochs = refit_run.metrics["best_epoch"]
    seed_everything(config.run.seed)
    fresh = compile_model(build_for(config, dataset), config)
    merged = dataset.split.with_validation_in_train()
    phase = Phase("refit epoch", tmp_path / "ck", tmp_path / "tb", epochs, merged, validate=False)
    result = run_phase(config, dataset, phase, fresh, None, "", 0)
    shared = refit_run.metrics["refit"]["history"]
    assert [h["loss"] for h in result.state.history] == pytest.approx(
        [h["loss"] for h in shared], abs=1e-6
    )
    assert shared[0].get("compiled") is None  # the refit reused the compiled train step
    users = np.arange(20, dtype=np.int32)
    saved = load_keras_model(refit_run.run_dir / "model.keras")
    np.testing.assert_allclose(
        result.model.score_all(users), saved.score_all(users), rtol=1e-5, atol=1e-6
    )


def test_refit_is_logged_to_tensorboard(refit_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(
        str(refit_run.run_dir / "tensorboard" / "refit"), size_guidance={"tensors": 0}
    )
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"train/loss", "train/learning_rate"} <= tags
    assert len(events.Tensors("train/loss")) == refit_run.metrics["best_epoch"]
    assert not any(tag.startswith("val/") for tag in tags)


def test_evaluating_validation_with_a_refit_model_is_refused(refit_run, capsys):
    assert main(["evaluate", str(refit_run.run_dir), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "refit on train + validation" in err and "metrics.json" in err


def test_refit_needs_a_validation_split(tmp_path):
    with pytest.raises(ConfigError, match="train.refit needs a validation split"):
        tiny_config(tmp_path, "train.refit=true", "data.split.validation=false")


def test_baseline_refit_is_fitted_on_train_and_validation(tmp_path):
    config = tiny_config(tmp_path, "model.type=itemknn", "train.refit=true")
    result = train(config, verbose=0)
    split = RunDir(result.run_dir).split()
    merged = split.with_validation_in_train()

    def fit(on):
        return family("itemknn").fit(config.model, on, FitInputs(seed=config.run.seed))

    users = np.arange(split.num_users, dtype=np.int32)
    saved = family("itemknn").load(result.run_dir)
    np.testing.assert_allclose(saved.score_all(users), fit(merged).score_all(users), atol=1e-6)
    val = evaluate(fit(split), split, "val", config.eval.protocols, config.eval.k)
    assert result.metrics["val"]["full"]["NDCG@10"] == pytest.approx(val["full"]["NDCG@10"])
    assert result.metrics["fit_on"] == "train+val"


@pytest.mark.slow
def test_pretrained_neumf_selects_from_the_selected_models_and_refits_from_the_final(
    tmp_path, caplog
):
    common = ["train.epochs=2", "train.early_stopping.patience=0", "train.refit=true"]
    runs = {}
    for head in ("gmf", "mlp"):
        config = tiny_config(tmp_path, *common, f"model.type={head}", f"run.name={head}")
        runs[head] = train(config, verbose=0).run_dir
    caplog.clear()
    config = tiny_config(
        tmp_path,
        *common,
        "model.type=neumf",
        f"model.pretrained.gmf={runs['gmf']}",
        f"model.pretrained.mlp={runs['mlp']}",
    )
    with caplog.at_level("INFO", logger="ncf"):
        train(config, verbose=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("initialising")]
    assert lines == [
        f"initialising the gmf branch from {runs['gmf'] / 'selected.keras'}",
        f"initialising the mlp branch from {runs['mlp'] / 'selected.keras'}",
        f"initialising the gmf branch from {runs['gmf'] / 'model.keras'}",
        f"initialising the mlp branch from {runs['mlp'] / 'model.keras'}",
    ]
