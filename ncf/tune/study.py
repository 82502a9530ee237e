"""``ncf tune``: a validation-only search over config keys, then one refit and one test.

1. The config (with ``--set`` overrides) and a search space (:mod:`ncf.tune.space`) open an
   Optuna study stored in SQLite, ``STUDY/study.db`` (default ``STUDY`` =
   ``<run.dir>/<run.name>-tune``). Running the same command again resumes it; several
   processes (``--no-refit`` in all but one) can share it. A study remembers its config and
   space and refuses another. Its first trial is the config's own values of the searched keys
   (when they lie inside the space; else the space's ``start``), so the search starts from
   the setting it tunes and chooses it unless a trial beats it on validation. A search across
   families starts each family at its shipped settings (:mod:`ncf.tune.joint`).
2. Each trial is an ordinary ``ncf train`` run in ``STUDY/trials/trial-NNNN`` with the
   sampled values, fitted on train and ranked on validation only (``train.refit`` off, the
   test split never ranked). Its value is the validation metric early stopping watches
   (``train.early_stopping.metric``, sampled NDCG@10 by default); TPE proposes the values.
   Neural trials report that metric after every epoch and are pruned when they fall below
   the median of earlier trials at the same epoch (Optuna's MedianPruner). Baseline trials
   have no epochs. A trial that fails with a user error (a diverged model) is recorded as
   failed and counts as run.
3. Processes send heartbeats; a trial whose process died (killed, machine lost) is marked
   failed after twice the heartbeat interval, and retried once with the same values in the
   same run directory, so it resumes from its last epoch checkpoint.
4. The search ends when the study holds ``--trials`` finished trials or ``--timeout``
   minutes have passed (a trial still running then stops at its next epoch end, pruned).
5. The best completed trial's setting is refit as ``train.refit: true`` does (selection on
   validation again, then a fresh model on train + validation) in
   ``STUDY/best-trial-NNNN``: the one model whose test split is ranked, once.

The leaderboard and HParams dashboard (:mod:`ncf.tune.board`) are rewritten after every
trial; ``STUDY/tune.json`` summarises the choice and the refit's figures.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from ncf.config import Config, apply_overrides, config_to_dict, read_yaml
from ncf.config.model import DEFAULT_TYPE
from ncf.data.dataset import load_dataset
from ncf.errors import ConfigError, NcfError
from ncf.io import read_json, write_json
from ncf.registry import AUTO, family
from ncf.train.run import RunResult, monitor_key, train
from ncf.tune import board
from ncf.tune.joint import DEFAULT_MODELS, FAMILY_KEY, JointSpace, joint_space
from ncf.tune.pruning import FamilyMedianPruner
from ncf.tune.space import SearchSpace, check_space, load_space, parse_space, with_values

Space = SearchSpace | JointSpace

log = logging.getLogger(__name__)

COUNTED = ("COMPLETE", "PRUNED")


@dataclass(frozen=True)
class TuneResult:
    study_dir: Path
    best_trial: int
    best_value: float
    best_values: dict[str, Any]
    leaderboard: str
    refit: RunResult | None


def default_space(model_type: str) -> SearchSpace:
    """The family's own default search space (:attr:`ncf.family.Family.search_space`)."""
    space = family(model_type).search_space
    if not space:
        raise ConfigError(
            f"model.type {model_type} has nothing to search by default; pass --space FILE"
        )
    return parse_space(dict(space), f"the default search space of model.type {model_type}")


