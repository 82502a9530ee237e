"""What every ``ncf`` command shares: argument helpers, JSON output, logging, exit statuses.

:func:`run_command` turns what a command raised into its exit status: a user mistake
(:class:`ncf.errors.NcfError`) prints one line, ``ncf: error: ...``, and exits with status 2,
and so does an operating-system error with an errno (disk full, permission denied: the path
and the errno); an interrupt exits with 130, output into a closed pipe (``| head``) quietly
with 141; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable

from ncf.errors import NcfError

Command = Callable[[argparse.Namespace], int]


def config_args(parser: argparse.ArgumentParser) -> None:
    """The positional CONFIG and the repeatable ``--set KEY=VALUE`` of a config command."""
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=5 (repeatable; values are YAML)",
    )


def print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


def parse_ks(text: str) -> list[int]:
    """``--k 10,20`` as ``[10, 20]``; anything but positive integers is a user mistake."""
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NcfError(
            f"--k {text!r}: expected comma-separated positive integers, e.g. --k 10,20"
        ) from None
    if not ks or min(ks) <= 0:
        raise NcfError(f"--k {text!r}: expected comma-separated positive integers, e.g. --k 10,20")
    return ks


def log_to_stdout() -> None:
    """Send the library's progress lines (logger ``ncf``) to standard output, as printed text."""
    logger = logging.getLogger("ncf")
    for handler in [h for h in logger.handlers if getattr(h, "ncf_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.ncf_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run_command(func: Command, args: argparse.Namespace) -> int:
    """Run one command; its exit status, or 2 for a user or file-system mistake, 130 on ^C."""
    try:
        return int(func(args) or 0)
    except NcfError as exc:
        print(f"ncf: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (ncf ... | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # the file system refused (a write ncf does not wrap itself)
        if exc.errno is None:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ncf: error: {where}{os.strerror(exc.errno)} (errno {exc.errno})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ncf: interrupted", file=sys.stderr)
        return 130
