"""The sequence tower: causal attention, next-item windows, scoring paths, loss by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ncf.config import TrainConfig
from ncf.data.histories import Histories
from ncf.data.sequences import SequenceStream, windows
from ncf.models.attention import CausalSelfAttention, TransformerBlock
from ncf.models.sequence import SequenceModel

NUM_USERS, NUM_ITEMS, LENGTH = 5, 9, 4


def causal(batch: int, length: int, present: np.ndarray | None = None) -> np.ndarray:
    allowed = np.tril(np.ones((length, length), bool))[None].repeat(batch, 0)
    if present is not None:
        allowed &= present[:, None, :]
    return allowed


def test_attention_reads_only_earlier_slots_that_hold_items():
    keras.utils.set_random_seed(0)
    layer = TransformerBlock(8, heads=2, expansion=2, dropout=0.0, seed=1)
    z = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    out = np.asarray(layer(z, causal(2, 6)))
    later = z.copy()
    later[:, 4:] += 5.0  # change slots 4 and 5 only
    np.testing.assert_allclose(np.asarray(layer(later, causal(2, 6)))[:, :4], out[:, :4], atol=1e-5)
    present = np.array([[False, True, True, True, True, True]] * 2)
    masked = z.copy()
    masked[:, 0] = 100.0  # a padding key: what it holds must not matter
    got = np.asarray(layer(masked, causal(2, 6, present)))
    np.testing.assert_allclose(
        got[:, 1:], np.asarray(layer(z, causal(2, 6, present)))[:, 1:], atol=1e-4
    )


def test_attention_layers_serialise():
    layer = CausalSelfAttention(8, heads=4, dropout=0.1, seed=3)
    clone = CausalSelfAttention.from_config(layer.get_config())
    assert (clone.dim, clone.heads, clone.dropout, clone.seed) == (8, 4, 0.1, 3)
    with pytest.raises(ValueError, match="multiple of heads"):
        CausalSelfAttention(6, heads=4)


def _histories() -> Histories:
    user = np.array([0, 0, 0, 0, 0, 0, 1, 1, 3], np.int64)
    item = np.array([1, 2, 3, 4, 5, 6, 7, 8, 0], np.int64)
    time = np.array([1, 2, 3, 4, 5, 6, 1, 2, 1], np.int64)
    return Histories.build(user, item, time, NUM_USERS, NUM_ITEMS)


def test_windows_match_a_slow_loop():
    h, length = _histories(), 3
    expected = []
    for user in range(NUM_USERS):
        seq = list(h.item[h.start[user] : h.last[user] + 1])  # in time order
        for end in range(len(seq) - 1, 0, -length):  # the last target of each window
            slots = [end - (length - 1) + k for k in range(length)]  # target positions
            inputs = [seq[t - 1] if t - 1 >= 0 else NUM_ITEMS for t in slots]
            targets = [seq[t] if t - 1 >= 0 else -1 for t in slots]
            expected.append((inputs, targets))
    window, target = windows(h, length)
    assert sorted(zip(window.tolist(), target.tolist(), strict=True)) == sorted(expected)
    # user 0: 6 items -> ceil(5 / 3) = 2 windows; user 1: 1; users 2 and 3: none
    assert len(window) == 3 and (target >= 0).sum() == 5 + 1


def test_stream_batches_every_target_once_an_epoch_in_one_shape():
    h = _histories()
    stream = SequenceStream(h, 3, TrainConfig(batch_size=2, loss="softmax"), seed=7)
    assert stream.steps_per_epoch == 2 and stream.examples_per_epoch == 6
    batches = list(stream.dataset(0))
    assert all(x["window"].shape == (2, 3) and x["target"].shape == (2, 3) for x, _ in batches)
    targets = np.concatenate([np.asarray(x["target"]).ravel() for x, _ in batches])
    assert sorted(targets[targets >= 0].tolist()) == sorted(
        windows(h, 3)[1][windows(h, 3)[1] >= 0].tolist()
    )
    again = [np.asarray(x["window"]) for x, _ in stream.dataset(0)]
    np.testing.assert_array_equal(
        np.concatenate(again), np.concatenate([np.asarray(x["window"]) for x, _ in batches])
    )
    assert stream.dataset(0).options().autotune.enabled is False  # ncf.data.pipeline


def small_model(loss: str = "softmax", **kwargs) -> SequenceModel:
    keras.utils.set_random_seed(0)
    model = SequenceModel(NUM_USERS, NUM_ITEMS, embedding_dim=8, history_length=LENGTH, blocks=2,
                          heads=2, dropout=0.0, loss=loss, **kwargs)  # fmt: skip
    for weight in model.trainable_weights:  # away from the small initial weights
        weight.assign(np.random.default_rng(1).normal(0, 0.3, weight.shape).astype("float32"))
    model.set_histories(_histories().table(LENGTH))
    return model


def test_scoring_paths_agree_and_read_the_table():
    model = small_model()
    users = np.arange(NUM_USERS, dtype=np.int32)
    everything = np.asarray(model.score_all(users))
    table = np.asarray(model.histories)
    np.testing.assert_allclose(np.asarray(model.score_histories(table)), everything, atol=1e-5)
    items = np.array([[0, 3, 8]] * NUM_USERS, np.int32)
    np.testing.assert_allclose(
        np.asarray(model.score_items(users, items)), everything[:, [0, 3, 8]], atol=1e-5
    )
    pairs = np.asarray(model({"user": users, "item": np.full(NUM_USERS, 4, np.int32)}))
    np.testing.assert_allclose(pairs, everything[:, 4], atol=1e-5)
    # the last slot's output of the window in time order is the user's vector
    window = table[:, ::-1]
    np.testing.assert_allclose(
        np.asarray(model.encode(window))[:, -1], np.asarray(model.user_vectors(table)), atol=1e-5
    )


def test_training_loss_is_the_mean_cross_entropy_of_the_slots_with_targets():
    model = small_model()
    window, target = windows(_histories(), LENGTH)
    hidden = np.asarray(model.encode(window))
    logits = hidden.reshape(-1, 8) @ np.asarray(model.output_table()).T + np.asarray(
        model.item_bias
    )
    flat = target.ravel()
    rows = np.flatnonzero(flat >= 0)
    log_softmax = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    expected = -np.mean(log_softmax[rows, flat[rows]])
    got = float(
        model.compute_loss({"window": window, "target": target}, None, model.encode(window))
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_saved_model_keeps_its_table_and_scores(tmp_path):
    from ncf.models.scorer import load_keras_model

    model = small_model(loss="sampled_softmax", sampled_items=2)
    model.save(tmp_path / "model.keras")
    loaded = load_keras_model(tmp_path / "model.keras")
    users = np.arange(NUM_USERS, dtype=np.int32)
    np.testing.assert_array_equal(np.asarray(loaded.histories), np.asarray(model.histories))
    np.testing.assert_allclose(
        np.asarray(loaded.score_all(users)), np.asarray(model.score_all(users)), atol=1e-6
    )
    assert loaded.loss_name == "sampled_softmax" and loaded.num_blocks == 2


@pytest.mark.realdata
def test_note_counts_ml100k_validation_cases_tied_in_time(data_dir, monkeypatch):
    from collections import defaultdict

    from conftest import QUICKSTART

    from ncf.config import load_config
    from ncf.data.dataset import load_dataset
    from ncf.registry import family

    monkeypatch.setenv("NCF_DATA_DIR", str(data_dir))
    config = load_config(QUICKSTART.parent / "ml-100k" / "sequence.yaml")
    note = family("sequence").note(config, load_dataset(config))
    # the slow reference: each user's rows in (time, item id) order, from u.data itself
    rows = defaultdict(list)
    for line in (data_dir / "ml-100k" / "u.data").read_text().splitlines():
        user, item, _, ts = line.split("\t")
        rows[user].append((int(ts), int(item)))
    tied = 0
    for events in rows.values():
        events.sort()
        times = [ts for ts, _ in events]
        tied += times[-2] in (times[-1], times[-3])  # the validation case is the second last
    assert note is not None and note.startswith(f"note: {tied:,} of 943 validation cases (")
    assert "orders such ties by item id" in note
