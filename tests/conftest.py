"""Shared fixtures: quiet TensorFlow, the real-data folder, small random data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


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
