"""An export's checksum manifest, ``assets/checksums.json``, checked before the export loads.

``ncf export`` writes it last, into the version folder it is about to move into place: the
SHA-256 of every other file of the version (``saved_model.pb``, ``fingerprint.pb``,
``variables/*``, ``assets/*``) by its path relative to the version folder, sealed with the
SHA-256 of its own content (:func:`ncf.train.integrity.seal`, as a run's ``metrics.json``).
``assets/model.json`` names it (``"checksums"``), so removing the manifest is noticed too.

:func:`verify_export` runs before ``ncf recommend``, ``ncf similar`` and ``ncf serve`` load an
export: a truncated, flipped, replaced, missing or added file is refused with an
:class:`~ncf.errors.NcfError` naming it, instead of failing deep inside TensorFlow's loader
(``Wire format was corrupt``, ``Read less bytes than requested``). Files added to the version
folder afterwards (TF Serving's ``assets.extra/`` warm-up requests) are not checked. To
TensorFlow Serving and ``saved_model_cli`` the manifest is one more file in ``assets/``,
which they do not read.
An export written before manifests existed (``model.json`` names none) loads with a warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ncf.errors import NcfError
from ncf.io import write_json
from ncf.train.integrity import file_sha256, seal, seal_holds

log = logging.getLogger(__name__)

MANIFEST = "assets/checksums.json"
FILES = "files"


def export_files(version: Path) -> dict[str, str]:
    """SHA-256 of every file of the version folder but the manifest, by relative path."""
    found = {}
    for path in sorted(version.rglob("*")):
        name = path.relative_to(version).as_posix()
        if path.is_file() and name != MANIFEST:
            found[name] = file_sha256(path)
    return found


def write_manifest(version: Path) -> None:
    """Seal the finished version folder ``version`` (its last file)."""
    write_json(version / MANIFEST, seal({FILES: export_files(version)}))


def read_model_info(version: Path) -> dict[str, Any]:
    """``assets/model.json`` of the export ``version``; missing or damaged: an NcfError."""
    path = version / "assets" / "model.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NcfError(
            f"{path}: not found; this SavedModel was not written by ncf export"
        ) from None
    except (OSError, ValueError):
        raise NcfError(f"{path}: cannot read it as JSON: damaged; export the run again") from None
    if not isinstance(info, dict):
        raise NcfError(f"{path}: not a JSON object: damaged; export the run again")
    return info


def verify_export(version: Path, info: dict[str, Any]) -> None:
    """Refuse the export ``version`` (its ``assets/model.json`` read as ``info``) when a file
    differs from what its manifest records."""
    path = version / MANIFEST
    if info.get("checksums") is None:
        log.warning(f"{version}: written before exports carried checksums; not verified")
        return
    again = "restore the export or export the run again"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NcfError(f"{path}: missing (assets/model.json names it); {again}") from None
    except (OSError, ValueError):
        raise NcfError(f"{path}: cannot read it as JSON: damaged; {again}") from None
    files = payload.get(FILES) if isinstance(payload, dict) else None
    if not isinstance(files, dict) or not seal_holds(payload):
        raise NcfError(f"{path}: changed since the export was written (checksum mismatch); {again}")
    for name, recorded in files.items():
        target = version / name
        if not target.is_file():
            raise NcfError(f"{target}: missing from the export (its manifest records it); {again}")
        if file_sha256(target) != recorded:
            raise NcfError(
                f"{target}: changed since the export was written (its SHA-256 differs from the "
                f"one {MANIFEST} records): damaged or replaced; {again}"
            )
