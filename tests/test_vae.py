"""The item-set autoencoder: item sets, the multinomial loss and KL term by hand, the scoring
paths, order-freedom, the item-item term, the user stream, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ncf.config import TrainConfig, build_config
from ncf.data.item_sets import UserStream
from ncf.models.vae import VAEModel

NUM_USERS, NUM_ITEMS, LENGTH = 5, 9, 4
PAD = NUM_ITEMS
TABLE = np.array(
    [[1, 2, 3, PAD], [4, 4, PAD, PAD], [PAD] * LENGTH, [0, 8, 7, 6], [5, PAD, PAD, PAD]], np.int32
)


def small_model(**kwargs) -> VAEModel:
    keras.utils.set_random_seed(0)
    settings = {"hidden": 6, "latent": 3, "dropout": 0.0, "beta": 0.0, **kwargs}
    model = VAEModel(NUM_USERS, NUM_ITEMS, history_length=LENGTH, seed=2, **settings)
    rng = np.random.default_rng(1)
    for weight in model.trainable_weights:  # away from the initial weights (biases at 0)
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    model.set_histories(TABLE)
    return model


def reference_logits(model: VAEModel, rows: np.ndarray) -> np.ndarray:
    """The module docstring's formulas in numpy, without dropout or noise."""
    x = np.zeros((len(rows), NUM_ITEMS), np.float32)
    for b, row in enumerate(rows):
        x[b, [i for i in row if i < NUM_ITEMS]] = 1.0
    n = np.maximum(x.sum(1, keepdims=True), 1.0)

    def dense(layer, v):
        return v @ np.asarray(layer.kernel) + np.asarray(layer.bias)

    h = np.tanh(dense(model.encoder, x / np.sqrt(n)))
    g = dense(model.mean, h)
    if model.decoder is not None:
        g = np.tanh(dense(model.decoder, g))
    logits = dense(model.output_layer, g)
    if model.item_item_table is None:
        return logits

    def z(v):
        return (v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True)

    share = float(model.blend)
    return (1 - share) * z(x @ np.asarray(model.item_item_table)) + share * z(logits)


def test_item_sets_count_each_listed_item_once_and_skip_padding():
    model = small_model()
    present = np.asarray(model.present(TABLE))
    expected = np.zeros((NUM_USERS, NUM_ITEMS))
    for u, row in enumerate(TABLE):
        for i in row:
            if i < NUM_ITEMS:
                expected[u, i] = 1
    np.testing.assert_array_equal(present, expected)


@pytest.mark.parametrize("decoder_hidden", [True, False])
def test_scores_match_the_formulas_and_all_scoring_paths_agree(decoder_hidden):
    model = small_model(decoder_hidden=decoder_hidden)
    users = np.arange(NUM_USERS, dtype=np.int32)
    everything = np.asarray(model.score_all(users))
    np.testing.assert_allclose(everything, reference_logits(model, TABLE), atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.score_histories(TABLE)), everything, atol=1e-5)
    items = np.array([[0, 3, 8]] * NUM_USERS, np.int32)
    np.testing.assert_allclose(
        np.asarray(model.score_items(users, items)), everything[:, [0, 3, 8]], atol=1e-5
    )
    pairs = np.asarray(model({"user": users, "item": np.full(NUM_USERS, 4, np.int32)}))
    np.testing.assert_allclose(pairs, everything[:, 4], atol=1e-5)


def test_the_order_of_a_users_items_does_not_matter():
    model = small_model(beta=0.2)
    shuffled = np.array([row[np.random.default_rng(u).permutation(LENGTH)] for u, row in
                         enumerate(TABLE)])  # fmt: skip
    np.testing.assert_allclose(
        np.asarray(model.score_histories(shuffled)), np.asarray(model.score_histories(TABLE)),
        atol=1e-5,
    )  # fmt: skip


