"""Training runs: the run top to bottom (:mod:`.run`), its neural phases (:mod:`.neural`,
:mod:`.phase`, :mod:`.callbacks`, :mod:`.state`) and the run directory (:mod:`.rundir`).

The package itself is callable: ``ncf.train(config, ...)`` is :func:`ncf.api.train`, the
public API's (``docs/api.md``). A function named ``ncf.train`` could not coexist with this
package: importing the package rebinds the name.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from ncf.train.run import RunResult, resume_run, train

__all__ = ["RunResult", "resume_run", "train"]


class _CallablePackage(ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> RunResult:
        """:func:`ncf.api.train`: train (or resume) a run from a config or a YAML path."""
        from ncf.api import train as train_run

        return train_run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
