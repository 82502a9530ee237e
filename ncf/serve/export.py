"""Export a finished run as a TensorFlow SavedModel in the TF Serving layout.

``ncf export RUN_DIR --out EXPORT_BASE [--version N]`` writes::

    EXPORT_BASE/<N>/
      saved_model.pb, variables/      signatures score (= serving_default), recommend and,
                                      where item similarity applies, similar_items
      assets/config.yaml              the run's resolved config (with export-time overrides;
                                      absolute paths cut to their last component)
      assets/model.json               model type, run name, split fingerprint, signatures,
                                      what the scores mean, what the export holds about users
      assets/metrics.json             the run's metrics
      assets/users.txt, items.txt     the vocabularies (also inside the graph)
      assets/feature_encoders.json    how data.item_features encoded its table (when set), so
                                      ``ncf recommend --new-items`` encodes new items alike
      assets/item_titles.txt          item titles aligned with items.txt (when the run has them)
      assets/checksums.json           the SHA-256 of every other file, checked before ncf loads
                                      the export (ncf.serve.manifest; TF Serving ignores it)

The SavedModel is written by Keras' ``ExportArchive`` (:func:`ncf.serve.servables.
write_saved_model`), so it loads in TensorFlow Serving's TF1 session loader as well as with
``tf.saved_model.load``; it holds only the variables the signatures read (no optimizer
state). The signatures are specified in :mod:`ncf.serve.servables.base`.

About users, an export holds: the raw user ids (``users.txt`` and the lookup table), the
model's per-user parameters (embeddings, factors; kNN: each user's train interactions, which
the scores are computed from) and, unless ``export.include_seen`` is false, each user's train
and validation items (to exclude them from ``recommend``). No absolute path is written.

``N`` defaults to one more than the largest numeric folder in ``EXPORT_BASE`` (1 when empty).
The version is written into a hidden temporary sibling (``.tmp-export-<pid>-...``) and
renamed into place in one ``os.rename``, so a crash never leaves a half-written version;
temporaries of dead processes are removed by the next export. An existing version is
never overwritten. A write the file system refuses (a full disk) is an :class:`NcfError`
naming the version folder; the temporary is removed, and so is ``EXPORT_BASE`` when this
export created it. Files and folders get the modes the umask allows (0666 / 0777 less it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ncf.config import Config, apply_overrides, build_config, config_to_dict, save_config
from ncf.errors import NcfError
from ncf.io import folder_for, library_write_error, write_error, write_json
from ncf.registry import family
from ncf.serve.manifest import MANIFEST, write_manifest
from ncf.train.rundir import RunDir, resolve_run

EXPORT_FORMAT = 2  # 2: every input batched (k [B]), ExportArchive; 1: scalar k
TMP_PREFIX = ".tmp-export-"


def export_run(
    run_path: str | Path,
    base: str | Path,
    version: int | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """Export the finished run at ``run_path`` to ``base/<version>``; returns that folder."""
    run = RunDir(resolve_run(run_path))
    metrics = run.metrics()  # raises unless the run finished
    config = _export_config(run.config, overrides or [])
    try:
        config.check_export(run.split().num_items)
    except ValueError as exc:
        raise NcfError(f"{run.path}: {exc}") from None
    with folder_for(base) as folder:  # a failed first export leaves no empty EXPORT_BASE
        return _export_version(run, config, metrics, folder, version)


def _export_version(
    run: RunDir, config: Config, metrics: dict, base: Path, version: int | None
) -> Path:
    """Write the version folder of ``base`` (module docstring); returns it."""
    _remove_stale_temporaries(base)
    version = next_version(base) if version is None else _check_version(version)
    target = base / str(version)
    if target.exists():
        raise NcfError(
            f"{target} already exists; versions are never overwritten (choose another --version)"
        )
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=base))
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        with _write_errors(tmp, target):
            info = _write_saved_model(run, config, metrics, tmp)
            info["version"] = version
            info["checksums"] = MANIFEST
            write_json(tmp / "assets" / "model.json", info)
            write_manifest(tmp)
            _fsync_tree(tmp)
        if target.exists():
            raise NcfError(f"{target} appeared while exporting; versions are never overwritten")
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise NcfError(
                f"{target}: cannot move the export into place ({exc.strerror})"
            ) from None
        _fsync_dir(base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@contextmanager
def _write_errors(tmp: Path, target: Path) -> Iterator[None]:
    """What TensorFlow or the file system refused while the version was written in ``tmp``
    (a full disk) as an :class:`NcfError` naming the version folder ``target`` instead."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as exc:
        raise library_write_error(target, exc.message) from None
    except OSError as exc:
        raise write_error(target, exc) from None
    except NcfError as exc:  # ncf's own writes name the file, in the temporary folder
        raise NcfError(str(exc).replace(str(tmp), str(target))) from None


