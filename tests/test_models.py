"""The assembled model: scoring paths, save/load, losses by hand, fit, pretrained NeuMF, optim."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from ncf.config import ModelConfig, TrainConfig
from ncf.families.towers import ncf_model as build_model
from ncf.models import (
    NCFModel,
    init_neumf_from_pretrained,
    learning_rate_from_config,
    optimizer_from_config,
)

HEADS = ["mf", "gmf", "mlp", "neumf"]
NUM_USERS, NUM_ITEMS = 6, 8
USERS = np.array([0, 3, 5, 1], dtype="int32")
ITEMS = np.array([2, 7, 0, 4], dtype="int32")
RNG = np.random.default_rng(0)
USER_FEATURES = RNG.random((NUM_USERS, 3)).astype("float32")
ITEM_FEATURES = (RNG.random((NUM_ITEMS, 5)) > 0.5).astype("float32")


def tiny(head: str, **overrides: object) -> ModelConfig:
    return ModelConfig(**{"type": head, "embedding_dim": 4, "mlp_layers": [8, 4, 2], **overrides})


def model_for(
    head: str, loss: str = "bce", features: bool = False, **overrides: object
) -> NCFModel:
    config = tiny(head, user_features=features, item_features=features, **overrides)
    model = build_model(config, NUM_USERS, NUM_ITEMS, USER_FEATURES, ITEM_FEATURES, loss=loss)
    for weight in model.trainable_weights:  # away from the N(0, 0.01) init, so scores differ
        weight.assign(RNG.normal(0.0, 0.5, weight.shape).astype("float32"))
    return model


def scores(model: keras.Model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.asarray(model({"user": users, "item": items}))


# -- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("features", [False, True])
def test_score_items_and_score_all_equal_the_pairwise_call(head: str, features: bool) -> None:
    model = model_for(head, features=features, tower_layers=[4] if features else [])
    out = scores(model, USERS, ITEMS)
    assert out.shape == (4,) and out.dtype == np.float32
    candidates = RNG.integers(0, NUM_ITEMS, (4, 3)).astype("int32")
    expected = scores(model, np.repeat(USERS, 3), candidates.reshape(-1)).reshape(4, 3)
    np.testing.assert_allclose(model.score_items(USERS, candidates), expected, rtol=1e-5, atol=1e-6)
    all_items = np.tile(np.arange(NUM_ITEMS, dtype="int32"), 4)
    expected = scores(model, np.repeat(USERS, NUM_ITEMS), all_items).reshape(4, NUM_ITEMS)
    np.testing.assert_allclose(model.score_all(USERS), expected, rtol=1e-5, atol=1e-5)
    model.max_pair_elements = 4 * 3 * 4  # mlp/neumf: chunks of 3 items
    np.testing.assert_allclose(model.score_all(USERS), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head", HEADS)
def test_item_embeddings(head: str) -> None:
    model = model_for(head)
    width = {"mf": 4, "gmf": 4, "mlp": 4, "neumf": 8}[head]
    vectors = model.item_embeddings()
    assert vectors.shape == (NUM_ITEMS, width)
    np.testing.assert_allclose(vectors[:, :4], model.item_towers[0](np.arange(NUM_ITEMS)))


def test_bad_inputs_raise_value_error() -> None:
    model = model_for("gmf")
    with pytest.raises(ValueError, match="user"):
        model(USERS)
    with pytest.raises(ValueError, match="items"):
        model.score_items(USERS, ITEMS)
    with pytest.raises(ValueError, match="users"):
        model.score_all(USERS[:, None])
    with pytest.raises(ValueError, match="head must be one of"):
        build_model(ModelConfig(type="itemknn"), NUM_USERS, NUM_ITEMS)
    with pytest.raises(ValueError, match="loss"):
        build_model(tiny("mf"), NUM_USERS, NUM_ITEMS, loss="hinge")


def test_features_follow_the_config_flags() -> None:
    plain = build_model(tiny("gmf"), NUM_USERS, NUM_ITEMS, USER_FEATURES, ITEM_FEATURES)
    assert plain.num_user_features == plain.num_item_features == 0
    joined = build_model(tiny("gmf", item_features=True), NUM_USERS, NUM_ITEMS, None, ITEM_FEATURES)
    assert (joined.num_user_features, joined.num_item_features) == (0, 5)


# -- serialization -----------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_save_and_load_give_identical_outputs(head: str, tmp_path: Path) -> None:
    loss = "bpr" if head == "mf" else "bce"
    model = model_for(head, loss=loss, features=True, tower_layers=[4], l2_embedding=1e-3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, NCFModel) and loaded.loss_name == loss
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(scores(loaded, USERS, ITEMS), scores(model, USERS, ITEMS))
    np.testing.assert_allclose(loaded.score_all(USERS), model.score_all(USERS), rtol=1e-6)


def test_config_roundtrip() -> None:
    model = model_for("neumf", features=True, dropout=0.1)
    config = model.get_config()
    assert "user_features" not in config  # the matrices travel as weights, not config
    clone = NCFModel.from_config(config)
    assert clone.get_config() == config
    assert clone.head_type == "neumf" and clone.dropout == 0.1
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


LEGACY = Path(__file__).parent / "data" / "legacy-0.1.0"


@pytest.mark.parametrize("head", HEADS)
def test_models_saved_by_ncf_0_1_0_still_load(head: str) -> None:
    """``tests/data/legacy-0.1.0`` was written by ncf 0.1.0, whose NCFModel stored the whole
    ModelConfig in its config; the scores are those that version computed."""
    import json
    import warnings

    from ncf.models.scorer import load_keras_model

    expected = json.loads((LEGACY / "expected_scores.json").read_text())[head]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = load_keras_model(LEGACY / f"{head}.keras")
    assert model.head_type == head and model.mlp_layers == [8, 4]
    got = model.score_all(np.arange(7, dtype=np.int32))
    np.testing.assert_allclose(got, np.array(expected, np.float32), atol=1e-5)


# -- losses ------------------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_bce_loss_by_hand() -> None:
    model = model_for("gmf")
    labels = np.array([1, 0, 1, 0], dtype="float32")
    x = {"user": USERS, "item": ITEMS}
    s = scores(model, USERS, ITEMS)
    expected = -np.mean(labels * np.log(sigmoid(s)) + (1 - labels) * np.log(1 - sigmoid(s)))
    loss = model.compute_loss(x, labels, model(x), training=False)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_bpr_loss_by_hand() -> None:
    model = model_for("neumf", loss="bpr")
    negatives = np.array([1, 1, 6, 3], dtype="int32")
    x = {"user": USERS, "item": ITEMS, "negative_item": negatives}
    diff = scores(model, USERS, ITEMS) - scores(model, USERS, negatives)
    expected = np.mean(-np.log(sigmoid(diff)))
    loss = model.compute_loss(x, np.zeros(4, "float32"), model(x), training=False)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="negative_item"):
        model.compute_loss({"user": USERS, "item": ITEMS}, None, model(x))


def _tables(model: NCFModel) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The user-side and item-side embedding tables (biases included), as arrays."""
    user = [np.asarray(t.embedding.embeddings) for t in model.user_towers]
    item = [np.asarray(t.embedding.embeddings) for t in model.item_towers]
    if model.user_bias is not None and model.item_bias is not None:
        user.append(np.asarray(model.user_bias.embeddings))
        item.append(np.asarray(model.item_bias.embeddings))
    return user, item


