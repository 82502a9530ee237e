"""The ``ncf`` command: parses arguments and delegates. No logic lives here.

User mistakes (:class:`ncf.errors.NcfError`) print one line, ``ncf: error: ...``, and exit
with status 2, and so does an operating-system error with an errno (disk full, permission
denied: the path and the errno); anything else is a bug and keeps its traceback. The library
reports progress through the ``ncf`` logger; this module sends it to standard output.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ncf.errors import NcfError


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
    from ncf.report.text import format_stats

    config = load_config(args.config, args.overrides)
    stats = data_stats(load_dataset(config))
    if args.json:
        _print_json(stats)
    else:
        print(format_stats(stats))
    return 0


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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ncf.report.text import format_metrics, headline
    from ncf.train.rundir import RunDir

    run = RunDir(args.run_dir)
    protocols = ["sampled", "full"] if args.protocol == "both" else [args.protocol]
    ks = _parse_ks(args.k) if args.k else run.config.eval.k
    metrics = run.evaluate(args.split, protocols, ks)
    if args.json:
        _print_json(metrics)
    else:
        print(f"{run.path} ({run.config.model.type}), {args.split} split")
        print(format_metrics(metrics, headline(metrics)))
    return 0


def _parse_ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NcfError(
            f"--k {text!r}: expected comma-separated positive integers, e.g. --k 10,20"
        ) from None
    if not ks or min(ks) <= 0:
        raise NcfError(f"--k {text!r}: expected comma-separated positive integers, e.g. --k 10,20")
    return ks


def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ncf.report.compare import collect, to_markdown, write_report

    ks = _parse_ks(args.k)
    rows = collect(args.run_dirs, ks)
    print(to_markdown(rows), end="")
    if args.out:
        for path in write_report(rows, Path(args.out), ks[0]):
            print(f"wrote {path}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ncf.report.text import format_run_result
    from ncf.tune import tune

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
    )
    print(f"leaderboard ({result.study_dir / 'leaderboard.md'}):")
    print(result.leaderboard, end="")
    print(f"chosen on validation: trial {result.best_trial} {result.best_values}")
    if result.refit is not None:
        print(format_run_result(result.refit.metrics, result.refit.run_dir))
    return 0


def _add_tune_command(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune",
        help="search config keys on the validation split (Optuna), refit the best, test it once",
    )
    _config_args(tune)
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
        "--space", help="search-space YAML (default: configs/search/<model.type>.yaml)"
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


def cmd_forget(args: argparse.Namespace) -> int:
    from ncf.report.text import format_run_result, plural
    from ncf.train.derive import default_out, derive_run
    from ncf.train.forget import forget_users
    from ncf.train.rundir import RunDir, resolve_run

    if args.epochs < 1:
        raise NcfError(f"--epochs {args.epochs}: must be at least 1")
    source = RunDir(resolve_run(args.run_dir))
    source.metrics()  # a finished run only
    change = forget_users(source, args.user)
    out = Path(args.out) if args.out else default_out(source, "forget")
    how = {"command": "forget", "epochs": args.epochs}
    path, metrics = derive_run(source, change, out, epochs=args.epochs, exact=args.exact, how=how)
    info = metrics["derived"]
    print(
        f"forgot {plural(info['forgotten_users'], 'user', 'users')} "
        f"({plural(info['removed_interactions'], 'interaction', 'interactions')}) "
        f"by {info['method']} in {info['seconds']:.1f}s"
    )
    print(format_run_result(metrics, path))
    print(
        f"{source.path} and its exports still hold these users: delete them "
        "(see README, 'Forgetting a user')"
    )
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    from ncf.report.text import format_run_result, plural
    from ncf.train.derive import default_out, derive_run
    from ncf.train.rundir import RunDir, resolve_run
    from ncf.train.update import add_interactions

    if args.epochs < 1:
        raise NcfError(f"--epochs {args.epochs}: must be at least 1")
    source = RunDir(resolve_run(args.run_dir))
    source.metrics()  # a finished run only
    tables = {"item": args.item_features, "user": args.user_features}
    features = {side: Path(f) for side, f in tables.items() if f is not None}
    change = add_interactions(source, Path(args.data), args.replay, features)
    out = Path(args.out) if args.out else default_out(source, "update")
    how = {"command": "update", "data": Path(args.data).name, "epochs": args.epochs}
    how["replay"] = args.replay
    how.update({f"{side}_features": path.name for side, path in features.items()})
    path, metrics = derive_run(source, change, out, epochs=args.epochs, exact=args.exact, how=how)
    info = metrics["derived"]
    print(
        f"added {plural(info['new_interactions'], 'interaction', 'interactions')} "
        f"({plural(info['new_users'], 'new user', 'new users')}, "
        f"{plural(info['new_items'], 'new item', 'new items')}) by {info['method']} "
        f"in {info['seconds']:.1f}s"
    )
    print(format_run_result(metrics, path))
    print(f"export it as a new version: ncf export {path} --out EXPORT_BASE")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ncf.serve.export import export_run

    overrides = list(args.overrides) + (["export.exclude_seen=false"] if args.include_seen else [])
    path = export_run(args.run_dir, args.out, args.version, overrides)
    print(f"exported {path}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from ncf.serve.client import Export, format_ranked, ranked_json

    if args.explain and args.user is None:
        raise NcfError("--explain goes with --user ID (the user's own items are the reasons)")
    if args.new_items is not None and args.user is None:
        raise NcfError("--new-items goes with --user ID")
    if args.user is None and args.history is None:
        return _recommend_many(args)
    if args.out:
        raise NcfError("--out goes with --all or --users FILE; --user and --history print one list")
    export = Export(args.export_dir)
    what = "user" if args.history is None else "history"
    if args.new_items is not None:
        if args.user is None or args.explain:
            raise NcfError("--new-items goes with --user ID (and without --explain)")
        ranked = export.recommend_new_items(args.user, args.new_items, args.k)
        meaning = f"{export.score_meaning}, from the item's features alone"
        if not ranked.known:
            raise NcfError(f"user {args.user!r} is not in the export")
        if args.json:
            _print_json(ranked_json(ranked, "user", meaning))
        else:
            print(format_ranked(ranked, "user", meaning))
        return 0
    if args.history is not None:
        ranked = export.recommend_from_history(args.history.split(","), args.k)
    elif args.explain:
        ranked = export.explain([args.user], args.k)[0]
    else:
        ranked = export.recommend([args.user], args.k)[0]
    meaning = export.score_meaning if ranked.known else export.fallback_meaning
    if args.json:
        _print_json(ranked_json(ranked, what, meaning))
    else:
        print(format_ranked(ranked, what, meaning))
    return 0


def _recommend_many(args: argparse.Namespace) -> int:
    from ncf.serve.batch import read_users, recommend_batch
    from ncf.serve.client import Export

    if not args.out:
        raise NcfError("--all and --users need --out FILE (.parquet or .csv)")
    export = Export(args.export_dir)
    users = export.user_ids() if args.all else read_users(args.users)
    result = recommend_batch(export, users, args.k, args.out, args.batch_size)
    print(
        f"wrote {result.rows} recommendations for {result.users} users "
        f"({result.unknown_users} unknown: most popular items) to {result.path} "
        f"in {result.seconds:.1f}s"
    )
    print(f"score: {export.score_meaning}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from ncf.serve.client import Export, format_ranked, ranked_json

    ranked = Export(args.export_dir).similar([args.item], args.k)[0]
    meaning = "similarity (cosine)"
    if args.json:
        _print_json(ranked_json(ranked, "item", meaning))
    else:
        print(format_ranked(ranked, "item", meaning))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ncf.serve.client import resolve_export
    from ncf.serve.http import ServingApp, listen, run_server
    from ncf.serve.limits import Limits
    from ncf.serve.session import SessionModel

    path = resolve_export(args.export_dir)
    if not (path / "assets" / "model.json").is_file():
        raise NcfError(
            f"{path}: no assets/model.json; this SavedModel was not written by ncf export"
        )
    flags = ("workers", "max_queue", "max_rows", "max_k", "max_results", "max_body_bytes")
    for flag in (*flags, "backlog"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise NcfError(f"--{flag.replace('_', '-')} {value}: must be at least 1")
    if args.request_timeout <= 0:
        raise NcfError(f"--request-timeout {args.request_timeout}: must be positive")
    if not 0 <= args.port <= 65535:  # the resolver would silently take it modulo 65536
        raise NcfError(f"--port {args.port}: must lie between 1 and 65535 (0: any free port)")
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_rows=args.max_rows,
        max_k=args.max_k,
        max_results=args.max_results,
        request_timeout_s=args.request_timeout,
        workers=args.workers or Limits().workers,
        max_queue=args.max_queue,
        backlog=args.backlog,
    )
    info = json.loads((path / "assets" / "model.json").read_text(encoding="utf-8"))
    if int(info.get("format", 1)) < 2:
        raise NcfError(f"{path}: written by an older ncf (scalar k); export the run again")
    sock = listen(args.host, args.port, limits.backlog)
    version = int(path.name) if path.name.isdigit() else 0
    name = args.model_name or default_model_name(path)
    model = SessionModel(path)
    model.warm_up()
    app = ServingApp(model, version, name, int(info["num_items"]), limits)
    if args.quiet:
        logging.getLogger("ncf.serve.http").setLevel(logging.WARNING)
    host, port = sock.getsockname()[:2]
    print(f"serving version {version} at http://{host}:{port}/v1/models/{name}", flush=True)
    run_server(app, sock)
    print("stopped: every request in flight was answered", flush=True)
    return 0


def default_model_name(path: Path) -> str:
    """The export base folder's name (``exports/ml100k/3`` -> ``ml100k``), as in TF Serving setups."""
    import re

    parent = path.parent.name if path.name.isdigit() else path.name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", parent) or "model"


