"""``ncf tune``: an Optuna search of config keys on the validation split, then one refit."""

from __future__ import annotations

import argparse
import sys

from ncf.cli.common import config_args
from ncf.errors import NcfError
from ncf.registry import AUTO_MODELS


def cmd_tune(args: argparse.Namespace) -> int:
    from ncf.report.text import format_run_result
    from ncf.tune import tune

    if args.show_space:
        return _show_space(args)
    if args.trials is not None and args.trials <= 0:
        raise NcfError(f"--trials {args.trials}: expected a positive number of trials")
    if args.timeout is not None and args.timeout <= 0:
        raise NcfError(f"--timeout {args.timeout}: expected a positive number of minutes")
    result = tune(
        args.config,
        args.overrides,
        trials=args.trials,
        timeout_minutes=args.timeout,
        space_path=args.space,
        study_dir=args.study_dir,
        refit=not args.no_refit,
        heartbeat=args.heartbeat,
        verbose=1 if sys.stdout.isatty() else 0,
        models=_models(args.models),
    )
    print(f"leaderboard ({result.study_dir / 'leaderboard.md'}):")
    print(result.leaderboard, end="")
    print(f"chosen on validation: trial {result.best_trial} {result.best_values}")
    if result.refit is not None:
        print(format_run_result(result.refit.metrics, result.refit.run_dir))
    return 0


def _models(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise NcfError(
            f"--models {text!r}: name families separated by commas, e.g. --models ease,history"
        )
    return names


def _show_space(args: argparse.Namespace) -> int:
    """Print the default search space of the config's model type (or of each family a search
    across families tries) as a search-space file."""
    from ncf.config import load_config
    from ncf.registry import AUTO
    from ncf.tune.joint import DEFAULT_MODELS

    kind = load_config(args.config, args.overrides).model.type
    models = _models(args.models) or (list(DEFAULT_MODELS) if kind == AUTO else [kind])
    for name in models:
        print(_space_text(name))
    return 0


def _space_text(kind: str) -> str:
    import yaml

    from ncf.tune.study import default_space

    space = default_space(kind)
    raw = space.model_dump(mode="json", exclude={"params"})
    raw["params"] = {
        k: p.model_dump(mode="json", exclude_defaults=True) for k, p in space.params.items()
    }
    header = (
        f"# The default search space of ncf tune for model.type {kind} (ncf tune --space FILE)\n"
    )
    return header + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100)


def register(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune",
        help="search config keys on the validation split (Optuna), refit the best, test it once",
    )
    config_args(tune)
    tune.add_argument(
        "--trials",
        type=int,
        help="finished trials the study aims at, counting earlier runs of it "
        "(default: the search space's trials)",
    )
    tune.add_argument(
        "--timeout",
        type=float,
        metavar="MIN",
        help="stop searching after MIN minutes (a running trial stops at its next epoch end); "
        "the refit follows (default: the search space's timeout_minutes)",
    )
    tune.add_argument(
        "--space",
        help="search-space YAML (default: the model family's own; --show-space prints it)",
    )
    tune.add_argument(
        "--show-space",
        action="store_true",
        help="print the default search space of the config's model.type as a search-space "
        "file, to copy and edit, and exit",
    )
    tune.add_argument(
        "--models",
        metavar="A,B,...",
        help="search across these model families in one budget (each with its own default "
        "space), then refit the best on validation; model.type auto without --models: "
        + ", ".join(AUTO_MODELS),
    )
    tune.add_argument(
        "--study-dir",
        help="folder of the study (default: <run.dir>/<run.name>-tune); rerun to resume",
    )
    tune.add_argument(
        "--no-refit",
        action="store_true",
        help="search only (extra worker processes sharing a study); no refit, no test",
    )
    tune.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        metavar="SECONDS",
        help="a trial whose process is silent for twice this long is failed and retried (default 30)",
    )
    tune.set_defaults(func=cmd_tune)
