"""Checksums and sanity checks that make a phase folder refuse bad state loudly.

``state.json`` (see :mod:`ncf.train.state`) is *sealed*: it carries ``"sha256"``, the SHA-256
of its own content in canonical form (``json.dumps(payload, sort_keys=True,
separators=(",", ":"))`` without the ``sha256`` key), and ``"checksums"``, the SHA-256 of each
checkpoint file it names, recorded when that file was written. Before a phase resumes,
:func:`verify_state` checks, in order:

1. the file is non-empty UTF-8 JSON holding an object, and its own checksum matches;
2. every field has its type and range: ``epoch`` >= 1, one history record per epoch,
   ``best_epoch`` in ``1..epoch``, ``wait`` >= 0;
3. the files it names are exactly ``epoch-<epoch>.keras`` and ``best-<best_epoch>.weights.h5``:
   plain names inside the phase folder (no other path can be named, and a symbolic link
   leading out of the folder is refused);
4. each named file exists and its SHA-256 matches the recorded one.

A ``state.json`` written before checksums existed (no ``sha256`` key and no checksums) passes
steps 2 and 3 and the existence part of 4, with a warning; one whose ``sha256`` key alone was
removed is refused. Anything else raises
:class:`CorruptState`, whose message names the file and what is wrong with it.

A finished run is sealed the same way: ``metrics.json`` carries its own checksum and, under
``"files"``, the SHA-256 of every file evaluation, export, update and forget read (the model
or baseline, the split, the vocabularies, the data statistics, the config; not the
checkpoints, which have their own, nor the TensorBoard logs). :func:`verify_run` checks them
before a finished run is used, so a damaged or replaced file is refused by name instead of
being loaded (or failing deep inside Keras with a traceback). A ``metrics.json`` that lost
its ``sha256`` key but still records the files is refused; only one with neither (written
before runs were sealed) is read, with a warning. A run without ``metrics.json`` is
unfinished, and nothing of it is evaluated or exported (:class:`ncf.train.rundir.RunDir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SEAL = "sha256"
CHECKPOINT = "epoch-{:04d}.keras"  # the model after that epoch, with its optimizer state
BEST_WEIGHTS = "best-{:04d}.weights.h5"  # the weights of the best epoch so far


class CorruptState(Exception):
    """A state or checkpoint file that must not be resumed from; the message names it."""


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(payload: dict[str, Any]) -> bytes:
    body = {k: v for k, v in payload.items() if k != SEAL}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its own checksum added under ``"sha256"`` (JSON-ready values only)."""
    return {**payload, SEAL: hashlib.sha256(_canonical(payload)).hexdigest()}


def seal_holds(payload: dict[str, Any]) -> bool:
    """Whether ``payload`` carries its own checksum (:func:`seal`) and it matches."""
    return payload.get(SEAL) == hashlib.sha256(_canonical(payload)).hexdigest()


def verify_state(path: Path) -> dict[str, Any]:
    """The sealed payload of the state file at ``path`` once every check above passed."""
    payload = _read(path)
    if SEAL in payload or payload.get("checksums"):  # a seal removed leaves the checksums
        if not seal_holds(payload):
            raise CorruptState(f"{path}: checksum mismatch: the file was changed or corrupted")
    else:
        log.warning(f"{path}: written before checkpoints carried checksums; not verified")
    _check_fields(path, payload)
    for name in named_files(payload):
        _check_file(path, payload, name)
    return payload


