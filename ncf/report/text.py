"""Plain-text renderings for the terminal: data statistics and metric tables."""

from __future__ import annotations

from collections.abc import Mapping


def format_stats(stats: Mapping[str, object]) -> str:
    """A readable multi-line summary of :func:`ncf.data.dataset.data_stats`."""
    per_user = stats["interactions_per_user"]
    split = stats["split"]
    assert isinstance(per_user, Mapping) and isinstance(split, Mapping)
    cold, ties = stats["cold_items_in_test"], stats.get("time_ties")
    assert isinstance(cold, Mapping)
    lines = [
        f"source        {stats['source']}",
        f"users         {stats['users']:,}",
        f"items         {stats['items']:,}",
        f"interactions  {stats['interactions']:,}",
        f"density       {stats['density']:.4%}",
        f"per user      min {per_user['min']}  median {per_user['median']:g}  max {per_user['max']}",
        f"split         train {split['train']:,}  val {split['val']:,}  test {split['test']:,} "
        f"({split['test_users']:,} users, {split['candidates_per_case']} sampled negatives per case)",
    ]
    if split.get("test_cases_from_files"):
        lines.append("              the test cases and their negatives are those of the data files")
    for part in ("test", "val"):
        if split.get(f"users_without_{part}"):
            need = "2" if part == "test" else "3"
            lines.append(
                f"              {plural(split[f'users_without_{part}'], 'user has', 'users have')} no {part} case "
                f"(fewer than {need} interactions); they stay in train"
            )
    lines.append(
        f"cold items    {plural(cold['vs_train']['items'], 'test item', 'test items')} never seen in train "
        f"({cold['vs_train']['cases']:,} cases); {cold['vs_train_and_val']['items']:,} never seen "
        f"in train + validation, what a refit trains on ({cold['vs_train_and_val']['cases']:,} cases)"
    )
    if not stats.get("has_timestamp", True) and not split.get("test_cases_from_files"):
        lines.append(
            "time order    none (no timestamp column): each user's test and validation cases "
            "are drawn at random from run.seed, and the history model reads unordered histories"
        )
    if isinstance(ties, Mapping) and (
        ties["test_cases_tied_in_time"] or ties["users_with_one_timestamp"]
    ):
        lines.append(
            f"time ties     {ties['test_cases_tied_in_time']:,} test cases share their timestamp with "
            f"another of the user's interactions (the larger item id was held out); "
            f"{plural(ties['users_with_one_timestamp'], 'user has', 'users have')} a single "
            "timestamp for everything"
        )
    dropped = {k: v for k, v in dict(stats["dropped"]).items() if v and k != "rows_read"}  # type: ignore[call-overload]
    if dropped:
        lines.append("dropped       " + ", ".join(f"{k} {v:,}" for k, v in dropped.items()))
    return "\n".join(lines)


def plural(n: int, one: str, many: str) -> str:
    """``plural(1, "user has", "users have")`` -> ``1 user has``; 2 -> ``2 users have``."""
    return f"{n:,} {one if n == 1 else many}"


def format_metrics(
    metrics: Mapping[str, Mapping[str, float]], keys: list[str] | None = None
) -> str:
    """A protocol x metric table: one row per protocol, one column per metric."""
    protocols = list(metrics)
    if not protocols:
        return "(no metrics)"
    names = keys or [k for k in metrics[protocols[0]] if k != "cases"]
    width = max(8, *(len(n) for n in names))
    header = "protocol".ljust(10) + "".join(n.rjust(width + 2) for n in names)
    rows = [header]
    for protocol in protocols:
        values = metrics[protocol]
        cells = "".join(
            (
                f"{values[n]:.4f}" if isinstance(values.get(n), float) else str(values.get(n, "-"))
            ).rjust(width + 2)
            for n in names
        )
        rows.append(protocol.ljust(10) + cells)
    return "\n".join(rows)


HEADLINE = ("HR", "NDCG", "MRR", "Recall")  # metric families shown in terminal tables
AT_K = ("HR", "NDCG", "Recall", "Precision", "MAP", "Coverage", "MeanPopularity")


