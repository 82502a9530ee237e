"""A training phase's progress on disk: ``state.json`` and the checkpoint files it names.

Layout of a phase folder (``RUN/checkpoints`` for selection, ``RUN/checkpoints/refit``)::

    epoch-NNNN.keras       the model after epoch NNNN, with its optimizer state (resume)
    best-NNNN.weights.h5   the weights of the best epoch so far (restored at the end)
    state.json             the PhaseState below; names the two files it goes with

Each epoch writes the two model files first and ``state.json`` last (all atomically), then
removes older files, so a kill at any point leaves a consistent (state, checkpoint) pair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ncf.io import atomic_path, read_json, write_json

STATE_FILE = "state.json"


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
            patience; None while running.
        checkpoint / best_weights: file names (in the phase folder) of the newest checkpoint
            and of the best weights.
        best_val: the best epoch's validation metrics, as the evaluator returned them.
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
    """The saved state of the phase in ``folder``, or None before its first epoch."""
    path = folder / STATE_FILE
    return PhaseState.from_json(read_json(path)) if path.is_file() else None


def save_state(folder: Path, state: PhaseState) -> None:
    write_json(folder / STATE_FILE, state.to_json())


def save_model(model: Any, path: Path) -> None:
    """``model`` to ``path`` atomically: a whole ``.keras`` file or a ``.weights.h5`` file."""
    with atomic_path(path) as tmp:
        if path.name.endswith(".weights.h5"):
            model.save_weights(tmp)
        else:
            model.save(tmp)


def remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete model files in ``folder`` other than ``keep`` (state.json and folders stay)."""
    for path in folder.glob("*"):
        if path.is_file() and path.name not in keep and path.suffix in (".keras", ".h5"):
            path.unlink(missing_ok=True)
