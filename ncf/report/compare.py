"""The comparison report: every run in one table (Markdown and CSV) and one bar chart.

Runs are compared only when they were evaluated on the same data and split: their split
fingerprints (``data.json``) must be equal, otherwise the table would put numbers from
different test sets side by side. Metrics are read from each run's ``metrics.json``
(test split), so the report needs nothing but the run directories.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ncf.errors import NcfError
from ncf.io import atomic_path, folder_for, write_together
from ncf.registry import family
from ncf.train.rundir import RunDir

SECONDS = ("s/epoch", "first epoch s", "train seconds")


def collect(run_paths: list[str | Path], ks: list[int]) -> list[dict[str, Any]]:
    """One row per run: name, model, hyperparameters, metrics per protocol, seconds."""
    if not run_paths:
        raise NcfError("ncf compare needs at least one run directory")
    runs = [RunDir(p) for p in run_paths]
    fingerprints = {run.path: run.data_info()["fingerprint"] for run in runs}
    if len(set(fingerprints.values())) > 1:
        listing = "; ".join(f"{p}: {f}" for p, f in fingerprints.items())
        raise NcfError(
            f"these runs were evaluated on different data or splits, so their metrics are not comparable "
            f"(split fingerprints differ: {listing}); compare runs of the same data, split and seed"
        )
    return [_row(run, ks) for run in runs]


def _row(run: RunDir, ks: list[int]) -> dict[str, Any]:
    config, metrics = run.config, run.metrics()
    model, kind = config.model, family(config.model.type)
    params = {name.rpartition(".")[2]: _attr(model, name) for name in kind.hyperparameters}
    if kind.neural:
        train = config.train
        if train.loss in ("bce", "bpr"):
            params["negatives"] = train.num_negatives
        elif train.loss == "sampled_softmax":
            params["sampled_items"] = train.sampled_items
        params.update(lr=train.learning_rate, batch=train.batch_size)
        params["loss"] = train.loss
        params["best_epoch"] = metrics.get("best_epoch")
    params["fit_on"] = metrics.get("fit_on", "train")
    row: dict[str, Any] = {
        "run": f"{config.run.name}/{run.path.name}",
        "model": model.type,
        "hyperparameters": " ".join(f"{k}={_short(v)}" for k, v in params.items()),
    }
    for protocol in ("sampled", "full"):
        values = metrics["test"].get(protocol, {})
        for k in ks:
            for name in ("HR", "NDCG"):
                row[f"{protocol} {name}@{k}"] = values.get(f"{name}@{k}")
        row[f"{protocol} MRR"] = values.get("MRR")
    full = metrics["test"].get("full", {})  # beyond accuracy: the top-K lists of full ranking
    for k in ks:
        row[f"full Coverage@{k}"] = full.get(f"Coverage@{k}")
        row[f"full MeanPopularity@{k}"] = full.get(f"MeanPopularity@{k}")
    # Steady seconds per epoch (median, compilation excluded) beside the first epoch's.
    row["s/epoch"] = (metrics.get("seconds_per_epoch") or {}).get("epoch")
    row["first epoch s"] = (metrics.get("first_epoch_seconds") or {}).get("epoch")
    row["train seconds"] = metrics.get("train_seconds")
    return row


def _attr(section: Any, dotted: str) -> Any:
    """``_attr(model, "ease.l2")`` -> ``model.ease.l2`` (hyperparameters in sub-sections)."""
    for part in dotted.split("."):
        section = getattr(section, part)
    return section


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    for row in rows:
        cells = [
            f"{row[c]:.1f}" if c in SECONDS and row[c] is not None else _cell(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def bar_labels(rows: list[dict[str, Any]]) -> list[str]:
    """A name per run for the chart: its model and the settings whose values differ among
    the runs that have them (``best_epoch``, an outcome, left out), wrapped; the run's folder
    is added where two runs would still read the same."""
    import textwrap

    settings = [dict(p.partition("=")[::2] for p in r["hyperparameters"].split()) for r in rows]
    for values in settings:
        values.pop("best_epoch", None)
    keys = dict.fromkeys(key for values in settings for key in values)
    differ = [key for key in keys if len({v[key] for v in settings if key in v}) > 1]
    labels = []
    for row, values in zip(rows, settings, strict=True):
        shown = " ".join(f"{key}={values[key]}" for key in differ if key in values)
        labels.append("\n".join([row["model"], *textwrap.wrap(shown, 28)]))
    return [
        f"{label}\n{row['run']}" if labels.count(label) > 1 else label
        for label, row in zip(labels, rows, strict=True)
    ]


def chart(rows: list[dict[str, Any]], k: int) -> Any:
    """Horizontal bars of HR@k and NDCG@k per run, one panel per protocol, each run named by
    :func:`bar_labels`; a matplotlib ``Figure`` (no pyplot state: a notebook shows it as is)."""
    from matplotlib.figure import Figure

    protocols = [
        p for p in ("sampled", "full") if any(r.get(f"{p} HR@{k}") is not None for r in rows)
    ]
    labels = bar_labels(rows)
    lines = max(label.count("\n") + 1 for label in labels)
    height = 1.4 + len(rows) * max(0.55, 0.3 * lines)
    fig = Figure(figsize=(4.2 * len(protocols) + 2.2, height), layout="constrained")
    axes = fig.subplots(1, len(protocols), squeeze=False, sharey=True)[0]
    y = list(range(len(rows)))[::-1]  # the first run on top
    for ax, protocol in zip(axes, protocols, strict=True):
        top = 0.0
        for offset, name in ((0.2, "HR"), (-0.2, "NDCG")):
            values = [r.get(f"{protocol} {name}@{k}") or 0.0 for r in rows]
            bars = ax.barh([v + offset for v in y], values, height=0.4, label=f"{name}@{k}")
            ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
            top = max(top, *values)
        ax.set_xlim(0, top * 1.25 or 1.0)  # room for the value labels
        ax.set_yticks(y, labels)
        ax.set_title(f"{protocol} protocol (test split)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    return fig


def plot(rows: list[dict[str, Any]], k: int, path: Path) -> None:
    """:func:`chart` written to ``path`` as PNG."""
    fig = chart(rows, k)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def write_report(rows: list[dict[str, Any]], out: Path, k: int) -> list[Path]:
    """comparison.md, .csv and .png in ``out``: all three or, when one cannot be written (a
    full disk), none (``ncf.io.write_together``)."""
    paths = [out / "comparison.md", out / "comparison.csv", out / "comparison.png"]
    png = io.BytesIO()
    chart(rows, k).savefig(png, dpi=110, format="png")
    texts = [to_markdown(rows).encode(), to_csv(rows).encode(), png.getvalue()]
    with folder_for(out):
        write_together(dict(zip(paths, texts, strict=True)))
    return paths
