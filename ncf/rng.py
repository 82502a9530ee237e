"""Named random streams derived from the one seed in the config.

Each purpose ("split", "candidates", "negatives/epoch-3", ...) gets its own generator, so
the same config gives the same split, candidates and negatives no matter what ran before
(a resumed run draws epoch 7's negatives exactly as an uninterrupted one does).
"""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, purpose: str, *extra: int) -> np.random.Generator:
    """A generator determined by ``seed``, the ``purpose`` string and optional integers."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode()), *extra])
