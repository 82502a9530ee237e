"""``ncf train`` (one process, resumable) and ``ncf launch`` (N local worker processes)."""

from __future__ import annotations

import argparse
import sys

from ncf.cli.common import config_args
from ncf.errors import NcfError


def cmd_train(args: argparse.Namespace) -> int:
    from ncf.config import load_config
    from ncf.report.text import format_run_result
    from ncf.train import resume_run, train

    verbose = 1 if sys.stdout.isatty() else 0  # the one-line epoch summary is always printed
    if args.resume:
        if args.config or args.overrides:
            raise NcfError(
                "--resume RUN_DIR continues a run with its saved config; drop CONFIG and --set"
            )
        result = resume_run(args.resume, verbose=verbose)
    else:
        if not args.config:
            raise NcfError("ncf train needs a CONFIG file (or --resume RUN_DIR)")
        config = load_config(args.config, args.overrides)
        result = train(config, args.run_dir, resume=not args.fresh, verbose=verbose)
    if "worker" in result.metrics:  # a non-chief worker of a multi-worker job
        metrics = result.metrics
        print(
            f"worker {metrics['worker']} of {metrics['workers']} done; the chief writes "
            f"{result.run_dir / 'metrics.json'}"
        )
        return 0
    print(format_run_result(result.metrics, result.run_dir))
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from ncf.train.launch import launch

    return launch(args.config, args.overrides, args.workers, args.run_dir, args.max_restarts)


def register(sub: argparse._SubParsersAction) -> None:
    _add_train(sub)
    _add_launch(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train", help="train a model or baseline from a config; resumes an interrupted run"
    )
    train.add_argument("config", nargs="?", help="experiment YAML file")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=5 (repeatable)",
    )
    train.add_argument(
        "--run-dir", help="folder for this run (default: <run.dir>/<run.name>/<timestamp>)"
    )
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its saved config"
    )
    train.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run even if an unfinished run of the same config exists",
    )
    train.set_defaults(func=cmd_train)


def _add_launch(sub: argparse._SubParsersAction) -> None:
    launch = sub.add_parser(
        "launch",
        help="train on N local worker processes (multi_worker, TF_CONFIG generated); "
        "restarts the job from its last checkpoint when a worker dies",
    )
    config_args(launch)
    launch.add_argument("--workers", type=int, required=True, help="number of worker processes")
    launch.add_argument(
        "--run-dir", help="folder for this run (default: <run.dir>/<run.name>/<timestamp>)"
    )
    launch.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        help="times the job is restarted after a worker dies (default 3)",
    )
    launch.set_defaults(func=cmd_launch)