def named_files(payload: dict[str, Any]) -> list[str]:
    """The checkpoint file names a state payload refers to."""
    names = [payload.get("checkpoint"), payload.get("best_weights")]
    return [n for n in names if isinstance(n, str)]


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CorruptState(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CorruptState(f"{path}: not UTF-8 text: the file is corrupt") from None
    if not text.strip():
        raise CorruptState(f"{path}: the file is empty")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise CorruptState(f"{path}: not valid JSON ({exc}): truncated or corrupt") from None
    if not isinstance(payload, dict):
        raise CorruptState(f"{path}: expected a JSON object")
    return payload


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(path: Path, payload: dict[str, Any]) -> None:
    """Types, ranges and the file names bound to the epoch numbers (steps 2 and 3)."""
    epoch: Any = payload.get("epoch")
    best_epoch: Any = payload.get("best_epoch")
    if not _is_int(epoch) or epoch < 1:
        raise CorruptState(f"{path}: epoch must be a whole number >= 1, got {epoch!r}")
    history = payload.get("history")
    if not isinstance(history, list) or len(history) != epoch:
        found = len(history) if isinstance(history, list) else history
        raise CorruptState(f"{path}: epoch {epoch} needs {epoch} history records, found {found}")
    if best_epoch is not None and (not _is_int(best_epoch) or not 1 <= best_epoch <= epoch):
        raise CorruptState(f"{path}: best_epoch must be in 1..{epoch}, got {best_epoch!r}")
    if not _is_int(payload.get("wait")) or payload["wait"] < 0:
        raise CorruptState(f"{path}: wait must be a whole number >= 0")
    if payload.get("stopped") is not None and not isinstance(payload["stopped"], str):
        raise CorruptState(f"{path}: stopped must be text or null")
    expected = {
        "checkpoint": CHECKPOINT.format(epoch),
        "best_weights": None if best_epoch is None else BEST_WEIGHTS.format(best_epoch),
    }
    for key, name in expected.items():
        if payload.get(key) != name:
            raise CorruptState(
                f"{path}: {key} must be {name!r} (a file of the same folder), got {payload.get(key)!r}"
            )


def _check_file(path: Path, payload: dict[str, Any], name: str) -> None:
    """Step 4 for one named file: inside the folder, present, and its checksum matches."""
    folder = path.parent
    target = folder / name
    if target.is_symlink() or target.resolve().parent != folder.resolve():
        raise CorruptState(f"{target}: not a plain file of {folder}; refusing to load it")
    if not target.is_file():
        raise CorruptState(f"{target}: missing (named by {path.name})")
    if SEAL not in payload:
        if target.stat().st_size == 0:
            raise CorruptState(f"{target}: the file is empty")
        return
    recorded = (payload.get("checksums") or {}).get(name)
    if recorded is None:
        raise CorruptState(f"{path}: no checksum recorded for {name}")
    if file_sha256(target) != recorded:
        raise CorruptState(f"{target}: checksum mismatch: the file is corrupt or was replaced")


RUN_FILES = "files"  # in metrics.json: relative path -> SHA-256 of the finished run's files
_NOT_SEALED = {"metrics.json", ".lock"}
_OWN_CHECKS = {"checkpoints", "tensorboard"}  # sealed by state.json / append-only logs


def run_files(run: Path) -> dict[str, str]:
    """SHA-256 of every file of the finished run ``run`` that :func:`verify_run` covers, by
    its path relative to ``run`` (forward slashes)."""
    files = {}
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run)
        if rel.parts[0] in _OWN_CHECKS or rel.as_posix() in _NOT_SEALED or not path.is_file():
            continue
        files[rel.as_posix()] = file_sha256(path)
    return files


def seal_run(run: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` as ``metrics.json`` stores it: plain JSON values (numpy scalars converted,
    as the file will read back), the run's file checksums, sealed."""
    from ncf.io import plain

    return seal(plain({**metrics, RUN_FILES: run_files(run)}))


def verify_run(run: Path, payload: dict[str, Any]) -> None:
    """Refuse the finished run ``run`` (its ``metrics.json`` read as ``payload``) when that file
    or a file it records changed after the run finished."""
    path = run / "metrics.json"
    if SEAL not in payload and RUN_FILES not in payload:
        log.warning(f"{path}: written before runs were sealed; its files are not verified")
        return
    if not seal_holds(payload):
        raise CorruptState(
            f"{path}: changed since the run finished (its checksum is missing or does not "
            "match), so its figures may not be the run's; restore the file or train the run again"
        )
    files = payload.get(RUN_FILES)
    if not isinstance(files, dict):
        raise CorruptState(f"{path}: no file checksums recorded; train the run again")
    for name, recorded in files.items():
        target = run / name
        if not target.is_file():
            raise CorruptState(
                f"{target}: missing from the finished run (metrics.json records it); restore "
                "it or train the run again"
            )
        if file_sha256(target) != recorded:
            raise CorruptState(
                f"{target}: changed since the run finished (its SHA-256 differs from the one "
                "metrics.json records): damaged or replaced; restore it or train the run again"
            )
