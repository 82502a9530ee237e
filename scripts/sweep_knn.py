"""Choose the kNN neighbourhood on the validation split; print validation and test side by side.

    NCF_DATA_DIR=../shared/data python scripts/sweep_knn.py [CONFIG] [--neighbours 10,20,50,100,200,400]

For each neighbourhood size (and shrinkage 0 / 10) of item-kNN and user-kNN: sampled and
full HR@10 on validation and on test. The row to use is the best on validation (marked *);
the test columns are printed for the record only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ncf.config import load_config
from ncf.data.dataset import load_dataset
from ncf.evaluation import evaluate
from ncf.registry import family

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", nargs="?", default=str(REPO / "configs" / "ml-100k" / "itemknn.yaml")
    )
    parser.add_argument("--neighbours", default="10,20,50,100,200,400")
    args = parser.parse_args()
    config = load_config(args.config)
    split = load_dataset(config).split
    for kind in ("itemknn", "userknn"):
        rows = []
        for k in (int(v) for v in args.neighbours.split(",")):
            for shrinkage in (0.0, 10.0):
                model = config.model.model_copy(
                    update={"type": kind, "neighbours": k, "shrinkage": shrinkage}
                )
                fitted = family(kind).fit(model, split, None)
                val = evaluate(fitted, split, "val", ["sampled", "full"], [10])
                test = evaluate(fitted, split, "test", ["sampled", "full"], [10])
                rows.append((k, shrinkage, val, test))
        best = max(rows, key=lambda r: r[2]["sampled"]["NDCG@10"])
        print(
            f"{kind}: neighbours shrinkage | val sampled NDCG@10 HR@10, full HR@10 | test sampled HR@10, full HR@10"
        )
        for row in rows:
            k, shrinkage, val, test = row
            mark = "*" if row is best else " "
            print(
                f"{mark} {k:5d} {shrinkage:5.1f} | {val['sampled']['NDCG@10']:.4f} {val['sampled']['HR@10']:.4f} "
                f"{val['full']['HR@10']:.4f} | {test['sampled']['HR@10']:.4f} {test['full']['HR@10']:.4f}"
            )


if __name__ == "__main__":
    main()
