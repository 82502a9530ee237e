"""``ncf data stats``: what the data a config describes holds (users, items, splits)."""

from __future__ import annotations

import argparse

from ncf.cli.common import config_args, print_json


def cmd_data_stats(args: argparse.Namespace) -> int:
    from ncf.config import load_config
    from ncf.data.dataset import data_stats, load_dataset
    from ncf.report.text import format_stats

    config = load_config(args.config, args.overrides)
    stats = data_stats(load_dataset(config))
    if args.json:
        print_json(stats)
    else:
        print(format_stats(stats))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect the data a config describes")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    stats = data_sub.add_parser("stats", help="users, items, density, split sizes, per-user counts")
    config_args(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_data_stats)