@pytest.mark.parametrize("head, loss", [("mf", "bce"), ("neumf", "bpr"), ("gmf", "bce")])
def test_l2_embedding_is_per_example_on_the_rows_looked_up(head: str, loss: str) -> None:
    model = model_for(head, loss=loss, l2_embedding=0.01)
    plain = model_for(head, loss=loss)
    plain.set_weights(model.get_weights())
    x = {"user": USERS, "item": ITEMS}
    if loss == "bpr":
        x["negative_item"] = np.array([1, 1, 6, 3], dtype="int32")
    user_tables, item_tables = _tables(model)
    by_hand = []
    for b in range(len(USERS)):  # every row example b looks up, squared, summed
        rows = [t[USERS[b]] for t in user_tables]
        rows += [t[x[key][b]] for t in item_tables for key in ("item", "negative_item") if key in x]
        by_hand.append(0.01 * sum(float(np.sum(r**2)) for r in rows))
    y = np.array([1, 0, 1, 0], "float32")
    data_loss = float(plain.compute_loss(x, y, plain(x, training=True)))
    got = float(model.compute_loss(x, y, model(x, training=True)))
    np.testing.assert_allclose(got, data_loss + np.mean(by_hand), rtol=1e-5)
    model(x)  # an inference call adds no penalty, and nothing is a whole-table penalty
    assert not model.losses and not plain.losses


