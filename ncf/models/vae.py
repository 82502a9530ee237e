"""An autoencoder over the user's whole item set, scored by a softmax over the catalogue.

``model.type: vae`` (Mult-VAE / Mult-DAE, Liang et al. 2018): the user is the set of items
they interacted with, with no order and no row of parameters per user. For the user's items
``x`` (a 0/1 vector over the ``N`` items; ``n`` of them)::

    x~    = x ⊙ m / sqrt(n) / (1 - p)            m: each item kept with probability 1 - p
    h     = tanh(x~ W_1 + c_1)                  [H]
    mu    = h W_mu + c_mu,   log s^2 = h W_s + c_s      [d]
    z     = mu + s ⊙ e,  e ~ N(0, I)    (training with beta > 0; otherwise z = mu)
    g     = tanh(z W_2 + c_2)                   [H]  (decoder_hidden; else g = z)
    s(u, i) = g W_out[:, i] + b_i  (+ a (x' B)_i with an item-item term)

The loss of a batch of users is the multinomial log-likelihood of their whole item set,
``-Σ_i x_i log softmax(s(u))_i``, averaged over the users, plus ``beta_t`` times the KL
divergence of ``N(mu, s^2)`` from ``N(0, I)``, where ``beta_t`` grows linearly from 0 to
``beta`` over ``anneal_steps`` optimiser steps (KL annealing). ``beta = 0`` is the
denoising autoencoder (Mult-DAE): no variance head, no noise. In training the input is the
user's items with dropout ``p``, the target all of them; scoring reads every item.

With ``item_item`` the model also holds EASE's closed form ``B`` ``[N, N]`` (Steck 2019),
fitted on the data the phase fits on (:meth:`set_item_item`; fixed, saved with the model),
and scores a blend of the two, each standardised over the user's row of scores::

    score(u) = (1 - m) z(x B) + m z(s(u))      z(v) = (v - mean v) / sd v

The autoencoder trains alone (``m`` does not enter its loss); ``m`` is then chosen on
validation (:func:`ncf.families.vae.calibrate`: a grid over ``[0, 1]``, 0 is EASE alone,
1 the autoencoder alone). Two good models that err differently rank better together, and
the validation split decides how much of each.

Both large products run as dense matrix multiplies: the ``[B, N]`` item-set matrix (built
from the user's id list by a scatter) times ``W_1`` ``[N, H]``, and ``g`` times ``W_out``
``[H, N]``. Like the history and sequence towers the model holds ``histories``
``[num_users, L]`` (each user's items, most recent first, padded with ``N``), which the
training phase fills from the data it fits on; :meth:`score_histories` scores anyone given
by a list of items, so serving reuses the pooled-history servable.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ncf.models.losses import per_replica_share
from ncf.models.philox import normal, uniform
from ncf.models.tables import assign_table


def _standardised(scores: Any) -> Any:
    """Each row of ``scores`` ``[B, N]`` less its mean, over its standard deviation."""
    centred = scores - ops.mean(scores, axis=1, keepdims=True)
    return centred / (ops.sqrt(ops.mean(ops.square(centred), axis=1, keepdims=True)) + 1e-6)


def _dense(units: int, inputs: int, seed: int, name: str) -> keras.layers.Dense:
    layer = keras.layers.Dense(
        units, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name=name
    )
    layer.build((None, inputs))
    return layer


@keras.saving.register_keras_serializable(package="ncf")
class VAEModel(keras.Model):
    """Scores every item for users given by their item sets (see the module docstring).

    Args:
        num_users: int. Rows of the item-set table.
        num_items: int. ``N``; also the padding id.
        history_length: int. ``L``: items of a user read (the latest, where they have more).
        hidden: int. ``H``, the encoder's hidden width.
        latent: int. ``d``.
        decoder_hidden: bool. A hidden tanh layer of width ``H`` in the decoder too.
        dropout: float. ``p``: probability that an input item is dropped in training.
        beta: float. The KL term's final weight (0: the denoising autoencoder).
        anneal_steps: int. Optimiser steps over which the KL weight grows to ``beta``.
        item_item: bool. Score the blend with EASE's ``B`` (:meth:`set_item_item`, :meth:`set_blend`).
        seed: int. Seed of the initial weights, the dropout and the noise.
        **kwargs: base model arguments (``name``).

    Example:

    ```python
    model = VAEModel(num_users=943, num_items=1682, history_length=737)
    model.set_histories(table)  # [943, 737] int32, padded with 1682
    top = keras.ops.top_k(model.score_all(np.arange(10, dtype="int32")), k=10)
    ```
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        history_length: int = 1000,
        hidden: int = 600,
        latent: int = 200,
        decoder_hidden: bool = True,
        dropout: float = 0.5,
        beta: float = 0.2,
        anneal_steps: int = 2000,
        item_item: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.history_length, self.hidden, self.latent = (
            int(history_length),
            int(hidden),
            int(latent),
        )
        self.decoder_hidden, self.dropout = bool(decoder_hidden), float(dropout)
        self.beta, self.anneal_steps, self.seed = float(beta), int(anneal_steps), int(seed)
        self.item_item = bool(item_item)
        width = self.hidden if self.decoder_hidden else self.latent
        self.encoder = _dense(self.hidden, self.num_items, self.seed, "encoder")
        self.mean = _dense(self.latent, self.hidden, self.seed + 1, "mean")
        self.log_variance = (
            _dense(self.latent, self.hidden, self.seed + 2, "log_variance") if self.beta else None
        )
        self.decoder = (
            _dense(self.hidden, self.latent, self.seed + 3, "decoder")
            if self.decoder_hidden
            else None
        )
        self.output_layer = _dense(self.num_items, width, self.seed + 4, "item_output")
        self.histories = self.add_weight(
            shape=(self.num_users, self.history_length),
            initializer=keras.initializers.Constant(self.num_items),
            dtype="int32",
            trainable=False,
            name="histories",
        )
        self.item_item_table = None
        if self.item_item:
            self.item_item_table = self.add_weight(
                shape=(self.num_items, self.num_items),
                initializer="zeros",
                trainable=False,
                name="item_item",
            )
            self.blend = self.add_weight(
                shape=(), initializer="ones", trainable=False, name="blend"
            )
        self.generator = keras.random.SeedGenerator(self.seed + 5, name="generator")
        self.built = True

    # -- the data this model reads ---------------------------------------------------------------

    def set_histories(self, table: np.ndarray) -> None:
        """Serve users from ``table`` ``[num_users, L]`` (their items, padded with ``N``)."""
        assign_table(self.histories, table, "item-set table")

    def set_item_item(self, weights: np.ndarray) -> None:
        """``B`` ``[N, N]`` of the blend (EASE's closed form on the fit-on data)."""
        if self.item_item_table is None:
            raise ValueError("this model was built without an item-item term (item_item=False)")
        weights = np.asarray(weights, np.float32)
        if weights.shape != (self.num_items, self.num_items):
            raise ValueError(
                f"item-item weights must be {(self.num_items,) * 2}, got {weights.shape}"
            )
        self.item_item_table.assign(weights)

    def set_blend(self, share: float) -> None:
        """``m``: the autoencoder's share of the blend, in ``[0, 1]``."""
        if self.item_item_table is None:
            raise ValueError("this model was built without an item-item term (item_item=False)")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the blend's share must be in [0, 1], got {share}")
        self.blend.assign(float(share))

    def history_of(self, users: Any) -> Any:
        return ops.take(self.histories, ops.cast(users, "int32"), axis=0)  # [B, L]

    # -- the autoencoder -------------------------------------------------------------------------

    def present(self, history: Any) -> Any:
        """``x`` ``[B, N]``: 1 where the id list ``[B, L]`` holds the item (``N`` = padding;
        an item listed twice counts once)."""
        history = ops.cast(history, "int32")
        batch, length = ops.shape(history)[0], ops.shape(history)[1]
        rows = ops.repeat(ops.arange(batch, dtype="int32")[:, None], length, axis=1)
        where = ops.reshape(ops.stack([rows, history], axis=-1), (-1, 2))
        ones = ops.ones((batch * length,), "float32")
        counts = ops.scatter(where, ones, (batch, self.num_items + 1))[:, : self.num_items]
        return ops.minimum(counts, 1.0)

    def thinned(self, present: Any, training: bool = False) -> Any:
        """In training, the item sets ``[B, N]`` with each item dropped with probability
        ``p`` and the rest scaled by ``1 / (1 - p)``; otherwise themselves."""
        if not training or self.dropout <= 0:
            return present
        keep = uniform(ops.shape(present), self.generator) >= self.dropout  # (XLA: Philox)
        return present * ops.cast(keep, "float32") / (1.0 - self.dropout)

    def encode(self, present: Any, thinned: Any) -> tuple[Any, Any]:
        """``mu``, ``log s^2`` ``[B, d]`` of item sets ``[B, N]`` (their 0/1 rows and the
        thinned ones, normalised by the full set's size; ``log s^2`` None when ``beta`` is
        0)."""
        norm = ops.sqrt(ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0))
        hidden = ops.tanh(self.encoder(thinned / norm))
        log_variance = None if self.log_variance is None else self.log_variance(hidden)
        return self.mean(hidden), log_variance

    def decode(self, z: Any) -> Any:
        """Logits ``[B, N]`` of latent vectors ``[B, d]``."""
        if self.decoder is not None:
            z = ops.tanh(self.decoder(z))
        return self.output_layer(z)

    def score_histories(self, history: Any) -> Any:
        """Scores of every item for users given by their items ``[B, L]`` (anyone)."""
        present = self.present(history)
        mu, _ = self.encode(present, present)
        logits = self.decode(mu)
        if self.item_item_table is None:
            return logits
        closed_form = ops.matmul(present, self.item_item_table)
        return (1.0 - self.blend) * _standardised(closed_form) + self.blend * _standardised(logits)

    # -- the evaluator's and the server's questions ---------------------------------------------

    def call(self, inputs: dict[str, Any], training: bool | None = None) -> Any:
        """Training batches ``{"members"}`` (user ids): their logits ``[B, N]``; otherwise the
        scores ``[B]`` of the pairs ``inputs["user"], inputs["item"]``."""
        if not isinstance(inputs, dict):
            raise ValueError('VAEModel expects a dict: {"members"} or {"user", "item"}')
        if "members" in inputs:
            return self._training_logits(inputs["members"], bool(training))
        if "user" not in inputs or "item" not in inputs:
            raise ValueError('VAEModel expects a dict with keys "user" and "item"')
        scores = self.score_all(inputs["user"])
        items = ops.cast(inputs["item"], "int32")
        return ops.take_along_axis(scores, items[:, None], axis=1)[:, 0]

    def score_items(self, users: Any, items: Any) -> Any:
        """Scores of candidate ``items [B, C]`` for ``users [B]``: ``[B, C]``."""
        return ops.take_along_axis(self.score_all(users), ops.cast(items, "int32"), axis=1)

    def score_all(self, users: Any) -> Any:
        """Scores of every item for ``users [B]``: ``[B, num_items]``."""
        return self.score_histories(self.history_of(users))

    def item_embeddings(self) -> np.ndarray:
        """Item vectors ``[num_items, H or d]``: the output layer's columns."""
        return ops.convert_to_numpy(ops.transpose(self.output_layer.kernel))

    # -- training --------------------------------------------------------------------------------

    def _training_logits(self, users: Any, training: bool) -> Any:
        """Logits ``[B, N]`` of training users (id ``-1``: filler, no items), adding the
        weighted KL term of the real ones as a loss."""
        users = ops.cast(users, "int32")
        real = ops.cast(ops.greater_equal(users, 0), "float32")  # [B]
        present = self.present(self.history_of(ops.maximum(users, 0))) * real[:, None]
        thinned = self.thinned(present, training)
        mu, log_variance = self.encode(present, thinned)
        z = mu
        if log_variance is not None:
            per_user = 0.5 * ops.sum(
                ops.exp(log_variance) + ops.square(mu) - 1.0 - log_variance, axis=1
            )
            kl = ops.sum(per_user * real) / ops.maximum(ops.sum(real), 1.0)
            self.add_loss(self.kl_weight() * kl)
            if training:
                noise = normal(ops.shape(mu), self.generator)  # (XLA: Philox)
                z = mu + ops.exp(0.5 * log_variance) * noise
        return self.decode(z)

    def kl_weight(self) -> Any:
        """``beta_t``: ``beta`` times the share of ``anneal_steps`` done (at most 1)."""
        if self.optimizer is None:
            return self.beta
        done = ops.cast(self.optimizer.iterations, "float32") / float(max(self.anneal_steps, 1))
        return self.beta * ops.minimum(done, 1.0)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The users' mean multinomial negative log-likelihood of their item sets (with the
        KL term added by :meth:`call`); ``y_pred`` is the batch's logits ``[B, N]``; users
        without items (the last batch's filler, id ``-1``) count for nothing."""
        if not isinstance(x, dict) or "members" not in x:
            raise ValueError('vae training batches need a "members" input (user ids)')
        users = ops.cast(x["members"], "int32")
        real = ops.cast(ops.greater_equal(users, 0), "float32")  # [B]
        present = self.present(self.history_of(ops.maximum(users, 0))) * real[:, None]
        log_softmax = y_pred - ops.logsumexp(y_pred, axis=1, keepdims=True)
        per_user = -ops.sum(present * log_softmax, axis=1)
        loss = ops.sum(per_user) / ops.maximum(ops.sum(real), 1.0)
        for term in self.losses:
            loss = loss + ops.sum(term)
        return per_replica_share(loss)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "history_length": self.history_length,
            "hidden": self.hidden,
            "latent": self.latent,
            "decoder_hidden": self.decoder_hidden,
            "dropout": self.dropout,
            "beta": self.beta,
            "anneal_steps": self.anneal_steps,
            "item_item": self.item_item,
            "seed": self.seed,
        }
