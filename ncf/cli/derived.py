"""``ncf forget`` and ``ncf update``: a new run derived from a finished one (users removed,
interactions added), fine-tuned from its weights or, with ``--exact``, retrained."""

from __future__ import annotations

import argparse
from pathlib import Path

from ncf.errors import NcfError


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


def register(sub: argparse._SubParsersAction) -> None:
    _add_forget(sub)
    _add_update(sub)


def _add_forget(sub: argparse._SubParsersAction) -> None:
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


def _add_update(sub: argparse._SubParsersAction) -> None:
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
