"""The public Python API: what a notebook or a script needs, without internal module paths.

Reached as ``ncf.<name>`` (``ncf/__init__.py`` imports this module on first use) and listed,
with signatures and examples, in ``docs/api.md``:

- :func:`load_config` a YAML config with overrides (a list of ``KEY=VALUE`` or a dict);
- ``ncf.train(config_or_path, run_dir=None, ...)`` (the package :mod:`ncf.train` is
  callable) -> a ``RunResult`` (``run_dir``, ``metrics``: what ``metrics.json`` holds);
- :func:`evaluate` a finished run again, :func:`export` it as a SavedModel, :class:`Export`
  to ask an export for recommendations (``recommend``, ``similar``, ...);
- :func:`keras_setup`: a neural family's fresh Keras model and its training batches, for
  one's own ``compile`` / ``fit``, and the evaluator for the result;
- :func:`compare` / :func:`compare_chart`: the table and chart of ``ncf compare``;
- :func:`item_embeddings`: a run's item vectors with ids and titles.

Nothing here imports TensorFlow until a function needs it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncf.config import Config
from ncf.config import load_config as _load
from ncf.errors import NcfError
from ncf.serve.client import Export, Ranked
from ncf.train.run import RunResult

__all__ = [
    "Export",
    "ItemVectors",
    "KerasSetup",
    "Ranked",
    "RunResult",
    "compare",
    "compare_chart",
    "evaluate",
    "export",
    "item_embeddings",
    "keras_setup",
    "load_config",
    "train",
]

Overrides = Sequence[str] | Mapping[str, Any] | None
RunLike = RunResult | str | Path


def load_config(path: str | Path, overrides: Overrides = None) -> Config:
    """The validated config of the YAML file ``path`` with ``overrides`` applied: a list of
    ``"key=value"`` (as ``--set``) or a dict ``{"train.epochs": 3}``. Mistakes raise
    :class:`ncf.errors.ConfigError` naming the file and the key."""
    return _load(path, override_list(overrides))


def override_list(overrides: Overrides) -> list[str]:
    """``{"train.epochs": 3, "model.type": "mf"}`` -> ``["train.epochs=3", "model.type=\"mf\""]``
    (values as JSON, which YAML reads back unchanged); a list is kept as it is."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return [str(item) for item in overrides]


def train(
    config: Config | str | Path,
    run_dir: str | Path | None = None,
    *,
    overrides: Overrides = None,
    resume: bool = True,
    verbose: int = 0,
    extra_callbacks: list[Any] | None = None,
) -> RunResult:
    """Train (or resume) the run ``config`` describes, as ``ncf train`` does: a ``Config``,
    or a YAML file's path with ``overrides``. Returns its ``run_dir`` and ``metrics`` (what
    ``metrics.json`` holds: ``test``, ``val``, ``history`` per epoch, seconds...). A new run
    directory under ``run.dir`` unless ``run_dir``; an unfinished run of the same config is
    resumed (``resume=False``: start afresh). ``verbose=1`` shows Keras' progress bar;
    ``extra_callbacks`` (Keras callbacks) observe a neural model's epochs."""
    from ncf.train.run import train as train_run

    return train_run(
        _config(config, overrides), run_dir, resume=resume, verbose=verbose,
        extra_callbacks=extra_callbacks,
    )  # fmt: skip


def _config(config: Config | str | Path, overrides: Overrides) -> Config:
    if not isinstance(config, Config):
        return load_config(config, overrides)
    if overrides:
        raise NcfError("overrides go with a config file's path, not with a loaded Config")
    return config


def run_path(run: RunLike) -> Path:
    """The run directory of a ``RunResult`` or a path (a folder of runs: its newest finished)."""
    from ncf.train.rundir import resolve_run

    return resolve_run(run.run_dir if isinstance(run, RunResult) else run)


