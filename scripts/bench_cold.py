"""Cold items on ML-100K: HR@10 for items held out of training, with and without features.

``data.split.method: cold_items`` holds out 10% of the items entirely (seeded); each user's
latest interaction with one of them is the test case. **sampled**: the held-out item among
up to 100 other cold items the user never interacted with ("which of the new items");
**full**: among every item not in the user's training. Models: collaborative ones without
features (they have nothing to score a cold item by), mf with item features (MovieLens
genres, then genres + hashed title words, ``data.item_features: {text: [title]}``), and the
pure content model (cosine over the same features).

    NCF_DATA_DIR=/work/shared/data python scripts/bench_cold.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TITLE = "data.item_features={text: [title]}"
RUNS = [
    ("popularity", "popularity", []),
    ("itemknn (no features)", "itemknn", []),
    ("mf (no features)", "mf", []),
    ("mf + genres", "mf", ["model.item_features=true"]),
    ("mf + genres + title words", "mf", ["model.item_features=true", TITLE]),
    ("content: genres", "itemknn", ["model.type=content"]),
    ("content: genres + title words", "itemknn", ["model.type=content", TITLE]),
]


def main() -> None:
    from ncf.config import load_config
    from ncf.train import train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, extra in RUNS:
            overrides = ["data.split.method=cold_items", f"run.dir={tmp}", "train.histograms=false"]
            overrides += ["train.refit=false", *extra]
            start = time.perf_counter()
            result = train(
                load_config(REPO / "configs" / "ml-100k" / f"{config}.yaml", overrides), verbose=0
            )
            test = result.metrics["test"]
            rows.append((name, test["sampled"], test["full"], time.perf_counter() - start))
            print(rows[-1][0], f"{rows[-1][3]:.0f} s", flush=True)
    print("\n| model | sampled HR@10 | sampled NDCG@10 | full HR@10 | full NDCG@10 | seconds |")
    print("|---|---|---|---|---|---|")
    for name, sampled, full, seconds in rows:
        print(
            f"| {name} | {sampled['HR@10']:.4f} | {sampled['NDCG@10']:.4f} | "
            f"{full['HR@10']:.4f} | {full['NDCG@10']:.4f} | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