def _add_serving_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export", help="write a finished run as a SavedModel (TF Serving layout)"
    )
    export.add_argument(
        "run_dir", help="a finished run directory (or a folder of runs: the newest)"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="EXPORT_BASE",
        help="base folder; versions go in EXPORT_BASE/<N>",
    )
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.add_argument(
        "--include-seen",
        action="store_true",
        help="recommend may return items the user already interacted with",
    )
    export.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an export.* key, e.g. --set export.default_k=20",
    )
    export.set_defaults(func=cmd_export)
    recommend = sub.add_parser("recommend", help="top-k items for a user, or for many users")
    recommend.add_argument(
        "export_dir", help="an export base folder (newest version) or a version folder"
    )
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="ID", help="raw id, as in the data: print one list")
    who.add_argument("--all", action="store_true", help="every user in the export (needs --out)")
    who.add_argument("--users", metavar="FILE", help="a file of user ids, one per line (--out)")
    who.add_argument(
        "--history",
        metavar="ITEM,ITEM,...",
        help="item ids a user unknown to the export just interacted with: their top-k "
        "(recommend_from_history; the items themselves are not recommended)",
    )
    recommend.add_argument(
        "--new-items",
        metavar="FILE",
        help="with --user: rank the items of this CSV/Parquet table, unseen at training time, "
        "from their features alone (score_items_by_features; the run's data.item_features)",
    )
    recommend.add_argument(
        "--explain",
        action="store_true",
        help="with --user: each item with the user's own items that contributed most",
    )
    recommend.add_argument("--out", metavar="FILE", help="with --all/--users: .parquet or .csv")
    recommend.add_argument(
        "--batch-size", type=int, default=1024, help="users per call with --all/--users"
    )
    similar = sub.add_parser("similar", help="the items nearest to an item, from an export")
    similar.add_argument(
        "export_dir", help="an export base folder (newest version) or a version folder"
    )
    similar.add_argument("--item", required=True, metavar="ID", help="raw id, as in the data")
    for cmd, func in ((recommend, cmd_recommend), (similar, cmd_similar)):
        cmd.add_argument(
            "--k", type=int, help="list length (default: the export's export.default_k)"
        )
        cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
        cmd.set_defaults(func=func)
    serve = sub.add_parser("serve", help="serve an export over the TensorFlow Serving REST API")
    serve.add_argument(
        "export_dir", help="an export base folder (newest version) or a version folder"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    serve.add_argument(
        "--port", type=int, default=8501, help="port (default 8501, as TF Serving's REST port)"
    )
    serve.add_argument(
        "--model-name", help="NAME in /v1/models/NAME (default: the export base folder's name)"
    )
    limits = serve.add_argument_group("limits")
    limits.add_argument("--workers", type=int, help="model calls at once (default: cores, >= 2)")
    limits.add_argument(
        "--max-queue", type=int, default=1024, help="requests waiting for a worker before 503"
    )
    limits.add_argument("--max-rows", type=int, default=1024, help="rows (users) per request")
    limits.add_argument("--max-k", type=int, default=1000, help="largest k a request may ask")
    limits.add_argument(
        "--max-results",
        type=int,
        default=1 << 18,
        help="largest rows x k of one request (bounds an answer's size)",
    )
    limits.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="largest request body (413 above)"
    )
    limits.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send a whole request (408 after)",
    )
    limits.add_argument("--backlog", type=int, default=2048, help="listen backlog")
    serve.add_argument("--quiet", action="store_true", help="no request log lines")
    serve.set_defaults(func=cmd_serve)


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

    launch = sub.add_parser(
        "launch",
        help="train on N local worker processes (multi_worker, TF_CONFIG generated); "
        "restarts the job from its last checkpoint when a worker dies",
    )
    _config_args(launch)
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

    ev = sub.add_parser("evaluate", help="re-evaluate a finished run (model or baseline)")
    ev.add_argument("run_dir", help="a run directory printed by ncf train")
    ev.add_argument("--protocol", choices=["sampled", "full", "both"], default="both")
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
    _add_tune_command(sub)
    _add_derive_commands(sub)
    _add_serving_commands(sub)
    return parser


