"""Recommendations from a history for users held out of training (ML-100K), vs popularity.

A seeded ``--share`` of users is removed from the data; each model of ``--models`` is trained
(its shipped ``configs/ml-100k/<model>.yaml``) on the other users and exported. For each
held-out user, the latest interaction (ties: larger item id, as the leave-one-out split) is
the test item and every earlier one is the history given to ``recommend_from_history``;
the test item is ranked among all items not in the history (full ranking, HR@10, NDCG@10).
Popularity: the most popular training items not in the history. "trained": the same model
trained on every user, asked ``recommend`` for the held-out users (its leave-one-out split
holds out the same test items; with ``train.refit`` it saw the rest of their history), i.e.
what the fold-in approximates.

    NCF_DATA_DIR=/work/shared/data python scripts/bench_history.py --models itemknn,ease,ials,mf
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def train_export(model: str, csv: Path | None, work: Path, tag: str) -> Path:
    from ncf.config import load_config
    from ncf.serve.export import export_run
    from ncf.train import train

    overrides = [f"run.dir={work / 'runs'}", f"run.name={model}-{tag}", "train.histograms=false"]
    if csv is not None:
        overrides += ["data.source=csv", f"data.path={csv}", "data.columns.rating=rating"]
        overrides += ["data.columns.timestamp=timestamp"]
    config = load_config(REPO / "configs" / "ml-100k" / f"{model}.yaml", overrides)
    run = train(config, verbose=0).run_dir
    return export_run(run, work / "exports" / f"{model}-{tag}")


def ranks_of(tops: list[list[str]], tests: list[str], k: int) -> tuple[float, float]:
    hits, gains = [], []
    for top, test in zip(tops, tests, strict=True):
        rank = top[:k].index(test) if test in top[:k] else None
        hits.append(rank is not None)
        gains.append(0.0 if rank is None else 1.0 / np.log2(rank + 2))
    return float(np.mean(hits)), float(np.mean(gains))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="itemknn,userknn,ease,ials,mf,neumf")
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-trained", action="store_true", help="skip the trained reference")
    args = parser.parse_args()
    from ncf.serve.client import Export

    data = Path(os.environ["NCF_DATA_DIR"]) / "ml-100k" / "u.data"
    frame = pd.read_csv(data, sep="\t", names=["user", "item", "rating", "timestamp"])
    users = np.sort(frame.user.unique())
    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(users, int(len(users) * args.share), replace=False).tolist())
    kept = frame[~frame.user.isin(held)]
    out = frame[frame.user.isin(held)].sort_values(["user", "timestamp", "item"])
    histories, tests, held_ids = [], [], []
    for user, rows in out.groupby("user"):
        items = rows.item.astype(str).tolist()
        histories.append(items[:-1])
        tests.append(items[-1])
        held_ids.append(str(user))
    counts = kept.item.astype(str).value_counts()
    popular = []
    for history in histories:
        seen = set(history)
        popular.append([i for i in counts.index[:200] if i not in seen][:10])
    results = [("popularity (train counts)", *ranks_of(popular, tests, 10), "", "")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "kept.csv"
        kept.to_csv(csv, index=False)
        for model in args.models.split(","):
            start = time.perf_counter()
            export = Export(train_export(model, csv, work, "kept"))
            fit_s = time.perf_counter() - start
            width = max(len(h) for h in histories)
            padded = [h + [""] * (width - len(h)) for h in histories]
            start = time.perf_counter()
            found = export.call("recommend_from_history", history=padded, k=[10])
            call_s = time.perf_counter() - start
            tops = [[i.decode() for i in row] for row in found["item_ids"]]
            hr, ndcg = ranks_of(tops, tests, 10)
            trained = ""
            if not args.no_trained:
                full = Export(train_export(model, None, work, "all"))
                got = full.call("recommend", user_id=held_ids, k=[10])["item_ids"]
                t_hr, t_ndcg = ranks_of([[i.decode() for i in r] for r in got], tests, 10)
                trained = f"{t_hr:.4f} / {t_ndcg:.4f}"
            note = f"fit {fit_s:.0f} s, {len(histories)} histories in {call_s:.2f} s"
            results.append((f"{model} fold-in", hr, ndcg, trained, note))
            print(results[-1], flush=True)
    print(
        f"\n{len(held)} held-out users ({args.share:.0%}, seed {args.seed}), "
        f"{len(kept)} training interactions; full ranking, the latest item of each user\n"
    )
    print("| model | HR@10 | NDCG@10 | trained on them: HR@10 / NDCG@10 | |")
    print("|---|---|---|---|---|")
    for name, hr, ndcg, trained, note in results:
        print(f"| {name} | {hr:.4f} | {ndcg:.4f} | {trained} | {note} |")


if __name__ == "__main__":
    main()
