"""``ncf evaluate`` (re-rank one finished run) and ``ncf compare`` (a table over runs)."""

from __future__ import annotations

import argparse

from ncf.cli.common import parse_ks, print_json


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ncf.report.text import format_metric_table
    from ncf.train.rundir import RunDir

    run = RunDir(args.run_dir)
    protocols = ["sampled", "full"] if args.protocol == "both" else [args.protocol]
    ks = parse_ks(args.k) if args.k else run.config.eval.k
    metrics = run.evaluate(args.split, protocols, ks)
    if args.json:
        print_json(metrics)
    else:
        print(f"{run.path} ({run.config.model.type}), {args.split} split")
        print(format_metric_table(metrics))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ncf.report.compare import collect, to_markdown, write_report

    ks = parse_ks(args.k)
    rows = collect(args.run_dirs, ks)
    print(to_markdown(rows), end="")
    if args.out:
        for path in write_report(rows, Path(args.out), ks[0]):
            print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="re-evaluate a finished run (model or baseline)")
    ev.add_argument("run_dir", help="a run directory printed by ncf train")
    ev.add_argument(
        "--protocol",
        choices=["sampled", "full", "both"],
        default="both",
        help="sampled: the held-out item among its saved negatives (He et al. 2017); full: "
        "among every item the user did not train on (Krichene & Rendle 2020); both (default)",
    )
    ev.add_argument("--k", help="comma-separated cut-offs (default: the run's eval.k), e.g. 10,20")
    ev.add_argument(
        "--split", choices=["test", "val"], default="test", help="which held-out split to rank"
    )
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.set_defaults(func=cmd_evaluate)

    compare = sub.add_parser(
        "compare", help="one table and chart over several runs of the same split"
    )
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument(
        "--out", help="folder for comparison.md, comparison.csv and comparison.png"
    )
    compare.add_argument(
        "--k", default="10", help="cut-offs shown (default 10; the chart uses the first)"
    )
    compare.set_defaults(func=cmd_compare)