def _add_derive_commands(sub: argparse._SubParsersAction) -> None:
    forget = sub.add_parser(
        "forget", help="a new run without some users: their data, ids and embedding rows"
    )
    forget.add_argument(
        "run_dir", help="a finished run directory (or a folder of runs: the newest)"
    )
    forget.add_argument(
        "--user", action="append", required=True, metavar="ID", help="raw user id (repeatable)"
    )
    forget.add_argument(
        "--exact",
        action="store_true",
        help="neural models: retrain from scratch without them (the only exact removal); "
        "default: fine-tune the old weights without them",
    )
    forget.add_argument(
        "--epochs", type=int, default=2, help="fine-tuning epochs without --exact (default 2)"
    )
    forget.add_argument("--out", help="the new run directory (default: RUN_DIR-forget-<time>)")
    forget.set_defaults(func=cmd_forget)
    update = sub.add_parser(
        "update", help="a new run that has also seen new interactions (new users and items too)"
    )
    update.add_argument(
        "run_dir", help="a finished run directory (or a folder of runs: the newest)"
    )
    update.add_argument(
        "--data",
        required=True,
        metavar="NEW_FILE",
        help="CSV or Parquet of new interactions, with the run's data.columns (else user,item)",
    )
    for side in ("item", "user"):
        update.add_argument(
            f"--{side}-features",
            metavar="FILE",
            help=f"CSV or Parquet of the new {side}s' feature rows (the columns of the run's "
            f"data.{side}_features), for a model that reads {side} side features",
        )
    update.add_argument(
        "--epochs", type=int, default=2, help="fine-tuning epochs of a neural model (default 2)"
    )
    update.add_argument(
        "--replay",
        type=float,
        default=4.0,
        help="old interactions replayed per new one while fine-tuning (default 4)",
    )
    update.add_argument(
        "--exact",
        action="store_true",
        help="neural models: retrain from scratch on all the data instead of fine-tuning",
    )
    update.add_argument("--out", help="the new run directory (default: RUN_DIR-update-<time>)")
    update.set_defaults(func=cmd_update)


