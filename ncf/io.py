"""File I/O in one place: atomic writes, JSON and ``.npz``.

Every writer in ncf goes through :func:`atomic_write` (or :func:`atomic_path` for libraries
that insist on writing by file name, such as Keras): the bytes go to a temporary file in the
target's folder, are flushed to disk, and the file is renamed over the target. A crash or a
kill at any moment leaves either the old file or the new one, never half of one.

Files and folders are created with the permissions the process umask gives (``0666 & ~umask``,
``0777 & ~umask``), the same as Keras, TensorBoard and any other tool would. A write that the
operating system refuses (disk full, permission denied, read-only file system) is an
:class:`NcfError` naming the path and the errno; the temporary file is removed and the
target keeps its previous content, so the command can simply be run again once fixed.
Reading a JSON or ``.npz`` file that is missing, truncated or corrupt is an :class:`NcfError`
naming the file, too.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import numpy as np

from ncf.errors import NcfError


def write_error(path: str | os.PathLike[str], exc: OSError) -> NcfError:
    """The user-facing error for an OS error while writing ``path`` (disk full, permissions)."""
    code = exc.errno
    if code is None:
        return NcfError(f"{path}: cannot write it ({exc})")
    name = errno.errorcode.get(code, "")
    return NcfError(
        f"{path}: cannot write it: {os.strerror(code)} (errno {code}{', ' + name if name else ''}); "
        "free some space or fix the permissions, then run the same command again "
        "(an interrupted training run resumes from its last checkpoint)"
    )


def library_write_error(path: str | os.PathLike[str], message: str) -> NcfError:
    """:func:`write_error` for a library that reports a failed write as text, such as
    TensorFlow's ``"...events.out.tfevents...; No space left on device"``."""
    reasons = [line.rsplit("; ", 1)[-1].strip() for line in message.splitlines() if "; " in line]
    reason = reasons[0] if reasons else message.strip().splitlines()[0]
    codes = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EIO)
    code = {os.strerror(c): c for c in codes}.get(reason)
    if code is not None:
        return write_error(path, OSError(code, reason))
    return NcfError(f"{path}: cannot write it ({reason}); run the same command again once fixed")


def _temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], binary: bool = True
) -> None:
    """Call ``write(fh)`` on a temporary file next to ``path`` and rename it into place.

    The file gets the umask's permissions; an :class:`OSError` becomes an :class:`NcfError`
    naming ``path`` (see :func:`write_error`), with no temporary file left behind.
    """
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL on a fresh name, mode 0666: the kernel applies the umask (mkstemp forces 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        fh: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise write_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    with suppress(OSError):
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text), binary=False)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file name next to ``path`` (same suffix) that becomes ``path`` on success.

    For writers that take a file name rather than a handle::

        with atomic_path(run / "model.keras") as tmp:
            model.save(tmp)

    An :class:`OSError` raised by the writer or the rename becomes an :class:`NcfError`
    naming ``path``.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    tmp = _temporary_name(path, f".tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        _discard(tmp)


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """``payload`` as indented JSON (numpy scalars and arrays allowed), atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=_jsonable) + "\n")


def plain(payload: Any) -> Any:
    """``payload`` with numpy scalars and arrays turned into plain Python values, as
    :func:`write_json` writes them (so a checksum of it matches the file read back)."""
    return json.loads(json.dumps(payload, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document at ``path``; a missing or unreadable file is a user-facing
    :class:`NcfError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NcfError(f"{path}: not found; is this a complete run directory?") from None
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise NcfError(f"{path}: cannot read it as JSON ({exc}); the file is corrupt") from None


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Several named arrays in one ``.npz`` file, atomically."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read into memory; a corrupt file is an :class:`NcfError`."""
    try:
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise NcfError(f"{path}: not found; is this a complete run directory?") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise NcfError(f"{path}: cannot read it ({exc}); the file is corrupt") from None