def test_loss_is_the_mean_multinomial_likelihood_of_the_real_users_item_sets():
    model = small_model()
    members = np.array([0, 3, 1, -1], np.int32)  # -1: the filler of a last batch
    logits = np.asarray(model({"members": members}, training=True))
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -np.mean(
        [sum(log_softmax[b, i] for i in set(TABLE[u]) if i < NUM_ITEMS)
         for b, u in enumerate(members[:3])]
    )  # fmt: skip
    got = float(model.compute_loss({"members": members}, None, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_kl_term_is_weighted_by_the_annealed_beta():
    model = small_model(beta=0.5, anneal_steps=10)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    members = np.array([0, 3], np.int32)
    hidden = np.tanh(
        (np.asarray(model.present(TABLE[members])) / np.sqrt([[3.0], [4.0]]))
        @ np.asarray(model.encoder.kernel) + np.asarray(model.encoder.bias)
    )  # fmt: skip
    mu = hidden @ np.asarray(model.mean.kernel) + np.asarray(model.mean.bias)
    log_var = hidden @ np.asarray(model.log_variance.kernel) + np.asarray(model.log_variance.bias)
    kl = np.mean(0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1))
    for steps, share in [(0, 0.0), (4, 0.4), (25, 1.0)]:
        model.optimizer.iterations.assign(steps)
        logits = model({"members": members}, training=False)
        base = VAEModel.compute_loss(model, {"members": members}, None, logits) - sum(
            float(np.sum(t)) for t in model.losses
        )
        total = float(model.compute_loss({"members": members}, None, logits))
        np.testing.assert_allclose(total - float(base), 0.5 * share * kl, rtol=1e-4, atol=1e-6)


def test_the_blend_with_ease_standardises_both_and_mixes_them_by_its_share():
    model = small_model(item_item=True)
    b = np.random.default_rng(3).normal(size=(NUM_ITEMS, NUM_ITEMS)).astype("float32")
    np.fill_diagonal(b, 0)
    model.set_item_item(b)
    users = np.array([0, 1, 3, 4], np.int32)  # (user 2 has no items: a constant row)
    for share in (0.0, 0.3, 1.0):
        model.set_blend(share)
        np.testing.assert_allclose(
            np.asarray(model.score_all(users)), reference_logits(model, TABLE[users]), atol=1e-4
        )
    with pytest.raises(ValueError, match="item-item weights must be"):
        model.set_item_item(b[:3])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        model.set_blend(1.5)
    with pytest.raises(ValueError, match="without an item-item term"):
        small_model().set_item_item(b)


def test_calibrate_keeps_the_share_validation_likes_best_and_reapplies_a_choice():
    from ncf.families.vae import calibrate

    model = small_model(item_item=True)
    tried = []

    def measure():
        tried.append(round(float(model.blend), 1))
        return -abs(float(model.blend) - 0.3)  # validation peaks at 0.3

    assert calibrate(model, measure, None) == {"blend": 0.3}
    assert tried == [i / 10 for i in range(11)] and round(float(model.blend), 6) == 0.3
    fresh = small_model(item_item=True)
    assert calibrate(fresh, lambda: float("nan"), {"blend": 0.3}) == {"blend": 0.3}
    assert round(float(fresh.blend), 6) == 0.3
    assert calibrate(small_model(), measure, None) == {}  # no blend: nothing to choose


def test_training_dropout_thins_the_input_but_not_the_target():
    model = small_model(dropout=0.5)
    present = np.ones((200, NUM_ITEMS), np.float32)
    thinned = np.asarray(model.thinned(present, training=True))
    assert set(np.unique(thinned)) <= {0.0, 2.0}
    assert 0.4 < (thinned == 0).mean() < 0.6
    np.testing.assert_array_equal(np.asarray(model.thinned(present, training=False)), present)


def test_user_stream_gives_every_user_with_items_once_an_epoch_in_one_shape():
    counts = np.array([3, 2, 0, 4, 1])
    stream = UserStream(counts, TrainConfig(batch_size=3, loss="softmax"), seed=7)
    assert stream.steps_per_epoch == 2 and stream.examples_per_epoch == 10
    batches = [np.asarray(x["members"]) for x, _ in stream.dataset(0)]
    assert all(b.shape == (3,) for b in batches)
    seen = np.concatenate(batches)
    assert sorted(seen[seen >= 0].tolist()) == [0, 1, 3, 4] and (seen == -1).sum() == 2
    again = np.concatenate([np.asarray(x["members"]) for x, _ in stream.dataset(0)])
    np.testing.assert_array_equal(again, seen)  # an epoch is a function of (seed, epoch)
    orders = {tuple(np.concatenate([np.asarray(x["members"]) for x, _ in stream.dataset(e)]))
              for e in range(6)}  # fmt: skip
    assert len(orders) > 1


def test_saved_model_keeps_its_tables_and_scores(tmp_path):
    from ncf.models.scorer import load_keras_model

    model = small_model(beta=0.2, item_item=True)
    model.set_item_item(np.eye(NUM_ITEMS, dtype=np.float32)[::-1].copy())
    model.set_blend(0.4)
    model.save(tmp_path / "model.keras")
    loaded = load_keras_model(tmp_path / "model.keras")
    users = np.arange(NUM_USERS, dtype=np.int32)
    np.testing.assert_array_equal(np.asarray(loaded.histories), TABLE)
    np.testing.assert_allclose(
        np.asarray(loaded.score_all(users)), np.asarray(model.score_all(users)), atol=1e-6
    )
    assert loaded.beta == 0.2 and loaded.item_item and round(float(loaded.blend), 6) == 0.4


def test_table_length_is_capped_by_the_longest_user():
    from types import SimpleNamespace

    from ncf.families.vae import table_length

    dataset = SimpleNamespace(
        interactions=SimpleNamespace(user=np.array([0, 0, 0, 1, 2])),
        split=SimpleNamespace(num_users=3),
    )
    config = build_config({"model": {"type": "vae", "vae": {"length": 2}}})
    assert table_length(config, dataset) == 2
    config = build_config({"model": {"type": "vae"}})
    assert table_length(config, dataset) == 3
