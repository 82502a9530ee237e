"""Popularity and item-kNN on the NCF paper's file format reproduce independent figures.

We do not have the paper's files, so the test writes files of that format from MovieLens
100K (leave-one-out: each user's latest rating is the test item, ties to the larger item
id; 99 negatives per user drawn with a fixed seed from the items the user never rated),
computes HR@10 and NDCG@10 on exactly those candidates with a slow, obvious implementation
written here (plain Python and numpy, no ncf code), and runs ``ncf train`` with
``data.source: ncf`` on the same files. Same candidates, so no sampling noise: the figures
must agree within 0.005. Ranks are pessimistic (a tied negative counts as ranked above).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, set_args

NEGATIVES = 99


def write_ncf_files(ml100k: Path, folder: Path) -> tuple[list, list, list]:
    """Train rows, test rows and negatives, also written as ml-100k.{train,test}.rating/.test.negative."""
    by_user: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for line in (ml100k / "u.data").read_text().splitlines():
        user, item, rating, ts = (int(v) for v in line.split("\t"))
        by_user[user].append((ts, item, rating))
    items = sorted({item for rows in by_user.values() for _, item, _ in rows})
    rng = np.random.default_rng(2017)
    train, test, negatives = [], [], []
    for user in sorted(by_user):
        rows = sorted(by_user[user])  # by time, then item id: the last is the test case
        ts, item, rating = rows[-1]
        test.append((user, item, rating, ts))
        train += [(user, i, r, t) for t, i, r in rows[:-1]]
        rated = {i for _, i, _ in rows}
        pool = [i for i in items if i not in rated]
        negatives.append([pool[j] for j in rng.choice(len(pool), NEGATIVES, replace=False)])
    folder.mkdir(parents=True, exist_ok=True)
    lines = lambda rows: "".join("\t".join(str(v) for v in row) + "\n" for row in rows)  # noqa: E731
    (folder / "ml-100k.train.rating").write_text(lines(train))
    (folder / "ml-100k.test.rating").write_text(lines(test))
    neg_lines = [
        f"({u},{i})\t" + "\t".join(map(str, neg))
        for (u, i, _, _), neg in zip(test, negatives, strict=True)
    ]
    (folder / "ml-100k.test.negative").write_text("\n".join(neg_lines) + "\n")
    return train, test, negatives


def hr_ndcg(score, test, negatives) -> tuple[float, float]:
    """Mean HR@10 and NDCG@10; rank = 1 + number of negatives scoring at least the positive."""
    hits, gains = 0, 0.0
    for (user, item, _, _), negs in zip(test, negatives, strict=True):
        positive = score(user, item)
        rank = 1 + sum(1 for j in negs if score(user, j) >= positive)
        if rank <= 10:
            hits += 1
            gains += 1.0 / math.log2(rank + 1)
    return hits / len(test), gains / len(test)


def popularity_reference(train, test, negatives) -> tuple[float, float]:
    counts = Counter(item for _, item, _, _ in train)
    return hr_ndcg(lambda user, item: counts[item], test, negatives)


def itemknn_reference(train, test, negatives, neighbours: int, shrinkage: float):
    """Cosine between item columns of the binary train matrix, each item's top neighbours;
    a candidate i scores sum over its neighbours j the user has of sim(i, j)."""
    users = sorted({u for u, _, _, _ in train})
    items = sorted(
        {i for _, i, _, _ in train} | {i for n in negatives for i in n} | {t[1] for t in test}
    )
    row = {u: k for k, u in enumerate(users)}
    col = {i: k for k, i in enumerate(items)}
    x = np.zeros((len(users), len(items)))
    for user, item, _, _ in train:
        x[row[user], col[item]] = 1.0
    norms = np.sqrt(x.sum(axis=0))
    sims = (x.T @ x) / (np.outer(norms, norms) + shrinkage)
    np.fill_diagonal(sims, 0.0)
    top = {}
    for i in range(len(items)):
        order = np.argsort(-sims[i], kind="stable")[:neighbours]
        top[i] = [(j, sims[i, j]) for j in order if sims[i, j] > 0]

    def score(user, item):
        return sum(s for j, s in top[col[item]] if x[row[user], j] > 0)

    return hr_ndcg(score, test, negatives)


def ncf_run(tmp_path: Path, config: str, name: str, *extra: str) -> dict:
    folder = tmp_path / "ncf-files"
    args = ["data.source=ncf", f"data.path={folder}", "data.name=ml-100k", f"run.dir={tmp_path / 'runs'}",
            f"run.name={name}", *extra]  # fmt: skip
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ncf.cli",
            "train",
            str(REPO / "configs" / "ml-100k" / config),
            *set_args(*args),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs" / name).iterdir()
    return json.loads((run / "metrics.json").read_text())["test"]["sampled"]


@pytest.fixture(scope="module")
def files(ml100k_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ncf-format")
    return tmp, write_ncf_files(ml100k_dir, tmp / "ncf-files")


NO_VALIDATION = ("data.split.validation=false", "train.refit=false")


def test_popularity_on_ncf_files_matches_an_independent_implementation(files):
    tmp, (train, test, negatives) = files
    hr, ndcg = popularity_reference(train, test, negatives)
    got = ncf_run(tmp, "popularity.yaml", "popularity", *NO_VALIDATION)
    assert got["cases"] == len(test) == 943
    assert abs(got["HR@10"] - hr) <= 0.005 and abs(got["NDCG@10"] - ndcg) <= 0.005, (got, hr, ndcg)


def test_itemknn_on_ncf_files_matches_an_independent_implementation(files):
    tmp, (train, test, negatives) = files
    hr, ndcg = itemknn_reference(train, test, negatives, neighbours=20, shrinkage=10.0)
    got = ncf_run(tmp, "itemknn.yaml", "itemknn", *NO_VALIDATION)
    assert abs(got["HR@10"] - hr) <= 0.005 and abs(got["NDCG@10"] - ndcg) <= 0.005, (got, hr, ndcg)
    # The shipped config (validation carved from the train file, then refit on all of it)
    # tests a model fitted on the same interactions: the same figures.
    refit = ncf_run(tmp, "itemknn.yaml", "itemknn-refit")
    assert refit["HR@10"] == pytest.approx(got["HR@10"]) and refit["NDCG@10"] == pytest.approx(
        got["NDCG@10"]
    )


def test_plain_layout_without_timestamps_gives_the_same_figures(files):
    """The common layout: train.rating / test.rating / test.negative with no prefix, and
    rating files of three fields (no timestamp): read as unordered, same candidates."""
    tmp, (train, test, negatives) = files
    plain = tmp / "plain"
    plain.mkdir()
    for suffix in ("train.rating", "test.rating"):
        rows = (tmp / "ncf-files" / f"ml-100k.{suffix}").read_text().splitlines()
        (plain / suffix).write_text("".join(r.rsplit("\t", 1)[0] + "\n" for r in rows))
    negative = (tmp / "ncf-files" / "ml-100k.test.negative").read_text()
    (plain / "test.negative").write_text(negative)
    hr, ndcg = popularity_reference(train, test, negatives)
    args = ["data.source=ncf", f"data.path={plain}", "data.name=null", f"run.dir={tmp / 'plain-runs'}",
            "run.name=plain", *NO_VALIDATION]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "ncf.cli", "train",
         str(REPO / "configs" / "ml-100k" / "popularity.yaml"), *set_args(*args)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = (tmp / "plain-runs" / "plain").iterdir()
    got = json.loads((run / "metrics.json").read_text())["test"]["sampled"]
    assert got["cases"] == 943
    assert abs(got["HR@10"] - hr) <= 0.005 and abs(got["NDCG@10"] - ndcg) <= 0.005, (got, hr, ndcg)
    stats = json.loads((run / "data.json").read_text())["stats"]
    assert stats["has_timestamp"] is False
