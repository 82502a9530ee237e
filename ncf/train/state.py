"""A training phase's progress on disk: ``state.json`` and the checkpoint files it names.

Layout of a phase folder (``RUN/checkpoints`` for selection, ``RUN/checkpoints/refit``)::

    epoch-NNNN.keras       the model after epoch NNNN, with its optimizer state (resume)
    best-NNNN.weights.h5   the weights of the best epoch so far (restored at the end)
    state.json             the PhaseState below; names the two files it goes with and
                           carries their SHA-256 and its own (see ncf.train.integrity)
    state.prev.json        the state of the epoch before, whose files are kept as well

Each epoch writes the model files first, then moves the old ``state.json`` to
``state.prev.json`` and writes the new one (all atomically), then removes files neither
state names; so a kill at any point leaves two consistent (state, checkpoint) generations.
Resuming (:func:`load_state`) verifies the newest generation and falls back to the previous
one when anything in it is corrupt; when neither is intact it stops with an
:class:`~ncf.errors.NcfError` naming the files. The best weights are copied out of the
epoch's ``.keras`` file rather than written by HDF5 directly: an HDF5 write that fails
(disk full) leaves the library in a state that crashes the process at exit.
"""

from __future__ import annotations

import json
import logging
import zipfile
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ncf.errors import NcfError
from ncf.io import atomic_path, atomic_write, plain, write_json
from ncf.train.integrity import CorruptState, file_sha256, named_files, seal, verify_state

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
PREVIOUS_FILE = "state.prev.json"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"  # the weights inside a .keras archive


@dataclass
class PhaseState:
    """Where a phase stands after its last completed epoch.

    Attributes:
        epoch: epochs completed.
        history: one record per epoch (loss, validation metrics, seconds).
        best_epoch / best: the epoch with the best monitored validation value, and that
            value (without validation every epoch is the newest and best).
        wait: epochs since the best one.
        stopped: why the phase ended before ``epochs`` (``"early stopping"``), or
            ``"epoch cap"`` when it ran every epoch with validation still improving within
            patience (``"schedule end"`` under a cosine schedule, whose budget is its
            length); None while running.
        checkpoint / best_weights: file names (in the phase folder) of the newest checkpoint
            and of the best weights.
        best_val: the best epoch's validation metrics, as the evaluator returned them.
        checksums: SHA-256 of each file named above, recorded when it was written.
    """

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best: float | None = None
    wait: int = 0
    stopped: str | None = None
    checkpoint: str | None = None
    best_weights: str | None = None
    best_val: dict[str, dict[str, float]] | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    # Set during an epoch, never saved:
    diverged_epoch: int | None = field(default=None, repr=False)
    improved: bool = field(default=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        saved = asdict(self)
        del saved["diverged_epoch"], saved["improved"]
        return saved

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> PhaseState:
        return cls(**{k: v for k, v in payload.items() if k in cls.__dataclass_fields__})


def load_state(folder: Path) -> PhaseState | None:
    """The newest intact saved state of the phase in ``folder``, or None before its first epoch.

    ``state.json`` and its checkpoint files are verified first; if anything is wrong with
    them, ``state.prev.json`` and its files are, and on success become ``state.json`` again
    (a warning names what was wrong). Raises :class:`NcfError` naming the problems when
    neither generation is intact.
    """
    problems = []
    for name in (STATE_FILE, PREVIOUS_FILE):
        path = folder / name
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        try:
            payload = verify_state(path)
        except CorruptState as exc:
            problems.append(str(exc))
            continue
        if name == PREVIOUS_FILE:
            log.warning(
                f"{problems[0]}; resuming from the intact checkpoint of epoch {payload['epoch']}"
            )
            write_json(folder / STATE_FILE, payload)
        return PhaseState.from_json(payload)
    if all(p.endswith(": missing") for p in problems):
        return None
    raise NcfError(
        f"cannot resume from {folder}: {problems[0]}; and no earlier checkpoint is intact "
        f"({problems[1]}). Start the run again with --fresh, or another --run-dir"
    )


def save_state(folder: Path, state: PhaseState) -> None:
    """Write ``state`` sealed as ``state.json``, keep the one it replaces as
    ``state.prev.json``, and delete checkpoint files neither of them names."""
    names = [n for n in (state.checkpoint, state.best_weights) if n]
    # A state resumed from a file written before checksums has none recorded yet.
    state.checksums = {n: state.checksums.get(n) or file_sha256(folder / n) for n in names}
    payload = seal(plain(state.to_json()))
    current = folder / STATE_FILE
    keep = set(named_files(payload))
    if current.is_file():
        previous = current.read_bytes()
        atomic_write(folder / PREVIOUS_FILE, lambda fh: fh.write(previous))
        with suppress(ValueError):  # a corrupt previous state names nothing worth keeping
            keep |= set(named_files(json.loads(previous)))
    write_json(current, payload)
    remove_stale(folder, keep)


def save_model(model: Any, path: Path) -> str:
    """``model`` (with its optimizer state) to the ``.keras`` file ``path``, atomically;
    returns the file's SHA-256."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return file_sha256(path)


def save_best_weights(keras_file: Path, path: Path) -> str:
    """The weights inside the ``.keras`` file ``keras_file`` as the ``.weights.h5`` file
    ``path`` (what ``model.load_weights`` reads), atomically; returns the file's SHA-256."""
    with zipfile.ZipFile(keras_file) as archive:
        data = archive.read(KERAS_WEIGHTS_MEMBER)
    atomic_write(path, lambda fh: fh.write(data))
    return file_sha256(path)


def remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete model files in ``folder`` other than ``keep`` (state files and folders stay)."""
    for path in folder.glob("*"):
        if path.is_file() and path.name not in keep and path.suffix in (".keras", ".h5"):
            path.unlink(missing_ok=True)
