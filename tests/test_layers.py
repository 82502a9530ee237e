"""Each custom layer, the keras-rs way: hand-computed call, bad shape, config, save/reload."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from ncf.models.heads import DotHead, GMFHead, MLPBlock, MLPHead, NeuMFHead
from ncf.models.towers import Tower


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def f32(x: list) -> np.ndarray:
    return np.asarray(x, dtype="float32")


IDS = np.array([2, 0, 1], dtype="int32")
EMB = f32([[1, 2], [3, -4], [5, 6]])
FEATURES = f32([[1, 0, 0], [0, 1, 1], [1, 1, 0]])
U = f32([[1, 2], [3, 4]])
Q = f32([[5, 6], [7, -8]])


def _roundtrip(layer: keras.layers.Layer, inputs: list[np.ndarray], tmp_path: Path) -> None:
    """Serialize/deserialize keeps the config; save + load_model keeps the outputs."""
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()

    symbolic = [keras.Input(shape=x.shape[1:], dtype=x.dtype) for x in inputs]
    model = keras.Model(symbolic, layer(symbolic if len(symbolic) > 1 else symbolic[0]))
    expected = model.predict(inputs, verbose=0)
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), expected, rtol=1e-6)


def _set(variable: keras.Variable, value: list | np.ndarray) -> None:
    variable.assign(np.asarray(value, dtype="float32").reshape(variable.shape))


# -- Tower -------------------------------------------------------------------------------------


def test_tower_is_an_embedding_lookup() -> None:
    tower = Tower(num_ids=3, embedding_dim=2)
    tower.build((None,))
    _set(tower.embedding.embeddings, EMB)
    np.testing.assert_allclose(tower(IDS), EMB[[2, 0, 1]])
    assert tower.output_dim == 2


def test_tower_with_features_and_dense_layers() -> None:
    tower = Tower(num_ids=3, embedding_dim=2, hidden_layers=[2], num_features=3, features=FEATURES)
    tower.build((None,))
    w_f, b_f = f32([[1, 0], [0, 1], [1, 1]]), f32([0.5, -0.5])
    w_1, b_1 = f32([[1, 0], [0, 1], [-1, 1], [1, -1]]), f32([0.1, 0.2])
    _set(tower.embedding.embeddings, EMB)
    _set(tower.feature_projection.kernel, w_f)
    _set(tower.feature_projection.bias, b_f)
    _set(tower.dense_layers[0].kernel, w_1)
    _set(tower.dense_layers[0].bias, b_1)
    x = np.concatenate([EMB[IDS], FEATURES[IDS] @ w_f + b_f], axis=1)  # [3, 4]
    np.testing.assert_allclose(tower(IDS), relu(x @ w_1 + b_1), rtol=1e-6)


def test_tower_features_without_dense_layers_keep_embedding_dim() -> None:
    tower = Tower(num_ids=3, embedding_dim=2, features=FEATURES)
    assert tower(IDS).shape == (3, 2)
    assert tower.output_dim == 2


def test_tower_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        Tower(num_ids=3, embedding_dim=2)(IDS[:, None])
    with pytest.raises(ValueError, match="num_ids=3"):
        Tower(num_ids=3, embedding_dim=2, features=FEATURES[:2])


def test_tower_l2_is_a_penalty_on_the_looked_up_rows() -> None:
    tower = Tower(num_ids=3, embedding_dim=2, l2_embedding=0.1)
    tower.build((None,))
    _set(tower.embedding.embeddings, EMB)
    assert not tower.losses  # nothing on the whole table
    ids = np.array([2, 0, 2], dtype="int32")
    output, rows = tower.embed(ids)
    np.testing.assert_allclose(rows, EMB[ids])
    np.testing.assert_allclose(output, tower(ids))
    np.testing.assert_allclose(tower.penalty(rows), 0.1 * np.sum(EMB[ids] ** 2, axis=1), rtol=1e-6)
    assert Tower(num_ids=3, embedding_dim=2).penalty(rows) is None


def test_tower_roundtrip_keeps_side_features(tmp_path: Path) -> None:
    tower = Tower(3, 2, hidden_layers=[4], dropout=0.2, l2_dense=0.01, features=FEATURES)
    assert "features" not in tower.get_config()
    _roundtrip(tower, [IDS], tmp_path)


# -- DotHead (mf) ------------------------------------------------------------------------------


def _dot_head() -> DotHead:
    head = DotHead()
    head.build([(None, 2), (None, 2), (None,), (None,)])
    _set(head.global_bias, 0.5)
    return head


def test_dot_head_matches_hand_computation() -> None:
    b_u, b_i = f32([0.1, 0.2]), f32([0.3, 0.4])
    out = _dot_head()([U, Q, b_u, b_i])
    # 1*5 + 2*6 + 0.1 + 0.3 + 0.5 ;  3*7 - 4*8 + 0.2 + 0.4 + 0.5
    np.testing.assert_allclose(out, [17.9, -9.9], rtol=1e-6)


def test_dot_head_score_matrix() -> None:
    b_u, b_i = f32([0.1, 0.2]), f32([0.3, 0.4])
    expected = U @ Q.T + b_u[:, None] + b_i[None, :] + 0.5
    np.testing.assert_allclose(_dot_head().score_matrix([U, Q, b_u, b_i]), expected, rtol=1e-6)


def test_dot_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="one size"):
        DotHead()([U, f32([[1, 2, 3], [4, 5, 6]]), f32([0, 0]), f32([0, 0])])
    with pytest.raises(ValueError):
        DotHead()([U, Q])


def test_dot_head_roundtrip(tmp_path: Path) -> None:
    _roundtrip(DotHead(), [U, Q, f32([0.1, 0.2]), f32([0.3, 0.4])], tmp_path)


# -- GMFHead -----------------------------------------------------------------------------------


def _gmf_head() -> GMFHead:
    head = GMFHead()
    head.build([(None, 2), (None, 2)])
    _set(head.output_layer.kernel, [0.5, -1.0])
    _set(head.output_layer.bias, [0.25])
    return head


def test_gmf_head_matches_hand_computation() -> None:
    # h^T (p ⊙ q) + b: 0.5*5 - 1*12 + 0.25 ;  0.5*21 - 1*(-32) + 0.25
    np.testing.assert_allclose(_gmf_head()([U, Q]), [-9.25, 42.75], rtol=1e-6)


def test_gmf_head_score_matrix() -> None:
    h = f32([0.5, -1.0])
    np.testing.assert_allclose(_gmf_head().score_matrix([U, Q]), (U * h) @ Q.T + 0.25, rtol=1e-6)


def test_gmf_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="one size"):
        GMFHead()([U, f32([[1], [2]])])
    with pytest.raises(ValueError, match="batch, dim"):
        GMFHead()([U[None], Q[None]])


def test_gmf_head_roundtrip(tmp_path: Path) -> None:
    _roundtrip(GMFHead(l2_dense=0.01), [U, Q], tmp_path)


# -- MLPBlock / MLPHead ------------------------------------------------------------------------

W1, B1 = f32([[1, 0], [0, 1], [1, -1], [0.5, 0.5]]), f32([0.1, -0.2])
H_MLP, B_MLP = f32([2.0, -1.0]), f32([0.3])


def _mlp_head() -> MLPHead:
    head = MLPHead([2])
    head.build([(None, 2), (None, 2)])
    _set(head.dense_layers[0].kernel, W1)
    _set(head.dense_layers[0].bias, B1)
    _set(head.output_layer.kernel, H_MLP)
    _set(head.output_layer.bias, B_MLP)
    return head


def _mlp_by_hand(p: np.ndarray, q: np.ndarray) -> float:
    z = relu(np.concatenate([p, q]) @ W1 + B1)
    return float(z @ H_MLP + B_MLP[0])


def test_mlp_head_matches_hand_computation() -> None:
    # row 0: z = relu([1,2,5,6] W1 + b1) = relu([9.1, -0.2]) -> 2*9.1 - 1*0 + 0.3 = 18.5
    np.testing.assert_allclose(_mlp_head()([U, Q]), [18.5, _mlp_by_hand(U[1], Q[1])], rtol=1e-6)


def test_mlp_head_score_matrix_splits_the_first_layer() -> None:
    expected = np.array([[_mlp_by_hand(p, q) for q in Q] for p in U])
    np.testing.assert_allclose(_mlp_head().score_matrix([U, Q]), expected, rtol=1e-6)


def test_mlp_block_without_layers_is_the_concatenation() -> None:
    block = MLPBlock([])
    np.testing.assert_allclose(block([U, Q]), np.concatenate([U, Q], axis=1))
    pairs = np.asarray(block.score_matrix([U, Q]))
    assert pairs.shape == (2, 2, 4)
    np.testing.assert_allclose(pairs[0, 1], np.concatenate([U[0], Q[1]]))


def test_mlp_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="list of 2"):
        MLPHead([2])([U, Q, U])
    with pytest.raises(ValueError, match="batch, dim"):
        MLPHead([2])([U[None], Q[None]])


def test_mlp_head_roundtrip(tmp_path: Path) -> None:
    head = MLPHead([4, 2], dropout=0.1, l2_dense=0.01)
    assert MLPHead.from_config(head.get_config()).get_config() == head.get_config()
    _roundtrip(head, [U, Q], tmp_path)
    _roundtrip(MLPBlock([3]), [U, Q], tmp_path)


# -- NeuMFHead ---------------------------------------------------------------------------------

H_NEUMF, B_NEUMF = f32([1.0, -0.5, 0.25, 2.0]), f32([-0.1])  # [h_gmf (2) ; h_mlp (2)]


def _neumf_head() -> NeuMFHead:
    head = NeuMFHead([2])
    head.build([(None, 2), (None, 2), (None, 2), (None, 2)])
    _set(head.mlp.dense_layers[0].kernel, W1)
    _set(head.mlp.dense_layers[0].bias, B1)
    _set(head.output_layer.kernel, H_NEUMF)
    _set(head.output_layer.bias, B_NEUMF)
    return head


def _neumf_by_hand(p_g: np.ndarray, q_g: np.ndarray, p_m: np.ndarray, q_m: np.ndarray) -> float:
    z = relu(np.concatenate([p_m, q_m]) @ W1 + B1)
    return float(np.concatenate([p_g * q_g, z]) @ H_NEUMF + B_NEUMF[0])


def test_neumf_head_matches_hand_computation() -> None:
    p_m, q_m = U[::-1].copy(), Q[::-1].copy()
    # row 0: gmf = [5, 12] -> 5 - 6 = -1; z = relu([3,4,7,-8] W1 + b1) = relu([6.1, -0.2])
    #        -> 0.25*6.1 + 2*0 = 1.525; total -1 + 1.525 - 0.1 = 0.425
    out = _neumf_head()([U, Q, p_m, q_m])
    np.testing.assert_allclose(out, [0.425, _neumf_by_hand(U[1], Q[1], p_m[1], q_m[1])], rtol=1e-6)


def test_neumf_head_score_matrix() -> None:
    p_m, q_m = U[::-1].copy(), Q[::-1].copy()
    expected = [[_neumf_by_hand(U[a], Q[b], p_m[a], q_m[b]) for b in range(2)] for a in range(2)]
    out = _neumf_head().score_matrix([U, Q, p_m, q_m])
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_neumf_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="p_gmf"):
        NeuMFHead([2])([U, Q, U])
    with pytest.raises(ValueError, match="one size"):
        NeuMFHead([2])([U, f32([[1], [2]]), U, Q])


def test_neumf_head_roundtrip(tmp_path: Path) -> None:
    head = NeuMFHead([4, 2], dropout=0.1)
    assert NeuMFHead.from_config(head.get_config()).get_config() == head.get_config()
    _roundtrip(head, [U, Q, U, Q], tmp_path)