def _version() -> str:
    from ncf import __version__

    return f"ncf {__version__}"


def _log_to_stdout() -> None:
    """Send the library's progress lines (logger ``ncf``) to standard output, as printed text."""
    logger = logging.getLogger("ncf")
    for handler in [h for h in logger.handlers if getattr(h, "ncf_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.ncf_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported
    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_stdout()
    try:
        return int(args.func(args) or 0)
    except NcfError as exc:
        print(f"ncf: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (a write ncf does not wrap itself)
        if exc.errno is None:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ncf: error: {where}{os.strerror(exc.errno)} (errno {exc.errno})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ncf: interrupted", file=sys.stderr)
        return 130


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``ncf`` console command: :func:`main`, then exit with its status, quickly.

    At exit the interpreter's last garbage collection walks every object still alive, and a
    process that imported TensorFlow and Keras holds millions of them (modules, traced
    graphs, protocol buffers): measured, 6.5 s after the last line for a bare ``import
    tensorflow, keras`` at load 13 on 2 cores, 0.4 s with the objects frozen first. By now
    every file the command wrote is closed and its output is flushed, so the live objects are
    moved out of the collector's reach (``gc.freeze``); the rest of the shutdown (atexit
    handlers, stream flushes, the exit status) runs as usual. What it skips is collecting
    reference cycles among those objects, whose memory the operating system reclaims anyway.
    """
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
