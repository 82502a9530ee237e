"""The TensorBoard Embedding Projector for item embeddings, with readable metadata.

Writes, under the TensorBoard log folder: a TF checkpoint holding the item embedding matrix,
``items.tsv`` (header ``id<TAB>title``, one row per item in index order) and
``projector_config.pbtxt`` tying them together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ncf.io import atomic_write_text, library_write_error


def write_projector(log_dir: Path, embeddings: np.ndarray, run_dir: Path) -> None:
    import tensorflow as tf
    from tensorboard.plugins import projector

    log_dir.mkdir(parents=True, exist_ok=True)
    ids = (run_dir / "vocab" / "items.txt").read_text(encoding="utf-8").splitlines()
    titles_path = run_dir / "vocab" / "item_titles.txt"
    titles = (
        titles_path.read_text(encoding="utf-8").splitlines()
        if titles_path.exists()
        else [""] * len(ids)
    )
    rows = ["id\ttitle"] + [
        f"{_clean(i)}\t{_clean(t) or _clean(i)}" for i, t in zip(ids, titles, strict=True)
    ]
    atomic_write_text(log_dir / "items.tsv", "\n".join(rows) + "\n")
    variable = tf.Variable(np.asarray(embeddings, np.float32), name="item_embeddings")
    checkpoint = tf.train.Checkpoint(item_embeddings=variable)
    try:
        checkpoint.save(str(log_dir / "embeddings.ckpt"))
    except tf.errors.OpError as exc:  # e.g. the disk is full
        raise library_write_error(log_dir / "embeddings.ckpt", exc.message) from None
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "item_embeddings/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "items.tsv"
    projector.visualize_embeddings(str(log_dir), config)


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")
