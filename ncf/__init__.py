"""ncf: neural collaborative filtering, trained from a config file.

The pieces, in the order data flows through them (see ``docs/`` and ``DESIGN.md``):
``ncf.config`` -> ``ncf.data`` -> ``ncf.models`` / ``ncf.baselines`` (found through
``ncf.registry``) -> ``ncf.evaluation`` -> ``ncf.train`` -> ``ncf.serve`` / ``ncf.report``.

The public Python API is the names below (``docs/api.md``), imported on first use so that
``import ncf`` stays cheap and imports no TensorFlow: :func:`load_config`, :func:`train`,
:func:`evaluate`, :func:`export`, :class:`Export`, :func:`keras_setup`, :func:`compare`,
:func:`compare_chart` and :func:`item_embeddings` (:mod:`ncf.api`), and the errors a user's
mistake raises (:class:`NcfError`, :class:`ConfigError`, :class:`DataError`). ``import ncf``
also keeps TensorFlow's start-up lines off standard error (:mod:`ncf.startup_noise`).
"""

from __future__ import annotations

import importlib
from typing import Any

from ncf.errors import ConfigError, DataError, NcfError
from ncf.startup_noise import install as _quiet_tensorflow_import

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "Export",
    "ItemVectors",
    "KerasSetup",
    "NcfError",
    "Ranked",
    "RunResult",
    "compare",
    "compare_chart",
    "evaluate",
    "export",
    "item_embeddings",
    "keras_setup",
    "load_config",
    "train",
]

_quiet_tensorflow_import()


def __getattr__(name: str) -> Any:
    if name == "train":  # the package ncf.train is callable: ncf.train(config)
        return importlib.import_module("ncf.train")
    if name in __all__:  # the API's functions and classes, from ncf.api
        value = getattr(importlib.import_module("ncf.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ncf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
