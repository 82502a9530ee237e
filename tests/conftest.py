"""Shared fixtures and settings: quiet TensorFlow, the real-data folder, the tiny config, and
things built once per test session however many pytest-xdist workers ask for them.

Test modules import the plain names (``from conftest import TINY, tiny_config``); the
``tests`` folder is on ``sys.path`` under pytest.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"

# The quickstart shrunk to a few seconds of training: every test run starts from it.
TINY = [
    "data.synthetic.users=300",
    "data.synthetic.items=150",
    "data.synthetic.interactions=9000",
    "model.embedding_dim=8",
    "model.mlp_layers=[16,8]",
    "train.batch_size=512",
    "train.learning_rate=0.01",
    "eval.k=[5,10]",
    "eval.sampled_negatives=50",
]


# The modules that take longest, longest first (CPU seconds of their tests and the processes
# they start, measured 2026-12-04: test_export 158 ... test_refit 25; the notebook, 47 s of
# CPU, waits on its kernel for about twice that). With one module per worker (``--dist
# loadfile``) a long module that starts last keeps one worker busy while the other has
# nothing left to do, so these run first and every other module keeps its place after them
# (``--no-loadscope-reorder``: xdist would otherwise order modules by their number of tests).
LONGEST_FIRST = (
    "test_export.py", "test_distribute.py", "test_training.py", "test_cli_commands.py",
    "test_notebook.py", "test_contract.py", "test_tune.py", "test_faults.py",
    "test_startup_noise.py", "test_fold_in.py", "test_cold.py", "test_serving_faults.py",
    "test_history.py", "test_serving.py", "test_derive.py", "test_input_refusals.py",
    "test_tune_models.py", "test_api.py", "test_metadata.py", "test_models.py",
    "test_resources.py", "test_run_integrity.py", "test_refit.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


def tiny_config(tmp_path: Path, *extra: str):
    """The tiny quickstart config with runs under ``tmp_path/runs`` and ``extra`` overrides."""
    from ncf.config import load_config

    return load_config(QUICKSTART, [f"run.dir={tmp_path / 'runs'}", *TINY, *extra])


def set_args(*values: str) -> list[str]:
    """``--set`` arguments for the ncf command: ``set_args("a=1")`` -> ``["--set", "a=1"]``."""
    return [arg for v in values for arg in ("--set", v)]


def _data_dir() -> Path | None:
    env = os.environ.get("NCF_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "ml-100k" / "u.data").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding ``ml-100k/``; tests that need it skip where it is absent."""
    path = _data_dir()
    if path is None:
        pytest.skip(
            "MovieLens 100K not found: set NCF_DATA_DIR to a folder containing ml-100k/u.data"
        )
    return path


@pytest.fixture(scope="session")
def ml100k_dir(data_dir: Path) -> Path:
    return data_dir / "ml-100k"


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder that every pytest-xdist worker of this session sees (their temporary folders'
    common parent); without xdist, this session's temporary folder."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    path.mkdir(exist_ok=True)
    return path


def build_once(shared: Path, name: str, build: Callable[[Path], Path]) -> Path:
    """What ``build(shared / name)`` returns, built by the first process that asks (under a
    file lock) and read back by every other: modules that need the same run or export (each
    module's fixtures may run on another worker) pay for it once. ``build`` returns a path
    inside the folder it is given; the result must not be changed by its users."""
    done = shared / f"{name}.path"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            built = build(shared / name)
            done.with_suffix(".tmp").write_text(str(built))
            done.with_suffix(".tmp").replace(done)
        return Path(done.read_text())