def evaluate(
    run: RunLike,
    split: str = "test",
    protocols: Sequence[str] = ("sampled", "full"),
    k: Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """Rank ``split`` ("test" or "val") with a finished run's model again: ``{protocol:
    {"HR@10": ..., "Coverage@10": ..., "MRR": ..., "cases": n}}`` (``ncf evaluate --json``).
    ``k`` defaults to the run's ``eval.k``."""
    from ncf.train.rundir import RunDir

    found = RunDir(run_path(run))
    return found.evaluate(split, list(protocols), list(k or found.config.eval.k))


def export(run: RunLike, out: str | Path, version: int | None = None) -> Path:
    """Export a finished run to ``out/<version>`` (TF Serving's layout; the next free version
    by default), as ``ncf export`` does; returns the version folder."""
    from ncf.serve.export import export_run

    return export_run(run_path(run), out, version)


def compare(runs: Sequence[RunLike], k: Sequence[int] | int = 10) -> list[dict[str, Any]]:
    """``ncf compare``'s table: one dict per run (model, hyperparameters, test metrics per
    protocol at each ``k``, coverage, mean popularity, seconds); ``pandas.DataFrame(rows)``
    shows it. Runs of different data or splits are refused."""
    from ncf.report.compare import collect

    return collect([run_path(r) for r in runs], [k] if isinstance(k, int) else list(k))


def compare_chart(runs: Sequence[RunLike] | list[dict[str, Any]], k: int = 10) -> Any:
    """``ncf compare``'s chart (a matplotlib ``Figure``) of runs, or of rows :func:`compare`
    returned: HR@k and NDCG@k per run and protocol, each bar named by its model and the
    settings that differ."""
    from ncf.report.compare import chart

    given = list(runs)
    if given and all(isinstance(r, dict) for r in given):
        return chart(given, k)  # type: ignore[arg-type]
    return chart(compare(given, [k]), k)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ItemVectors:
    """A run's item vectors: ``vectors[i]`` belongs to ``ids[i]`` (``titles[i]``, or the id
    where the data has no titles)."""

    ids: list[str]
    titles: list[str]
    vectors: Any  # numpy [items, d]

    def nearest(self, item_id: str, k: int = 10) -> list[tuple[str, str, float]]:
        """The ``k`` items nearest to ``item_id`` by cosine: ``(id, title, cosine)``."""
        import numpy as np

        if item_id not in self.ids:
            raise NcfError(f"item {item_id!r} is not in this run's vocabulary")
        norms = np.linalg.norm(self.vectors, axis=1)
        unit = self.vectors / np.maximum(norms, 1e-12)[:, None]
        query = self.ids.index(item_id)
        cosine = unit @ unit[query]
        cosine[query] = -np.inf
        order = np.argsort(-cosine, kind="stable")[:k]
        return [(self.ids[i], self.titles[i], float(cosine[i])) for i in order]


def item_embeddings(run: RunLike) -> ItemVectors:
    """The item vectors of a finished run whose model has them: the item tower outputs of a
    neural model (NeuMF: its GMF and MLP vectors side by side), the item factors of iALS.
    Neighbourhood and popularity models have none (:class:`NcfError`)."""
    from ncf.scorer import Factors, KerasModel, PooledHistory
    from ncf.train.rundir import RunDir

    found = RunDir(run_path(run))
    form = found.load_scorer().serving_form()
    if isinstance(form, KerasModel | PooledHistory):
        vectors = form.model.item_embeddings()
    elif isinstance(form, Factors):
        vectors = form.item
    else:
        raise NcfError(
            f"{found.path}: a {found.config.model.type} model has no item vectors "
            "(its scores come from item or user similarities or counts)"
        )
    ids = [str(i) for i in found.items().ids]
    titles = found.item_titles() or ids
    return ItemVectors(ids, [t or i for t, i in zip(titles, ids, strict=True)], vectors)


@dataclass
class KerasSetup:
    """A neural family's Keras model, fresh and uncompiled, and what it trains on.

    ``model.compile(optimizer=...)`` then ``model.fit(setup.batches(n), epochs=n,
    steps_per_epoch=setup.steps_per_epoch, shuffle=False)`` trains it on the batches ``ncf
    train`` draws (fresh negatives each epoch, already shuffled; the family's own loss: no
    ``loss=`` needed); :meth:`evaluate` ranks the validation (or test) split with it by ncf's
    evaluator.
    """

    config: Config
    data: Any  # ncf.data.dataset.Dataset: the split, vocabularies, side features
    model: Any  # keras.Model
    stream: Any  # ncf.data.pipeline.TrainingStream

    @property
    def steps_per_epoch(self) -> int:
        return int(self.stream.steps_per_epoch)

    def batches(self, epochs: int = 1) -> Any:
        """A ``tf.data.Dataset`` of ``epochs * steps_per_epoch`` batches, each epoch's
        negatives drawn afresh (from ``run.seed``, as ``ncf train`` draws them)."""
        if epochs < 1:
            raise NcfError(f"epochs={epochs}: must be at least 1")
        dataset = self.stream.dataset(0)
        for epoch in range(1, epochs):
            dataset = dataset.concatenate(self.stream.dataset(epoch))
        return dataset

    def evaluate(
        self,
        split: str = "val",
        protocols: Sequence[str] = ("sampled", "full"),
        k: Sequence[int] | None = None,
    ) -> dict[str, dict[str, float]]:
        """Rank ``split`` ("val" by default; "test" only once the setting is chosen) with the
        model as it is now, by the evaluator ``ncf train`` uses."""
        from ncf.evaluation import evaluate as rank
        from ncf.models.scorer import NeuralScorer

        ev = self.config.eval
        ks = list(k or ev.k)
        return rank(
            NeuralScorer(self.model), self.data.split, split, list(protocols), ks, ev.batch_users
        )


def keras_setup(config: Config | str | Path, overrides: Overrides = None) -> KerasSetup:
    """The Keras model ``config`` describes (a neural ``model.type``: mf, gmf, mlp, neumf,
    history), built on its data with weights drawn from ``run.seed``, and its training
    batches (:class:`KerasSetup`)."""
    import keras

    from ncf.data.dataset import load_dataset
    from ncf.registry import family

    config = _config(config, overrides)
    kind = family(config.model.type)
    if not kind.neural or kind.build is None or kind.prepare is None:
        raise NcfError(
            f"model.type {config.model.type} is not a neural model (it has no Keras model); "
            "fit it with ncf.train"
        )
    data = load_dataset(config)
    keras.utils.set_random_seed(config.run.seed)
    model = kind.build(config, data)
    stream = kind.prepare(model, config, data, data.split)
    return KerasSetup(config, data, model, stream)