def _export_config(config: Config, overrides: list[str]) -> Config:
    bad = [o for o in overrides if not o.strip().startswith("export.")]
    if bad:
        raise NcfError(f"--set {bad[0]!r}: only export.* keys can change at export time")
    return build_config(apply_overrides(config_to_dict(config), overrides), "export --set")


def next_version(base: Path) -> int:
    """One more than the largest numeric folder name in ``base`` (1 for none)."""
    numbers = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=0) + 1


def _check_version(version: int) -> int:
    if version < 1:
        raise NcfError(f"--version {version}: versions are positive integers")
    return int(version)


def _remove_stale_temporaries(base: Path) -> None:
    """Delete ``.tmp-export-<pid>-*`` folders whose process no longer runs."""
    for path in base.glob(f"{TMP_PREFIX}*"):
        pid = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_saved_model(run: RunDir, config: Config, metrics: dict, out: Path) -> dict[str, Any]:
    import tensorflow as tf

    from ncf.serve.servables import write_saved_model

    form = run.load_scorer().serving_form()
    module = build_servable(run, config, form)
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("WARNING")  # not "INFO: Assets written to <temporary folder>"
    try:
        signatures = write_saved_model(module, str(out))
    finally:
        logger.setLevel(level)
    assets = out / "assets"
    assets.mkdir(exist_ok=True)
    config, cut = _without_absolute_paths(config)
    save_config(config, assets / "config.yaml")
    write_json(assets / "metrics.json", metrics)
    for name in ("users.txt", "items.txt", "item_titles.txt", "feature_encoders.json"):
        source = run.path / "vocab" / name
        if source.is_file():
            shutil.copyfile(source, assets / name)
    kind = config.model.type
    can = family(kind).can
    return {
        "format": EXPORT_FORMAT,
        "model_type": kind,
        "run_name": f"{run.path.parent.name}/{run.path.name}",
        "fingerprint": run.data_info()["fingerprint"],
        "signatures": signatures,
        "no_similar_items": (can.no_similar_items or None)
        if "similar_items" not in signatures
        else None,
        "exclude_seen": module.exclude_seen,
        "include_seen": config.export.include_seen,
        "default_k": config.export.default_k,
        "num_users": module.num_users,
        "num_items": module.num_items,
        "num_item_features": module.num_features,  # width F of score_items_by_features (0: none)
        "has_titles": (assets / "item_titles.txt").is_file(),
        "score": score_meaning(form, config),
        "fallback_score": "popularity count (train interactions of the item)",
        "about_users": about_users(form, config),
        "paths_cut": cut,
        "unknown_ids": {
            "score": "-inf when the user or the item is unknown",
            "recommend": "an unknown user gets the most popular items (train counts), known_user false",
            "similar_items": "an unknown item gets a row of padding ('' and -inf), known_item false",
            "recommend_from_history": "unknown and '' history ids are ignored; with none known, "
            "the most popular items (known_items 0)",
            "explain": "an unknown user gets the most popular items and no reasons",
            "score_items_by_features": "-inf when the user is unknown",
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tensorflow_version": tf.__version__,
    }


def score_meaning(form: Any, config: Config) -> str:
    """What ``recommend``'s scores are, in words (``ncf recommend`` prints it): the family's
    own words where it has them, else what its serving form computes."""
    from ncf.scorer import Factors, ItemPrior, ItemToItem, KerasModel, UserToUser

    if family(config.model.type).score_meaning:
        return family(config.model.type).score_meaning

    if isinstance(form, KerasModel):
        if config.train.loss == "bpr":
            return "ranking score (BPR: unbounded, only the order matters)"
        return "logit (log-odds of an interaction; probability = 1 / (1 + exp(-logit)))"
    if isinstance(form, ItemToItem | UserToUser):
        return "similarity (sum of the neighbours' cosine similarities)"
    if isinstance(form, Factors):
        return "dot product of the user and item factors (plus item bias)"
    if isinstance(form, ItemPrior):
        return "popularity count (train interactions of the item)"
    return "score (higher is better)"


def about_users(form: Any, config: Config) -> dict[str, Any]:
    """What the export holds about users, for ``model.json`` and the docs."""
    from ncf.scorer import ItemPrior, ItemToItem, PooledHistory, UserToUser

    held = ["raw user ids (assets/users.txt and the lookup table in the graph)"]
    if isinstance(form, ItemToItem | UserToUser):
        held.append("each user's train interactions (the kNN scores are computed from them)")
    elif isinstance(form, PooledHistory):
        held.append("each user's latest train items (the history table the user tower pools)")
    elif not isinstance(form, ItemPrior):  # popularity holds nothing per user
        held.append("per-user model parameters (embeddings or factors)")
    if config.export.include_seen:
        held.append("each user's train and validation items (to exclude them from recommend)")
    return {"seen_items": config.export.include_seen, "holds": held}


def _without_absolute_paths(config: Config) -> tuple[Config, list[str]]:
    """The config with absolute path values cut to their last component, and the keys cut."""
    raw = config_to_dict(config)
    keys = [("data", "path"), ("run", "dir"), ("model", "pretrained", "gmf")]
    keys.append(("model", "pretrained", "mlp"))
    cut = []
    for key in keys:
        node = raw
        for part in key[:-1]:
            node = node.get(part) or {}
        value = node.get(key[-1])
        if isinstance(value, str) and os.path.isabs(value):
            node[key[-1]] = Path(value).name
            cut.append(".".join(key))
    return build_config(raw, "export"), cut


def build_servable(run: RunDir, config: Config, form: Any | None = None) -> Any:
    """The servable of the run's final model: its ``serving_form()`` plus the vocabularies,
    popularity and (with ``export.include_seen``) the seen items (:mod:`ncf.serve.servables`)."""
    from ncf.serve.servables import servable_for

    split = run.split()
    seen = None
    if config.export.include_seen:
        seen_user = np.concatenate([split.train_user, split.val_user])
        seen_item = np.concatenate([split.train_item, split.val_item])
        seen = sp.csr_matrix(
            (np.ones(len(seen_user), np.float32), (seen_user, seen_item)),
            shape=(split.num_users, split.num_items),
        )
        seen.sum_duplicates()
        seen.sort_indices()
    return servable_for(
        run.load_scorer().serving_form() if form is None else form,
        users=run.users().ids,
        items=run.items().ids,
        popularity=np.bincount(split.train_item, minlength=split.num_items),
        seen=seen,
        exclude_seen=config.export.exclude_seen and config.export.include_seen,
    )


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_tree(root: Path) -> None:
    """Give the export the modes the umask allows (temporaries are 0600/0700); flush to disk."""
    mask = _umask()
    root.chmod(0o777 & ~mask)
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o777 & ~mask)
        elif path.is_file():
            path.chmod(0o666 & ~mask)
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