def finished_trials(study: optuna.Study) -> int:
    """Completed and pruned trials, and those failed by a user error (they count as run)."""
    return sum(
        t.state.name in COUNTED or (t.state.name == "FAIL" and "error" in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


def open_study(
    folder: Path, identity: dict[str, Any], space: Space, base: Config, heartbeat: int
) -> optuna.Study:
    """Create or resume the study in ``folder/study.db``; a different config or space is an error."""
    folder.mkdir(parents=True, exist_ok=True)
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # optuna >= 4.9
    retry = retry or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{folder.resolve() / 'study.db'}",
            engine_kwargs={"connect_args": {"timeout": 60}},
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=retry(max_retry=1, inherit_intermediate_values=True),
        )
    # Optuna prunes from step n_warmup_steps on; steps are 1-based epochs here.
    kind = FamilyMedianPruner if isinstance(space, JointSpace) else optuna.pruners.MedianPruner
    pruner = kind(
        n_startup_trials=space.prune_after_trials, n_warmup_steps=space.prune_warmup_epochs + 1
    )
    study = optuna.create_study(
        storage=storage, study_name="ncf", direction="maximize", pruner=pruner, load_if_exists=True
    )
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", identity)
        for start in space.starting_points(base):  # the config tuned from comes first
            study.enqueue_trial(start, user_attrs={"note": space.start_note(base)})
    elif stored != identity:
        raise NcfError(
            f"{folder}: this study was started with another config or search space; "
            "pass --study-dir to start a new one (or rerun the original command to resume it)"
        )
    # A resumed study draws fresh random starts rather than repeating the first ones.
    study.sampler = optuna.samplers.TPESampler(
        seed=base.run.seed * 1_000_003 + len(study.trials),
        n_startup_trials=space.startup_trials,
    )
    return study


class Objective:
    """One trial: a ``train`` run with the sampled values, scored on validation only."""

    def __init__(
        self,
        raw: dict[str, Any],
        space: Space,
        folder: Path,
        source: str,
        monitor: str,
        deadline: float | None,
    ) -> None:
        self.raw, self.space, self.folder, self.source = raw, space, folder, source
        self.monitor, self.deadline = monitor, deadline

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.space.sample(trial)
        kind = values.get(FAMILY_KEY, self.raw.get("model", {}).get("type", DEFAULT_TYPE))
        self.neural = family(kind).neural
        run_dir = trial.user_attrs.get("run_dir")  # a retried trial resumes its directory
        if run_dir is None:
            run_dir = str(self.folder / "trials" / f"trial-{trial.number:04d}")
            trial.set_user_attr("run_dir", run_dir)
        trial.set_user_attr("monitor", self.monitor)
        fixed = {"train.refit": False, "train.histograms": False, "run.name": Path(run_dir).name}
        start = time.perf_counter()
        try:
            metrics = self._run(
                with_values(
                    self.raw, {**self.space.fixed_for(values), **values, **fixed}, self.source
                ),
                trial,
                Path(run_dir),
            )
        except optuna.TrialPruned as exc:
            trial.set_user_attr("note", str(exc))
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except NcfError as exc:
            trial.set_user_attr("error", str(exc).splitlines()[0])
            raise
        finally:
            if self.neural:
                import keras

                keras.backend.clear_session()
        protocol, _, name = self.monitor.removeprefix("val/").partition("/")
        for metric in {*board.METRICS, f"{protocol}/{name}"}:
            part, _, key = metric.partition("/")
            trial.set_user_attr(f"val/{metric}", metrics["val"].get(part, {}).get(key))
        trial.set_user_attr("best_epoch", metrics.get("best_epoch"))
        trial.set_user_attr("seconds", metrics.get("train_seconds", time.perf_counter() - start))
        return float(metrics["val"][protocol][name])

    def _deadline(self, trial: optuna.Trial) -> float | None:
        """When the trial's epochs stop: the search's deadline, or, while some family of a
        search across families has not been tried, an equal share of the time left for each
        family still to try (so every family gets tried within the budget)."""
        if self.deadline is None or not isinstance(self.space, JointSpace):
            return self.deadline
        done = ("COMPLETE", "PRUNED", "FAIL")
        tried = {
            t.params.get(FAMILY_KEY)
            for t in trial.study.get_trials(deepcopy=False)
            if t.state.name in done
        }
        untried = set(self.space.spaces) - tried
        if trial.params.get(FAMILY_KEY) not in untried:
            return self.deadline
        now = time.time()
        return now + max(0.0, self.deadline - now) / len(untried)

    def _run(self, config: Config, trial: optuna.Trial, run_dir: Path) -> dict[str, Any]:
        if (run_dir / "metrics.json").is_file():  # finished before its process was killed
            return read_json(run_dir / "metrics.json")
        callbacks = []
        if self.neural:
            from ncf.tune.pruning import PruneOnValidation

            callbacks.append(PruneOnValidation(trial, self.monitor, self._deadline(trial)))
        result = train(config, run_dir, verbose=0, extra_callbacks=callbacks, evaluate_test=False)
        # A trial resumed after a kill did not report the epochs run before it: fill them in.
        key = self.monitor.removeprefix("val/")
        (frozen,) = [t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number]
        for record in result.metrics.get("history", []):
            if record["epoch"] not in frozen.intermediate_values and key in record["val"]:
                trial.report(float(record["val"][key]), record["epoch"])
        return result.metrics


def _after_trial(folder: Path, space: Space, monitor: str, target: int, bar: Any) -> Any:
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        note = trial.user_attrs.get("note") or trial.user_attrs.get("error") or ""
        log.info(
            f"trial {trial.number:3d} {trial.state.name.lower():8s} {monitor} {value}  {space.decode(trial.params)} {note}"
        )
        board.write_trial(folder / "tensorboard", space, trial)
        board.write_leaderboard(folder, study, space, monitor)
        finished = finished_trials(study)
        bar.update(min(finished, target) - bar.n)
        if finished >= target:
            study.stop()

    return callback


@contextmanager
def trial_bar(total: int, done: int) -> Iterator[Any]:
    """On a terminal, a progress bar of the study's finished trials (``7/20 trials``, with
    an ETA) on standard error, the ``ncf`` log lines printed above it; elsewhere nothing."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=None, leave=False)
    with (
        bar,
        logging_redirect_tqdm([logging.getLogger("ncf")]) if not bar.disable else nullcontext(),
    ):
        yield bar


@dataclass(frozen=True)
class _Setup:
    raw: dict[str, Any]  # the config file with --set applied (run.name filled in)
    source: str
    base: Config
    space: Space
    monitor: str
    folder: Path


def _setup(
    config_path: str | Path,
    overrides: list[str] | None,
    space_path: str | Path | None,
    study_dir: str | Path | None,
    models: list[str] | None = None,
) -> _Setup:
    """Read and check the config and the search space before any study is opened."""
    source = str(config_path) + (" (with --set overrides)" if overrides else "")
    raw = apply_overrides(read_yaml(config_path, allow_empty=bool(overrides)), overrides or [])
    raw.setdefault("run", {})
    if isinstance(raw["run"], dict) and raw["run"].get("name") is None:
        raw["run"]["name"] = Path(config_path).stem
    base = with_values(raw, {}, source)
    if models is None and base.model.type == AUTO:
        models = list(DEFAULT_MODELS)
    space: Space
    if models is not None:
        if space_path:
            raise ConfigError(
                "--space names one family's space; with --models each family uses its own"
            )
        has_timestamps = load_dataset(base).interactions.timestamp is not None
        space = joint_space(models, base, has_timestamps)
        for name, own in space.spaces.items():
            extra = {FAMILY_KEY: name, **space.fixed_for({FAMILY_KEY: name})}
            check_space(raw, own, f"the search space of {name} (with {source})", extra)
    elif space_path:
        space = load_space(space_path)
        check_space(raw, space, f"{space_path} (with {source})")
    else:
        space = default_space(base.model.type)
        check_space(raw, space, f"the default search space of {base.model.type} (with {source})")
    if not base.data.split.validation:
        raise ConfigError(
            f"{source}: ncf tune chooses on the validation split; set data.split.validation: true"
        )
    folder = Path(study_dir) if study_dir else Path(base.run.dir) / f"{base.run.name}-tune"
    return _Setup(raw, source, base, space, monitor_key(base), folder)


def _search(study: optuna.Study, setup: _Setup, target: int, minutes: float | None) -> None:
    deadline = time.time() + 60 * minutes if minutes else None
    objective = Objective(setup.raw, setup.space, setup.folder, setup.source, setup.monitor,
                          deadline)  # fmt: skip
    done = finished_trials(study)
    log.info(f"study {setup.folder}: {done} of {target} trials finished")
    with trial_bar(target, done) as bar:
        study.optimize(
            objective,
            timeout=60 * minutes if minutes else None,
            catch=(NcfError,),
            callbacks=[_after_trial(setup.folder, setup.space, setup.monitor, target, bar)],
            gc_after_trial=True,
        )


def tune(
    config_path: str | Path,
    overrides: list[str] | None = None,
    trials: int | None = None,
    timeout_minutes: float | None = None,
    space_path: str | Path | None = None,
    study_dir: str | Path | None = None,
    refit: bool = True,
    heartbeat: int = 30,
    verbose: int = 0,
    models: list[str] | None = None,
) -> TuneResult:
    """Run (or resume) the study ``config_path`` and its search space describe (module
    docstring); with ``models`` (or ``model.type: auto``) a search across those families
    (:mod:`ncf.tune.joint`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    setup = _setup(config_path, overrides, space_path, study_dir, models)
    space, folder, monitor = setup.space, setup.folder, setup.monitor
    identity = {"config": config_to_dict(setup.base), "space": space.model_dump(mode="json")}
    study = open_study(folder, identity, space, setup.base, max(1, int(heartbeat)))
    target = trials or space.trials
    board.write_experiment(folder / "tensorboard", space, monitor)
    if finished_trials(study) < target:
        minutes = timeout_minutes if timeout_minutes is not None else space.timeout_minutes
        _search(study, setup, target, minutes)
    text = board.write_leaderboard(folder, study, space, monitor)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        raise NcfError(
            f"{folder}: no trial completed, so there is nothing to refit; see leaderboard.md"
        )
    best = max(complete, key=lambda t: (t.value, -t.number))
    values = space.decode(best.params)
    run_dir = folder / f"best-trial-{best.number:04d}"
    result = _refit(setup.raw, space, values, run_dir, setup.source, verbose) if refit else None
    summary = {
        "study": str(folder), "monitor": monitor, "trials_finished": finished_trials(study),
        "best_trial": best.number, "best_value": best.value, "best_values": values,
        "refit_run": str(result.run_dir) if result else None,
        "val": result.metrics.get("val") if result else None,
        "test": result.metrics.get("test") if result else None,
    }  # fmt: skip
    write_json(folder / "tune.json", summary)
    return TuneResult(folder, best.number, float(best.value), values, text, result)  # type: ignore[arg-type]


def _refit(
    raw: dict[str, Any], space: Space, values: dict[str, Any], run_dir: Path, source: str,
    verbose: int,
) -> RunResult:  # fmt: skip
    """The chosen setting, selected on validation again and refit on train + validation."""
    if (run_dir / "metrics.json").is_file():
        return RunResult(run_dir, read_json(run_dir / "metrics.json"))
    fixed = {**space.fixed_for(values), "train.refit": True, "run.name": run_dir.name}
    config = with_values(raw, {**values, **fixed}, source)
    log.info(f"refit of the chosen setting in {run_dir}: {values}")
    return train(config, run_dir, verbose=verbose)