def test_l2_embedding_gradient_has_one_row_per_example_and_only_those_rows() -> None:
    import tensorflow as tf

    model = model_for("gmf", l2_embedding=0.1)
    users = np.array([1, 1, 4], dtype="int32")
    x, y = {"user": users, "item": np.array([0, 2, 2], dtype="int32")}, np.zeros(3, "float32")
    table = model.user_towers[0].embedding.embeddings
    with tf.GradientTape() as tape:
        model(x, training=True)
        penalty = tf.add_n(model.losses)
    penalty_gradient = tape.gradient(penalty, table)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True))
    gradient = tape.gradient(loss, table)
    # sparse, and the penalty reuses the forward pass's lookup: one gradient row per example
    assert isinstance(gradient, tf.IndexedSlices) and gradient.indices.shape[0] == len(users)
    dense = tf.convert_to_tensor(penalty_gradient).numpy()
    expected = np.zeros_like(dense)
    for u in users:  # d/dE_u of 0.1 * mean_b |E_{u_b}|^2 = 0.2 / B per occurrence
        expected[u] += 0.2 / len(users) * np.asarray(table)[u]
    np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-8)


def test_l2_dense_is_a_keras_weight_penalty() -> None:
    model = model_for("mlp", l2_dense=0.01)
    kernels = [layer.kernel for layer in model.head.dense_layers] + [model.head.output_layer.kernel]
    penalty = 0.01 * sum(float(np.sum(np.asarray(k) ** 2)) for k in kernels)
    np.testing.assert_allclose(sum(float(p) for p in model.losses), penalty, rtol=1e-5)


# -- training ----------------------------------------------------------------------------------


