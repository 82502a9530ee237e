"""Loading an export and asking it for recommendations (``ncf recommend``, ``ncf similar``).

An export folder is either a version folder (``EXPORT_BASE/<N>``, it holds
``saved_model.pb``) or the base folder, meaning its newest numeric version.
:class:`Export` loads it with ``tf.saved_model.load`` (TensorFlow only; no Keras model
code is needed) and reads ``assets/model.json`` and the item titles when present.

- ``Export.recommend(user_ids, k) -> list[Ranked]`` calls the ``recommend`` signature
  (``user_id [B] string``, ``k [B] int32`` -> ``item_ids [B, k]``, ``scores [B, k]``,
  ``known_user [B]``); an unknown user gets the popularity fallback, ``Ranked.known`` false.
- ``Export.call(signature, **inputs)`` runs any signature on numpy-convertible inputs.
- ``Export.score_meaning`` says what the scores are (logit, similarity, popularity count...).
- ``Export.similar(item_ids, k) -> list[Ranked]`` calls ``similar_items``; an unknown item,
  or an export without that signature (popularity, user-kNN), is an :class:`NcfError`.
- ``Export.recommend_from_history(item_ids, k) -> Ranked`` calls ``recommend_from_history``
  for one user unknown at training time (``Ranked.known``: some history item was known).
- ``Export.explain(user_ids, k) -> list[Ranked]``: ``recommend`` plus, in each row,
  ``because``: the user's own items that contributed most, with their weights.

``k`` must lie in ``1..num_items``; padding slots (``""`` ids) are dropped from the lists.
The HTTP server is in :mod:`ncf.serve.http`, batch recommendations in :mod:`ncf.serve.batch`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncf.errors import NcfError
from ncf.serve.manifest import read_model_info, verify_export


@dataclass(frozen=True)
class Ranked:
    """One ranked list: the query id, whether it was known, and its rows best first."""

    query: str
    known: bool
    rows: list[dict[str, Any]] = field(default_factory=list)  # rank, item_id, score[, title]
    unknown: list[str] = field(default_factory=list)  # history ids the export does not know


def resolve_export(path: str | Path) -> Path:
    """The version folder ``path`` names: itself, or the newest numeric version under it."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = []
    if path.is_dir():
        versions = [
            p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
        ]
    if not versions:
        raise NcfError(
            f"{path}: no export here (neither saved_model.pb nor numeric version folders); run ncf export"
        )
    return max(versions, key=lambda p: int(p.name))


