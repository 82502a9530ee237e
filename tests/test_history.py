"""The history-pooled user tower: histories, softmax losses, the model, its pipeline, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import QUICKSTART, TINY, set_args

from ncf.data.histories import Histories, timestamps_of

PAD = 9  # num_items of the small hand data below


def slow_history(user, item, time, row, length, num_items):
    """Reference: the user's other items no later than the row's, latest first (ties: larger
    item first, the order (user, time, item) read backwards), padded."""
    mine = [
        (time[j], item[j])
        for j in range(len(user))
        if user[j] == user[row] and j != row and time[j] <= time[row]
    ]
    mine.sort(reverse=True)
    found = [i for _, i in mine][:length]
    return found + [num_items] * (length - len(found))


def hand_data(seed=0, n=32, users=5, times=4):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(users * PAD, size=n, replace=False)  # distinct (user, item) pairs
    user, item = (pairs // PAD).astype(np.int32), (pairs % PAD).astype(np.int32)
    time = rng.integers(0, times, n).astype(np.int64)  # many ties
    return user, item, time


@pytest.mark.parametrize("length", [1, 3, 8])
def test_training_window_matches_a_slow_loop_with_ties(length):
    import tensorflow as tf

    user, item, time = hand_data()
    histories = Histories.build(user, item, time, 6, PAD)  # user 5 has no interactions
    rows = np.arange(len(user), dtype=np.int32)
    got = histories.window(histories.graph(), tf.constant(rows), tf.constant(user), length)
    for row in rows:
        assert list(got.numpy()[row]) == slow_history(user, item, time, row, length, PAD), row


def test_without_time_the_window_is_every_other_item_and_the_table_the_latest():
    import tensorflow as tf

    user, item, time = hand_data(1)
    for histories, times in (
        (Histories.build(user, item, None, 6, PAD), np.zeros_like(time)),
        (Histories.build(user, item, time, 6, PAD, causal=False), np.zeros_like(time)),
    ):
        got = histories.window(histories.graph(), tf.range(len(user)), tf.constant(user), 20)
        for row in range(len(user)):
            assert list(got.numpy()[row]) == slow_history(user, item, times, row, 20, PAD)
    table = Histories.build(user, item, time, 6, PAD).table(4)
    for u in range(6):
        mine = sorted(((time[j], item[j]) for j in range(len(user)) if user[j] == u), reverse=True)
        expected = [i for _, i in mine][:4]
        assert list(table[u]) == expected + [PAD] * (4 - len(expected))
    assert list(table[5]) == [PAD] * 4


def test_timestamps_are_looked_up_by_pair():
    user, item, time = hand_data(2)
    pick = np.array([5, 0, 17])
    got = timestamps_of(user[pick], item[pick], user, item, time, PAD)
    np.testing.assert_array_equal(got, time[pick])
    assert timestamps_of(user, item, user, item, None, PAD) is None


def test_softmax_losses_against_hand_computed_values():
    from ncf.models.losses import sampled_softmax_loss, softmax_loss

    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], "float32")
    targets = np.array([1, 0])
    by_hand = [np.log(np.exp(1) + np.exp(2) + np.exp(0.5)) - 2.0, np.log(2 + np.exp(3)) - 0.0]
    np.testing.assert_allclose(softmax_loss(logits, targets), by_hand, rtol=1e-6)
    # sampled: S = 2, q = (0.5, 0.25), the second example's first draw is its own positive
    positive = np.array([2.0, 1.0], "float32")
    sampled = np.array([[0.5, 1.5], [1.0, -1.0]], "float32")
    log_q = np.log(2 * np.array([0.5, 0.25], "float32"))
    hits = np.array([[False, False], [True, False]])
    first = np.log(np.exp(2.0) + np.exp(0.5) / 1.0 + np.exp(1.5) / 0.5) - 2.0
    second = np.log(np.exp(1.0) + np.exp(-1.0) / 0.5) - 1.0
    got = sampled_softmax_loss(positive, sampled, log_q, hits)
    np.testing.assert_allclose(got, [first, second], rtol=1e-5)


def test_softmax_losses_gradients_match_the_plain_formulas():
    """The losses are written for speed (no select, no concatenation, the positive from its own
    row); their gradients equal those of the plain formulas, large logits and a masked draw
    included."""
    import tensorflow as tf

    from ncf.models.losses import sampled_softmax_loss, softmax_loss

    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(4, 7)) * 30, tf.float32)  # big: the shift matters
    targets = np.array([1, 0, 6, 3])
    positive = tf.gather(logits, targets, batch_dims=1)
    log_q = tf.constant(rng.normal(size=7), tf.float32)
    hits = tf.constant(targets[:, None] == np.arange(7)[None, :])  # each row draws its own
    plain = [
        lambda z, p: tf.reduce_logsumexp(z, axis=1) - tf.gather(z, targets, batch_dims=1),
        lambda z, p: (
            tf.reduce_logsumexp(
                tf.concat([p[:, None], tf.where(hits, -1e30, z - log_q[None])], axis=1), axis=1
            )
            - p
        ),
    ]
    fast = [
        lambda z, p: softmax_loss(z, targets, tf.gather(z, targets, batch_dims=1)),
        lambda z, p: sampled_softmax_loss(p, z, log_q, hits),
    ]
    for slow_loss, fast_loss in zip(plain, fast, strict=True):
        values, grads = [], []
        for loss in (slow_loss, fast_loss):
            z, p = tf.Variable(logits), tf.Variable(positive)
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(loss(z, p) * tf.constant([1.0, 2.0, 3.0, 4.0]))
            values.append(value.numpy())
            grads.append([0.0 if g is None else g.numpy() for g in tape.gradient(value, [z, p])])
        np.testing.assert_allclose(values[1], values[0], rtol=1e-5)
        for got, want in zip(grads[1], grads[0], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def small_model(loss="softmax", **kwargs):
    from ncf.models.history import HistoryModel

    model = HistoryModel(
        num_users=6, num_items=PAD, embedding_dim=4, history_length=3, loss=loss, seed=1, **kwargs
    )
    user, item, time = hand_data()
    model.set_histories(Histories.build(user, item, time, 6, PAD).table(3))
    return model


def test_model_scoring_paths_agree_and_read_the_table():
    model = small_model()
    users = np.arange(6, dtype=np.int32)
    every = np.asarray(model.score_all(users))
    items = np.tile(np.arange(PAD, dtype=np.int32), (6, 1))
    np.testing.assert_allclose(model.score_items(users, items), every, atol=1e-6)
    pairs = model({"user": users, "item": np.full(6, 4, np.int32)})
    np.testing.assert_allclose(pairs, every[:, 4], atol=1e-6)
    table = np.asarray(model.histories)
    np.testing.assert_allclose(model.score_histories(table), every, atol=1e-6)
    # the history, not the id, makes the user: two users with one history score alike
    same = model.score_histories(np.stack([table[0], table[0]]))
    np.testing.assert_allclose(np.asarray(same)[1], every[0], atol=1e-6)
    # dropout acts only in training
    x = {"user": users, "item": np.zeros(6, np.int32), "history": table}
    np.testing.assert_allclose(model(x), model(x), atol=0)
    assert not np.allclose(model(x, training=True), model(x), atol=1e-7)


@pytest.mark.parametrize("loss", ["softmax", "sampled_softmax"])
def test_training_loss_is_the_softmax_of_the_example_history(loss):
    """The full softmax exactly; so is sampled_softmax when its draws are a third of the
    catalogue or more (it computes the full softmax then: cheaper, and exact)."""
    from ncf.models.losses import softmax_loss

    model = small_model(loss, dropout=0.0, sampled_items=PAD)
    table = np.asarray(model.histories)
    x = {
        "user": np.arange(6, dtype=np.int32),
        "item": np.arange(6, dtype=np.int32),
        "history": table,
    }
    got = float(model.compute_loss(x, None, None))
    expected = float(np.mean(softmax_loss(model.score_histories(table), x["item"])))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_sampled_softmax_tends_to_the_full_one_and_draws_follow_the_proposal():
    import keras

    from ncf.models.losses import draw_items, sampled_softmax_loss, softmax_loss

    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(40)).astype("float32")
    q[[3, 17]] = 0.0  # never drawn
    draws = np.asarray(
        draw_items(np.log(np.maximum(q, 1e-30)), 200_000, keras.random.SeedGenerator(1))
    )
    frequency = np.bincount(draws, minlength=40) / len(draws)
    assert frequency[3] == frequency[17] == 0.0
    np.testing.assert_allclose(frequency, q / q.sum(), atol=3e-3)
    logits = rng.normal(size=(5, 40)).astype("float32")
    targets = np.array([0, 5, 9, 22, 39], np.int32)
    full = np.asarray(softmax_loss(logits, targets))
    uniform = np.zeros(40, "float32") - np.log(40.0)
    sampled = np.asarray(draw_items(uniform, 20_000, keras.random.SeedGenerator(2)))
    estimate = sampled_softmax_loss(
        logits[np.arange(5), targets], logits[:, sampled],
        uniform[sampled] + np.log(20_000.0), targets[:, None] == sampled[None, :],
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(estimate), full, rtol=0.02)


def test_philox_uniforms_are_keras_own_draws_compiled_and_eager():
    """ncf.models.philox.uniform names the algorithm only for speed (XLA's default is slow on
    the CPU): the same numbers as keras.random.uniform, eager and XLA-compiled."""
    import keras
    import tensorflow as tf

    from ncf.models.philox import uniform

    ours = uniform((4, 5), keras.random.SeedGenerator(7))
    keras_own = keras.random.uniform((4, 5), seed=keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(keras_own))

    def compiled(draw):
        generator = keras.random.SeedGenerator(7)
        return tf.function(lambda: draw(generator), jit_compile=True)().numpy()

    ours = compiled(lambda g: uniform((4, 5), g))
    np.testing.assert_array_equal(ours, compiled(lambda g: keras.random.uniform((4, 5), seed=g)))
    assert np.all((ours >= 0) & (ours < 1))


def test_saved_model_keeps_its_history_table(tmp_path):
    from ncf.models.scorer import load_keras_model

    model = small_model()
    model.save(tmp_path / "m.keras")
    loaded = load_keras_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.histories), np.asarray(model.histories))
    users = np.arange(6, dtype=np.int32)
    np.testing.assert_allclose(loaded.score_all(users), model.score_all(users), atol=1e-6)


def test_pipeline_gives_each_example_its_own_history():
    from ncf.config import TrainConfig
    from ncf.data.pipeline import TrainingStream
    from ncf.data.split import Split

    user, item, time = hand_data(3)
    order = np.argsort(user, kind="stable")
    user, item, time = user[order], item[order], time[order]
    empty = np.zeros(0, np.int32)
    split = Split(6, PAD, user, item, empty, empty, empty, empty, np.zeros((0, 1), np.int32),
                  np.zeros((0, 1), np.int32))  # fmt: skip
    histories = Histories.build(user, item, time, 6, PAD)
    stream = TrainingStream(split, TrainConfig(loss="softmax", batch_size=8), 0, histories, 5)
    seen = 0
    row_of = {(int(u), int(i)): j for j, (u, i) in enumerate(zip(user, item, strict=True))}
    for features, _ in stream.dataset(0):
        for u, i, h in zip(features["user"].numpy(), features["item"].numpy(),
                           features["history"].numpy(), strict=True):  # fmt: skip
            row = row_of[(int(u), int(i))]
            assert list(h) == slow_history(user, item, time, row, 5, PAD)
            seen += 1
    assert seen == stream.steps_per_epoch * 8 and stream.examples_per_epoch == len(user)
    # No autotuner thread for an epoch's iterator to join when it is freed (ncf.data.pipeline).
    assert stream.dataset(0).options().autotune.enabled is False


def test_config_ties_softmax_losses_to_the_history_model(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "train", str(QUICKSTART), *set_args(
            f"run.dir={tmp_path}", "model.type=neumf", "train.loss=softmax")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "train.loss softmax does not fit model.type neumf" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def test_ncf_train_says_when_the_history_model_gets_no_time_order(tmp_path, capsys):
    """``ncf train`` in this process (the data file's path is new to it, so the once-per-
    process note is due)."""
    from ncf.cli import main

    rows = "".join(f"u{u},i{(u * 7 + k) % 40}\n" for u in range(60) for k in range(6))
    (tmp_path / "plays.csv").write_text("user,item\n" + rows)
    base = [f"run.dir={tmp_path / 'runs'}", "data.source=csv", f"data.path={tmp_path / 'plays.csv'}",
            "eval.sampled_negatives=5", "train.epochs=1", "train.batch_size=64", "train.refit=false"]  # fmt: skip
    for kind, noted in (("history", True), ("mf", False)):
        extra = (
            ["model.type=history", "train.loss=softmax"] if kind == "history" else ["model.type=mf"]
        )
        assert main(["train", str(QUICKSTART), *set_args(*base, *extra)]) == 0
        said = "note: the data has no timestamps, so the history model reads each user's items"
        assert (said in capsys.readouterr().out) == noted, kind


def test_the_no_time_order_note_comes_once_per_data_set_not_per_tuning_trial(caplog):
    from types import SimpleNamespace

    from ncf.train import run

    config = SimpleNamespace(
        model=SimpleNamespace(type="history", history=SimpleNamespace(length=50))
    )
    data = SimpleNamespace(
        interactions=SimpleNamespace(timestamp=None, description="once.csv (csv)")
    )
    with caplog.at_level("WARNING", logger="ncf"):
        for _ in range(3):  # three trials of one study
            run.note_data(config, data)
    assert caplog.text.count("the data has no timestamps") == 1
    run.NOTED.discard(("history", "once.csv (csv)"))


def test_ncf_train_history_then_recommend_from_the_export(tmp_path, capsys):
    """The CLI path: train (selection + refit), then an export answers recommend, each in
    a fresh process; then compare and forget (in this process: each fresh process costs
    seconds of TensorFlow import)."""
    from ncf.cli import main

    args = set_args(
        f"run.dir={tmp_path / 'runs'}", *TINY, "model.type=history", "train.loss=softmax",
        "model.history.length=10", "train.epochs=3", "train.batch_size=256",
    )  # fmt: skip
    train = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "train", str(QUICKSTART), *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    run = next((tmp_path / "runs").glob("*/*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "history" and metrics["test"]["full"]["HR@10"] > 0.0
    exported = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "export", str(run), "--out", str(tmp_path / "export")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr[-3000:]
    user = (run / "vocab" / "users.txt").read_text().split("\n")[0]
    shown = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "recommend", str(tmp_path / "export"), "--user", user,
         "--k", "5", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "history vector" in shown.stdout  # the family says what its scores mean
    listed = json.loads(shown.stdout)
    assert len(listed["items"] if "items" in listed else listed["recommendations"]) == 5
    # ncf compare names the history model's own settings (no negatives: softmax draws none)
    capsys.readouterr()
    assert main(["compare", str(run)]) == 0
    compared = capsys.readouterr().out
    row = next(line for line in compared.splitlines() if "| history |" in line)
    assert "length=10" in row and "causal=True" in row and "negatives" not in row, row
    # forgetting a user: a warm start is refused (exit 2, no new run), --exact retrains
    forget = ["forget", str(run), "--user", user]
    assert main([*forget, "--out", str(tmp_path / "warm")]) == 2
    err = capsys.readouterr().err
    assert "--exact" in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "warm").exists()
    assert main([*forget, "--exact", "--out", str(tmp_path / "exact")]) == 0
    users = (tmp_path / "exact" / "vocab" / "users.txt").read_text().split("\n")
    assert user not in users
