"""What a study shows: TensorBoard's HParams dashboard and a leaderboard (Markdown and CSV).

**HParams** (TensorBoard's hparams plugin): the study folder's ``tensorboard/`` holds the
experiment (every searched key with its domain, and the validation metrics), and one run per
trial, ``tensorboard/trial-NNNN``, with the trial's values and its validation metrics (the
model chosen on validation: step = its epoch) plus the monitored metric of every epoch under
``epoch/<metric>``, and the session's end: its status (completed and pruned trials
``STATUS_SUCCESS``, failed ones ``STATUS_FAILURE``) and times. The plugin's session status
has no "pruned", so the trial's Optuna state is an hparam of its own, ``trial_state``
(COMPLETE, PRUNED, FAIL: a column and a filter of the dashboard). Numbers have one type in
the plugin, ``DATA_TYPE_FLOAT64`` (its proto has no integer type; its own ``IntInterval``
writes that too): an integer key's values are written as integers, its domain is an integer
interval or the integer choices, and its description says "integer".
``tensorboard --logdir STUDY/tensorboard`` shows them.

**Leaderboard**: ``leaderboard.md`` and ``leaderboard.csv``, one row per trial, completed
trials first by the monitored validation metric, then pruned, failed and unfinished ones.
Only validation figures appear: the test split is ranked once, by the refit, never here.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import optuna

from ncf.io import atomic_write_text
from ncf.tune.joint import FAMILY_KEY, JointSpace
from ncf.tune.space import SearchSpace

Space = SearchSpace | JointSpace

METRICS = ("sampled/NDCG@10", "sampled/HR@10", "full/NDCG@10", "full/HR@10")
_ORDER = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}
STATE = "trial_state"  # the hparam holding the trial's Optuna state
STATES = ("COMPLETE", "PRUNED", "FAIL")


def hparam_value(value: Any) -> bool | int | float | str:
    """A value the hparams plugin accepts (lists become their JSON text)."""
    return value if isinstance(value, bool | int | float | str) else json.dumps(value)


def write_experiment(log_dir: Path, space: Space, monitor: str) -> None:
    """The experiment summary (domains and metrics), once per study folder."""
    if log_dir.is_dir() and any(log_dir.glob("events.out.tfevents.*")):
        return
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    hparams = []
    for name, param in space.params.items():
        description = ""
        if param.choices is not None:
            domain: Any = hp.Discrete([hparam_value(c) for c in param.choices])
            if all(type(c) is int for c in param.choices):
                description = "integer"
        elif param.is_int:
            domain = hp.IntInterval(int(param.low), int(param.high))  # type: ignore[arg-type]
            description = "integer"
        else:
            domain = hp.RealInterval(float(param.low), float(param.high))  # type: ignore[arg-type]
        hparams.append(hp.HParam(name, domain, description=description))
    if isinstance(space, JointSpace):  # a search across families: which one, first
        hparams.insert(0, hp.HParam(FAMILY_KEY, hp.Discrete(list(space.spaces))))
    hparams.append(hp.HParam(STATE, hp.Discrete(list(STATES)), description="Optuna's trial state"))
    tags = dict.fromkeys([monitor, *(f"val/{m}" for m in METRICS)])
    metrics = [hp.Metric(tag, display_name=tag) for tag in tags]
    metrics.append(hp.Metric("trial/seconds", display_name="seconds"))
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def write_trial(log_dir: Path, space: Space, trial: optuna.trial.FrozenTrial) -> None:
    """One HParams run for a finished trial: its values, validation metrics and curve."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = {name: hparam_value(v) for name, v in space.hparams(trial.params).items()}
    values[STATE] = trial.state.name
    writer = tf.summary.create_file_writer(str(log_dir / f"trial-{trial.number:04d}"))
    with writer.as_default():
        hp.hparams(
            values,
            trial_id=f"trial-{trial.number:04d}",
            start_time_secs=_seconds(trial.datetime_start),
        )
        _write_session_end(trial)
        for epoch, value in sorted(trial.intermediate_values.items()):
            tf.summary.scalar(
                f"epoch/{trial.user_attrs.get('monitor', 'value')}", value, step=epoch
            )
        step = int(trial.user_attrs.get("best_epoch") or 1)
        for key, value in trial.user_attrs.items():
            if key.startswith("val/") and value is not None:
                tf.summary.scalar(key, float(value), step=step)
        if trial.user_attrs.get("seconds") is not None:
            tf.summary.scalar("trial/seconds", float(trial.user_attrs["seconds"]), step=step)
    writer.close()


def session_status(state: str) -> int:
    """TensorBoard's session status of an Optuna trial state (module docstring)."""
    from tensorboard.plugins.hparams import api_pb2

    return {
        "COMPLETE": api_pb2.STATUS_SUCCESS,
        "PRUNED": api_pb2.STATUS_SUCCESS,
        "FAIL": api_pb2.STATUS_FAILURE,
        "RUNNING": api_pb2.STATUS_RUNNING,
    }.get(state, api_pb2.STATUS_UNKNOWN)


def _write_session_end(trial: optuna.trial.FrozenTrial) -> None:
    import tensorflow as tf
    from tensorboard.plugins.hparams import summary

    end = summary.session_end_pb(
        session_status(trial.state.name), _seconds(trial.datetime_complete)
    )
    tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)


def _seconds(when: Any) -> float | None:
    return when.timestamp() if when is not None else None


def leaderboard_rows(study: optuna.Study, space: Space, monitor: str) -> list[dict[str, Any]]:
    """One row per trial, best first (module docstring)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        row: dict[str, Any] = {
            "trial": trial.number,
            "state": trial.state.name,
            monitor: trial.value if trial.state.name == "COMPLETE" else None,
        }
        for metric in METRICS:
            if f"val/{metric}" != monitor:
                row[f"val/{metric}"] = attrs.get(f"val/{metric}")
        row["best epoch"] = attrs.get("best_epoch")
        row["epochs reported"] = len(trial.intermediate_values) or None
        row["seconds"] = attrs.get("seconds")
        row.update(space.decode(trial.params))
        row["note"] = attrs.get("note") or attrs.get("error") or ""
        rows.append(row)
    rows.sort(key=lambda r: (_ORDER.get(r["state"], 5), -(r[monitor] or 0.0), r["trial"]))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value).replace("|", "/").replace("\n", " ")


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no trials yet)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return buffer.getvalue()


def write_leaderboard(folder: Path, study: optuna.Study, space: Space, monitor: str) -> str:
    """Write ``leaderboard.md`` and ``leaderboard.csv``; returns the Markdown."""
    rows = leaderboard_rows(study, space, monitor)
    text = to_markdown(rows)
    atomic_write_text(folder / "leaderboard.md", text)
    atomic_write_text(folder / "leaderboard.csv", to_csv(rows))
    return text