class Export:
    """A loaded export. Args: path: a version folder or an export base folder."""

    def __init__(self, path: str | Path) -> None:
        import tensorflow as tf

        self.path = resolve_export(path)
        self.version = int(self.path.name) if self.path.name.isdigit() else 0
        self.info: dict[str, Any] = read_model_info(self.path)
        if int(self.info.get("format", 1)) < 2:
            raise NcfError(
                f"{self.path}: written by an older ncf (export format "
                f"{self.info.get('format', 1)}, scalar k); export the run again"
            )
        verify_export(self.path, self.info)  # before TensorFlow reads a damaged file
        self.module = tf.saved_model.load(str(self.path))
        self.titles = _titles(self.path / "assets")
        self.num_items = int(self.info["num_items"])
        self.default_k = int(self.info.get("default_k", 10))
        self.score_meaning = str(self.info.get("score", "score (higher is better)"))
        self.fallback_meaning = str(self.info.get("fallback_score", "popularity count"))
        self._items: set[str] | None = None

    def user_ids(self) -> list[str]:
        """Every user id the export knows, in index order."""
        return (self.path / "assets" / "users.txt").read_text(encoding="utf-8").splitlines()

    def call(self, name: str, **inputs: Any) -> dict[str, Any]:
        """Run signature ``name``; ``k`` inputs are int32, the others strings. Numpy out."""
        import tensorflow as tf

        tensors = {
            key: tf.constant(value, tf.int32 if key == "k" else tf.string)
            for key, value in inputs.items()
        }
        return {key: value.numpy() for key, value in self.signature(name)(**tensors).items()}

    @property
    def signatures(self) -> dict[str, Any]:
        return dict(self.module.signatures)

    def signature(self, name: str) -> Any:
        if name not in self.module.signatures:
            note = self.info.get("no_similar_items") if name == "similar_items" else None
            reason = f": {note}" if note else ""
            raise NcfError(
                f"this export ({self.info.get('model_type')}) has no {name!r} signature{reason}"
            )
        return self.module.signatures[name]

    def check_k(self, k: int | None) -> int:
        k = self.default_k if k is None else int(k)
        if not 1 <= k <= self.num_items:
            raise NcfError(f"k={k}: must lie between 1 and the catalogue size {self.num_items}")
        return k

    def recommend(self, user_ids: list[str], k: int | None = None) -> list[Ranked]:
        """Top-``k`` items for each user (popularity fallback for unknown users)."""
        return self._ranked("recommend", "user_id", "known_user", user_ids, k)

    def recommend_from_history(self, item_ids: list[str], k: int | None = None) -> Ranked:
        """Top-``k`` items for a user who is not in the export, from the items they used."""
        if not item_ids:
            raise NcfError("--history: give at least one item id, e.g. --history 50,172,181")
        if any(not item for item in item_ids):
            raise NcfError(f"--history {','.join(item_ids)!r}: an empty item id (two commas?)")
        unknown = [i for i in item_ids if not self.knows_item(i)]
        out = self.call("recommend_from_history", history=[item_ids], k=[self.check_k(k)])
        known = int(out["known_items"][0]) > 0
        return Ranked(",".join(item_ids), known, self._rows(*_first(out)), unknown)

    def explain(self, user_ids: list[str], k: int | None = None) -> list[Ranked]:
        """``recommend``, each item with ``because``: [{item_id, weight[, title]}], best first."""
        out = self.call("explain", user_id=[str(u) for u in user_ids], k=[self.check_k(k)])
        found = []
        for b, user in enumerate(user_ids):
            rows = self._rows(out["item_ids"][b], out["scores"][b])
            for row, ids, weights in zip(
                rows, out["because_ids"][b], out["because_weights"][b], strict=False
            ):
                row["because"] = [
                    {"item_id": i.decode("utf-8"), "weight": float(w), **self._title(i)}
                    for i, w in zip(ids, weights, strict=True)
                    if i
                ]
            found.append(Ranked(str(user), bool(out["known_user"][b]), rows))
        return found

    def recommend_new_items(self, user_id: str, path: str | Path, k: int | None = None) -> Ranked:
        """The items of the table at ``path`` (CSV or Parquet; items unseen at training time,
        one row each, with the feature columns the run's ``data.item_features`` named and the
        id in its ``id`` column), ranked for ``user_id`` by ``score_items_by_features``."""
        import numpy as np

        from ncf.data.feature_tables import encode_new, read_new_table

        encoders_path = self.path / "assets" / "feature_encoders.json"
        self.signature("score_items_by_features")
        if not encoders_path.is_file():
            raise NcfError(
                f"{self.path}: the model was trained without data.item_features, so new items "
                "cannot be encoded from a table; retrain with data.item_features set"
            )
        encoders = json.loads(encoders_path.read_text(encoding="utf-8"))
        table = read_new_table(Path(path), encoders["item"]["table"]["config"]["id"])
        try:
            features = encode_new(encoders, "item", table)
        except Exception as exc:
            raise NcfError(f"{path}: {exc}") from None
        users = np.full(len(table), str(user_id), dtype=object)
        scores = self.call_features(users, features)
        known = bool(np.isfinite(scores).all()) if len(scores) else True
        order = np.lexsort((np.arange(len(scores)), -scores))[
            : self.check_k(k) if k else len(scores)
        ]
        rows = [
            {"rank": n + 1, "item_id": str(table.index[j]), "score": float(scores[j])}
            for n, j in enumerate(order)
        ]
        return Ranked(str(user_id), known, rows if known else [])

    def call_features(self, users: Any, features: Any) -> Any:
        import tensorflow as tf

        fn = self.signature("score_items_by_features")
        out = fn(
            user_id=tf.constant(users, tf.string), item_features=tf.constant(features, tf.float32)
        )
        return out["score"].numpy()

    def knows_item(self, item_id: str) -> bool:
        if self._items is None:
            path = self.path / "assets" / "items.txt"
            self._items = set(path.read_text(encoding="utf-8").splitlines())
        return item_id in self._items

    def _title(self, item: bytes) -> dict[str, str]:
        if self.titles is None:
            return {}
        return {"title": self.titles.get(item.decode("utf-8"), "")}

    def similar(self, item_ids: list[str], k: int | None = None) -> list[Ranked]:
        """The ``k`` nearest items of each item; an unknown item is an error."""
        found = self._ranked("similar_items", "item_id", "known_item", item_ids, k)
        unknown = [r.query for r in found if not r.known]
        if unknown:
            raise NcfError(f"unknown item {unknown[0]!r}: it is not in the exported catalogue")
        return found

    def _ranked(
        self, name: str, key: str, known_key: str, ids: list[str], k: int | None
    ) -> list[Ranked]:
        out = self.call(name, **{key: [str(i) for i in ids], "k": [self.check_k(k)]})
        items, scores, known = out["item_ids"], out["scores"], out[known_key]
        return [
            Ranked(query, bool(flag), self._rows(row_items, row_scores))
            for query, row_items, row_scores, flag in zip(ids, items, scores, known, strict=True)
        ]

    def _rows(self, items: Any, scores: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for item, score in zip(items, scores, strict=True):
            item_id = item.decode("utf-8")
            if not item_id:
                break  # padding: fewer candidates than k
            row: dict[str, Any] = {"rank": len(rows) + 1, "item_id": item_id, "score": float(score)}
            if self.titles is not None:
                row["title"] = self.titles.get(item_id, "")
            rows.append(row)
        return rows


def _first(out: dict[str, Any]) -> tuple[Any, Any]:
    return out["item_ids"][0], out["scores"][0]


def _titles(assets: Path) -> dict[str, str] | None:
    titles, items = assets / "item_titles.txt", assets / "items.txt"
    if not (titles.is_file() and items.is_file()):
        return None
    ids = items.read_text(encoding="utf-8").splitlines()
    names = titles.read_text(encoding="utf-8").splitlines()
    return dict(zip(ids, names, strict=False))


def format_ranked(ranked: Ranked, what: str, meaning: str = "") -> str:
    """A plain table with a header: rank, item id, score and title (when known); then what
    the score means (``meaning``). ``what``: ``user``, ``history`` or ``item``. Rows with
    ``because`` (explanations) get one more line each."""
    lines = []
    if ranked.unknown:
        lines.append(f"not in the export, ignored: {', '.join(ranked.unknown)}")
    if what == "user" and not ranked.known:
        lines.append(f"user {ranked.query!r} is unknown: showing the most popular items instead")
    elif what == "history" and not ranked.known:
        lines.append("no history item is in the export: showing the most popular items instead")
    else:
        heading = {
            "user": "recommendations for user",
            "history": "recommendations for a user who interacted with",
            "item": "items similar to",
        }[what]
        lines.append(f"{heading} {ranked.query!r}:")
    if not ranked.rows:
        lines.append("  (no items left to recommend)")
    else:
        width = max(max(len(r["item_id"]) for r in ranked.rows), len("item"))
        titled = any(r.get("title") for r in ranked.rows)
        lines.append(f"rank  {'item':<{width}}  {'score':>10}" + ("  title" if titled else ""))
    for row in ranked.rows:
        title = f"  {row['title']}" if row.get("title") else ""
        lines.append(f"{row['rank']:>4}  {row['item_id']:<{width}}  {row['score']:>10.4f}{title}")
        if "because" in row:
            reasons = [
                f"{r['item_id']}{' ' + r['title'] if r.get('title') else ''} ({r['weight']:.3f})"
                for r in row["because"]
            ]
            lines.append(f"      because: {'; '.join(reasons) or '(no item of the user)'}")
    if meaning and ranked.rows:
        lines.append(f"score: {meaning}")
    return "\n".join(lines)


def ranked_json(ranked: Ranked, what: str, meaning: str = "") -> dict[str, Any]:
    payload: dict[str, Any] = {what: ranked.query, "known": ranked.known}
    if what == "history":
        payload[what] = ranked.query.split(",")
        payload["unknown_items"] = ranked.unknown
    if meaning:
        payload["score"] = meaning
    if what in ("user", "history"):
        payload["fallback"] = None if ranked.known else "popularity"
    payload["items"] = ranked.rows
    return payload
