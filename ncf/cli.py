"""The ``ncf`` command: parses arguments and delegates. No logic lives here.

User mistakes (:class:`ncf.errors.NcfError`) print one line, ``ncf: error: ...``, and exit
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ncf.errors import NcfError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=5 (repeatable; values are YAML)",
    )


def _print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


def cmd_data_stats(args: argparse.Namespace) -> int:
    from ncf.config import load_config
    from ncf.data.dataset import data_stats, load_dataset
    from ncf.reporting import format_stats

    config = load_config(args.config, args.overrides)
    stats = data_stats(load_dataset(config))
    if args.json:
        _print_json(stats)
    else:
        print(format_stats(stats))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ncf.config import load_config
    from ncf.reporting import format_metrics
    from ncf.training import resume_run, train

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
    print(f"\ntest metrics ({result.metrics['model']}):")
    print(format_metrics(result.metrics["test"], _headline(result.metrics["test"])))
    print(f"\nrun directory: {result.run_dir}")
    return 0


def _headline(metrics: dict) -> list[str]:
    first = next(iter(metrics.values()), {})
    return [k for k in first if k.split("@")[0] in ("HR", "NDCG", "MRR", "Recall")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncf",
        description="Neural collaborative filtering: train from a config, evaluate, compare, export, serve.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    data = sub.add_parser("data", help="inspect the data a config describes")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    stats = data_sub.add_parser("stats", help="users, items, density, split sizes, per-user counts")
    _config_args(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_data_stats)

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
    return parser


def _version() -> str:
    from ncf import __version__

    return f"ncf {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NcfError as exc:
        print(f"ncf: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ncf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