def format_metric_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """Every metric, one row per protocol and cut-off K (``ncf evaluate``): HR, NDCG, Recall,
    Precision and MAP at K, the catalogue coverage and mean popularity of the top-K lists
    (full ranking: the sampled protocol ranks each case among its own candidates, no
    catalogue-wide list), and the protocol's MRR on its first row."""
    ks = sorted({int(n.partition("@")[2]) for v in metrics.values() for n in v if "@" in n})
    names = [n for n in AT_K if any(f"{n}@{k}" in v for v in metrics.values() for k in ks)]
    width = [max(8, len(n)) for n in names]
    header = "protocol".ljust(10) + "K".rjust(4)
    header += "".join(n.rjust(w + 2) for n, w in zip(names, width, strict=True)) + "MRR".rjust(10)
    rows = [header]
    for protocol, values in metrics.items():
        for row, k in enumerate(ks):
            cells = [
                _number(values.get(f"{n}@{k}"), n).rjust(w + 2)
                for n, w in zip(names, width, strict=True)
            ]
            mrr = _number(values.get("MRR"), "MRR") if row == 0 else ""
            line = protocol.ljust(10) + str(k).rjust(4) + "".join(cells) + mrr.rjust(10)
            rows.append(line.rstrip())
    if "Coverage" in names:
        rows.append("Coverage@K: share of the catalogue in some user's top K (full ranking);")
        rows.append(
            "MeanPopularity@K: mean training interactions of the top-K items (lower: more long tail)"
        )
    return "\n".join(rows)


def _number(value: object, name: str) -> str:
    if not isinstance(value, float | int):
        return "-"
    return f"{value:.1f}" if name == "MeanPopularity" else f"{value:.4f}"


def headline(metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The headline metric names (HR@K, NDCG@K, MRR, Recall@K) present in ``metrics``."""
    first: Mapping[str, float] = next(iter(metrics.values()), {})
    return [k for k in first if k.split("@")[0] in HEADLINE]


def format_run_result(metrics: Mapping[str, object], run_dir: object) -> str:
    """What ``ncf train`` prints at the end: which model was tested, its metrics, the folder."""
    refit, fit_on = metrics.get("refit"), ""
    if isinstance(refit, Mapping):
        fit_on = f", refit on train + validation for {refit['epochs']} epochs"
        if refit.get("from") == "selected":
            fit_on = (
                f", the model chosen on validation reading train + validation, trained "
                f"{refit['epochs']} more epochs on them"
            )
    elif metrics.get("fit_on") == "train+val":
        fit_on = ", fitted on train + validation"
    test = metrics["test"]
    assert isinstance(test, Mapping)
    lines = [f"\ntest metrics ({metrics['model']}{fit_on}):", format_metrics(test, headline(test))]
    timing = timing_line(metrics)
    if timing:
        lines.append("\n" + timing)
    if metrics.get("stopped") == "epoch cap":
        lines.append("\n" + epoch_cap_note(metrics))
    lines.append(f"\nrun directory: {run_dir}")
    return "\n".join(lines)


def timing_line(metrics: Mapping[str, object]) -> str:
    """``timing: 0.81 s per epoch (median of 10 epochs that compiled nothing: train 0.72,
    val 0.10), first epoch 3.38 s incl. compile; 1,229,834 training examples/s`` (the
    selection phase); "" for a model fitted without epochs."""
    steady, first = metrics.get("seconds_per_epoch"), metrics.get("first_epoch_seconds")
    history = metrics.get("history")
    if not isinstance(first, Mapping) or not isinstance(history, list):
        return ""
    line = "timing: "
    if isinstance(steady, Mapping) and steady:
        steady_epochs = sum(1 for h in history if not h.get("compiled"))
        line += (
            f"{steady['epoch']:.2f} s per epoch (median of "
            f"{plural(steady_epochs, 'epoch', 'epochs')} that compiled nothing: "
            f"train {steady['train']:.2f}, val {steady.get('eval', 0.0):.2f}), "
        )
    line += f"first epoch {first['epoch']:.2f} s incl. compile"
    rate = metrics.get("examples_per_second")
    if isinstance(rate, (int, float)):
        line += f"; {rate:,.0f} training examples/s"
    return line


def epoch_cap_note(metrics: Mapping[str, object]) -> str:
    """The warning for a selection phase that ran every epoch of ``train.epochs``."""
    ran, best = metrics.get("epochs_run"), metrics.get("best_epoch")
    note = f"note: early stopping never triggered: the run stopped at the epoch cap (train.epochs={ran})"
    if best == ran:
        return (
            note
            + "; the last epoch was the best, so validation was still improving: raise train.epochs"
        )
    return (
        note + f" with epoch {best} the best so far; a larger train.epochs might find a better one"
    )
