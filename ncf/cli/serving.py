"""``ncf export``, ``recommend``, ``similar`` and ``serve``: a finished run as a SavedModel,
asked from the command line or served over the TensorFlow Serving REST API."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ncf.cli.common import Command, print_json
from ncf.errors import NcfError

if TYPE_CHECKING:
    from ncf.serve.limits import Limits

_EXPORT_DIR_HELP = "an export base folder (newest version) or a version folder"


def cmd_export(args: argparse.Namespace) -> int:
    from ncf.serve.export import export_run

    overrides = list(args.overrides) + (["export.exclude_seen=false"] if args.include_seen else [])
    path = export_run(args.run_dir, args.out, args.version, overrides)
    print(f"exported {path}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from ncf.serve.client import Export, format_ranked, ranked_json

    _check_id("--user", args.user)
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
            print_json(ranked_json(ranked, "user", meaning))
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
        print_json(ranked_json(ranked, what, meaning))
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

    _check_id("--item", args.item)
    ranked = Export(args.export_dir).similar([args.item], args.k)[0]
    meaning = "similarity (cosine)"
    if args.json:
        print_json(ranked_json(ranked, "item", meaning))
    else:
        print(format_ranked(ranked, "item", meaning))
    return 0


def _check_id(flag: str, value: str | None) -> None:
    """An empty id is never in an export: the data readers refuse empty ids."""
    if value is not None and not value.strip():
        raise NcfError(
            f"{flag} {value!r}: an empty id; ids are never empty (the data readers refuse "
            "them), so give one as it is written in the data"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from ncf.serve.client import resolve_export
    from ncf.serve.http import ServingApp, listen, run_server
    from ncf.serve.manifest import read_model_info, verify_export
    from ncf.serve.session import SessionModel

    path = resolve_export(args.export_dir)
    limits = _serve_limits(args)
    info = read_model_info(path)
    if int(info.get("format", 1)) < 2:
        raise NcfError(f"{path}: written by an older ncf (scalar k); export the run again")
    verify_export(path, info)  # before TensorFlow reads a damaged file
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


def _serve_limits(args: argparse.Namespace) -> Limits:
    """The server's limits from ``ncf serve``'s flags; a flag out of range is a user mistake."""
    from ncf.serve.limits import Limits

    flags = ("workers", "max_queue", "max_rows", "max_k", "max_results", "max_body_bytes")
    for flag in (*flags, "backlog"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise NcfError(f"--{flag.replace('_', '-')} {value}: must be at least 1")
    if args.request_timeout <= 0:
        raise NcfError(f"--request-timeout {args.request_timeout}: must be positive")
    if not 0 <= args.port <= 65535:  # the resolver would silently take it modulo 65536
        raise NcfError(f"--port {args.port}: must lie between 1 and 65535 (0: any free port)")
    return Limits(
        max_body_bytes=args.max_body_bytes,
        max_rows=args.max_rows,
        max_k=args.max_k,
        max_results=args.max_results,
        request_timeout_s=args.request_timeout,
        workers=args.workers or Limits().workers,
        max_queue=args.max_queue,
        backlog=args.backlog,
    )


def default_model_name(path: Path) -> str:
    """The export base folder's name (``exports/ml100k/3`` -> ``ml100k``), as in TF Serving setups."""
    import re

    parent = path.parent.name if path.name.isdigit() else path.name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", parent) or "model"


def register(sub: argparse._SubParsersAction) -> None:
    _add_export(sub)
    _add_recommend(sub)
    _add_similar(sub)
    _add_serve(sub)


def _add_export(sub: argparse._SubParsersAction) -> None:
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


def _add_recommend(sub: argparse._SubParsersAction) -> None:
    recommend = sub.add_parser("recommend", help="top-k items for a user, or for many users")
    recommend.add_argument("export_dir", help=_EXPORT_DIR_HELP)
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
    _list_args(recommend, cmd_recommend)


def _add_similar(sub: argparse._SubParsersAction) -> None:
    similar = sub.add_parser("similar", help="the items nearest to an item, from an export")
    similar.add_argument("export_dir", help=_EXPORT_DIR_HELP)
    similar.add_argument("--item", required=True, metavar="ID", help="raw id, as in the data")
    _list_args(similar, cmd_similar)


def _list_args(parser: argparse.ArgumentParser, func: Command) -> None:
    """``--k`` and ``--json`` of a command that prints one ranked list, and its function."""
    parser.add_argument(
        "--k", type=int, help="list length (default: the export's export.default_k)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=func)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve an export over the TensorFlow Serving REST API")
    serve.add_argument("export_dir", help=_EXPORT_DIR_HELP)
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
