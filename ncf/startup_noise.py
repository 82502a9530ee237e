"""TensorFlow's start-up lines on standard error left out, and nothing else.

Importing TensorFlow 2.21 on a machine without a GPU writes, from C++, before Python's
logging exists and whatever ``TF_CPP_MIN_LOG_LEVEL`` says (measured on the project machine)::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796170860.115961   25095 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796170860.117068   25095 cudart_stub.cc:31] Could not find cuda drivers ...

twice (two of its shared libraries each carry a copy of absl logging, which writes
everything to stderr until it is initialised), and the first look for a device adds
``E0000 ... cuda_platform.cc:52] failed call to cuInit: ... UNKNOWN ERROR (303)``. The first
lines come from the libraries' static initialisers: no environment variable reaches them
(``TF_CPP_MIN_LOG_LEVEL=3``, ``GLOG_minloglevel``, ``ABSL_MIN_LOG_LEVEL`` and
``CUDA_VISIBLE_DEVICES=-1`` change nothing; ``TF_ENABLE_ONEDNN_OPTS=0`` drops one line by
changing the numerics). A GPU machine adds lines of the same kind (``Unable to register
cuDNN factory``, ``computation placer already registered``).

:func:`install` (``import ncf`` calls it) puts a finder on :data:`sys.meta_path` that wraps
the first ``import tensorflow`` of the process: the import, and the device listing that
calls ``cuInit``, run with file descriptor 2 pointed at a temporary file; afterwards every
line of that file that is not one of :data:`NOISE` is written to the real standard error, in
order. Only that window is filtered: whatever is written to stderr before or after it (ncf's
own ``ncf: error:`` lines, warnings, tracebacks) passes untouched, and so does anything else
printed during it. It also sets ``TF_CPP_MIN_LOG_LEVEL=2`` where it is unset (what the
``ncf`` command always did); ``TF_CPP_MIN_LOG_LEVEL=0`` (the user asks for TensorFlow's info
lines) turns the filter off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any

_PREFIX = r"[IWEF]\d{4} [\d:.]+\s+\d+ "  # absl's "I0000 00:00:1796170860.115961   25095 "
NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        _PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on\.",
        _PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
        _PREFIX + r"cuda_platform\.cc:\d+\] failed call to cuInit: ",
        _PREFIX + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
        _PREFIX + r"cuda_(?:dnn|fft|blas)\.cc:\d+\] Unable to register cu(?:DNN|FFT|BLAS) factory",
        _PREFIX + r"computation_placer\.cc:\d+\] computation placer already registered",
    )
)


def is_noise(line: str) -> bool:
    """Whether ``line`` (without its newline) is one of TensorFlow's start-up lines."""
    return any(pattern.match(line) for pattern in NOISE)


def without_noise(text: str) -> str:
    """``text`` with TensorFlow's start-up lines removed (the other lines as they were)."""
    return "".join(
        line for line in text.splitlines(keepends=True) if not is_noise(line.rstrip("\r\n"))
    )


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Run the block with file descriptor 2 in a temporary file; then write what it held,
    less :data:`NOISE`, to the real standard error."""
    _flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = without_noise(held.read().decode("utf-8", "replace"))
            if kept:
                _write_all(2, kept.encode("utf-8"))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(AttributeError, OSError, ValueError):
            stream.flush()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, its ``exec_module`` run in :func:`filtered_stderr`."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            with filtered_stderr():
                self.loader.exec_module(module)
                _list_devices(module)  # the first look for a CUDA device logs cuInit's failure
        finally:
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def _list_devices(tf: ModuleType) -> None:
    with suppress(Exception):  # never let the filter break an import that worked
        tf.config.list_physical_devices()


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as the other finders would, with a :class:`_QuietLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Filter the first ``import tensorflow`` of this process (module docstring), and make
    ``TF_CPP_MIN_LOG_LEVEL`` 2 unless it is set (TensorFlow's info and warning lines, such
    as XLA's "Compiled cluster" at the first compilation, stay off standard error); nothing
    when TensorFlow is already imported or ``TF_CPP_MIN_LOG_LEVEL`` is 0."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not any(isinstance(finder, QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, QuietTensorFlowImport)]
