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