def checkerboard(loss: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Users 0-2 like items 0-3, users 3-5 like items 4-7: every pair, or (pos, neg) triples."""
    users, items = np.meshgrid(np.arange(NUM_USERS), np.arange(NUM_ITEMS), indexing="ij")
    users, items = users.ravel().astype("int32"), items.ravel().astype("int32")
    labels = ((users < 3) == (items < 4)).astype("float32")
    if loss == "bce":
        return {"user": users, "item": items}, labels
    pos, neg = labels == 1, labels == 0
    n = pos.sum()
    negatives = np.roll(items[neg], 7)[:n] if neg.sum() >= n else items[neg][:n]
    negatives = np.where((users[pos] < 3) == (negatives < 4), (negatives + 4) % 8, negatives)
    x = {"user": users[pos], "item": items[pos], "negative_item": negatives.astype("int32")}
    return x, np.zeros(n, "float32")


@pytest.mark.parametrize("loss", ["bce", "bpr"])
@pytest.mark.parametrize("head", HEADS)
def test_fit_reduces_the_loss(head: str, loss: str) -> None:
    keras.utils.set_random_seed(1)
    config = tiny(head, mlp_layers=[8, 8], l2_embedding=1e-4, l2_dense=1e-4)  # no 2-wide bottleneck
    model = build_model(config, NUM_USERS, NUM_ITEMS, loss=loss)
    model.compile(optimizer=keras.optimizers.Adam(0.05), steps_per_execution=8)
    x, y = checkerboard(loss)
    history = model.fit(x, y, batch_size=8, epochs=8, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    if loss == "bpr":
        assert (
            float(
                np.mean(
                    scores(model, x["user"], x["item"])
                    > scores(model, x["user"], x["negative_item"])
                )
            )
            > 0.9
        )


# -- pretrained NeuMF --------------------------------------------------------------------------


def test_pretrained_neumf_is_the_alpha_blend_of_gmf_and_mlp() -> None:
    gmf, mlp, neumf = (
        model_for("gmf", features=True),
        model_for("mlp", features=True),
        model_for("neumf", features=True),
    )
    init_neumf_from_pretrained(neumf, gmf, mlp, alpha=0.3)
    expected = 0.3 * scores(gmf, USERS, ITEMS) + 0.7 * scores(mlp, USERS, ITEMS)
    np.testing.assert_allclose(scores(neumf, USERS, ITEMS), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(neumf.item_towers[0].side_features, ITEM_FEATURES)


def test_pretrained_shape_mismatch_names_the_part() -> None:
    neumf = model_for("neumf")
    gmf_wide = build_model(ModelConfig(type="gmf", embedding_dim=6), NUM_USERS, NUM_ITEMS)
    before = [np.asarray(w) for w in neumf.weights]
    with pytest.raises(ValueError, match="user GMF tower"):
        init_neumf_from_pretrained(neumf, gmf_wide, model_for("mlp"), alpha=0.5)
    mlp_deep = build_model(tiny("mlp", mlp_layers=[8, 4, 2, 2]), NUM_USERS, NUM_ITEMS)
    with pytest.raises(ValueError, match="MLP layers"):
        init_neumf_from_pretrained(neumf, model_for("gmf"), mlp_deep, alpha=0.5)
    with pytest.raises(ValueError, match="type 'mlp'"):
        init_neumf_from_pretrained(neumf, model_for("gmf"), model_for("gmf"), alpha=0.5)
    for old, new in zip(before, neumf.weights, strict=True):
        np.testing.assert_array_equal(old, new)


# -- optimiser ---------------------------------------------------------------------------------


def test_constant_schedule_and_optimizer_types() -> None:
    train = TrainConfig(learning_rate=0.01)
    assert learning_rate_from_config(train, steps_per_epoch=10) == 0.01
    for name, sparse, dense in [
        ("adam", "LazyAdam", "Adam"),
        ("sgd", "SGD", "SGD"),
        ("adagrad", "SparseAdagrad", "Adagrad"),
        ("rmsprop", "RMSprop", "RMSprop"),
    ]:
        optimizer = optimizer_from_config(TrainConfig(optimizer=name, learning_rate=0.01), 10)
        assert type(optimizer).__name__ == sparse
        np.testing.assert_allclose(optimizer.learning_rate, 0.01)
        config = TrainConfig(optimizer=name, learning_rate=0.01, sparse_updates=False)
        assert type(optimizer_from_config(config, 10)).__name__ == dense
    with pytest.raises(ValueError, match="steps_per_epoch"):
        optimizer_from_config(train, 0)


def test_exponential_schedule_decays_once_per_epoch() -> None:
    train = TrainConfig(learning_rate=0.1, lr_schedule="exponential", lr_decay_rate=0.5)
    schedule = learning_rate_from_config(train, steps_per_epoch=10)
    got = [float(schedule(step)) for step in (0, 9, 10, 25)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.025], rtol=1e-6)


def test_the_epoch_length_of_a_schedule_can_change_after_compiling() -> None:
    from ncf.models.optim import set_steps_per_epoch

    train = TrainConfig(learning_rate=0.1, lr_schedule="exponential", lr_decay_rate=0.5)
    optimizer = optimizer_from_config(train, steps_per_epoch=10)
    schedule = optimizer._learning_rate
    set_steps_per_epoch(optimizer, 4)  # e.g. the refit: more data, another epoch length
    np.testing.assert_allclose([float(schedule(s)) for s in (3, 4, 9)], [0.1, 0.05, 0.025])
    assert schedule.get_config()["steps_per_epoch"] == 4
    with pytest.raises(ValueError, match="steps_per_epoch"):
        set_steps_per_epoch(optimizer, 0)


def test_cosine_schedule_reaches_zero_after_all_epochs() -> None:
    train = TrainConfig(learning_rate=0.1, lr_schedule="cosine", epochs=4)
    schedule = learning_rate_from_config(train, steps_per_epoch=25)  # T = 100 steps
    got = [float(schedule(step)) for step in (0, 25, 50, 100, 150)]
    expected = [0.1 * (1 + np.cos(np.pi * t / 100)) / 2 for t in (0, 25, 50, 100, 100)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
