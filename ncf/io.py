"""File I/O in one place: atomic writes, JSON and ``.npz``.

Every writer in ncf goes through :func:`atomic_write` (or :func:`atomic_path` for libraries
that insist on writing by file name, such as Keras): the bytes go to a temporary file in the
target's folder, are flushed to disk, and the file is renamed over the target. A crash or a
kill at any moment leaves either the old file or the new one, never half of one.

Files and folders are created with the permissions the process umask gives (``0666 & ~umask``,
``0777 & ~umask``), the same as Keras, TensorBoard and any other tool would. A write that the
operating system refuses (disk full, permission denied, read-only file system) is an
:class:`NcfError` naming the path and the errno; the temporary file is removed and the
target keeps its previous content, so the command can simply be run again once fixed. A
file standing where a folder must be is named as such (:func:`file_in_the_way`).
:func:`write_together` writes several files all or none (a report of three files);
:func:`folder_for` removes the output folders a failed command created.
Reading a JSON or ``.npz`` file that is missing, truncated or corrupt is an :class:`NcfError`
naming the file, too.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import numpy as np

from ncf.errors import NcfError


def write_error(path: str | os.PathLike[str], exc: OSError) -> NcfError:
    """The user-facing error for an OS error while writing ``path`` (disk full, permissions;
    a file where a folder of the path must be: :func:`file_in_the_way`)."""
    code = exc.errno
    if code is None:
        return NcfError(f"{path}: cannot write it ({exc})")
    if code in (errno.EEXIST, errno.ENOTDIR):
        blocker = file_in_the_way(Path(path))
        if blocker is not None:
            need = "a folder is needed here" if blocker == Path(path) else f"{path} needs a folder"
            return NcfError(
                f"{blocker}: is a file, but {need}; move or delete the file, or choose another path"
            )
    name = errno.errorcode.get(code, "")
    return NcfError(
        f"{path}: cannot write it: {os.strerror(code)} (errno {code}{', ' + name if name else ''}); "
        "free some space or fix the permissions, then run the same command again "
        "(an interrupted training run resumes from its last checkpoint)"
    )


def file_in_the_way(path: Path) -> Path | None:
    """``path`` or its nearest existing ancestor when that is not a folder (so ``path`` cannot
    be a folder or lie in one); None when there is none."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def make_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder (created with its parents when missing); an OS error, such as a
    file of that name, is an :class:`NcfError` naming the path (:func:`write_error`)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from None
    return path


@contextmanager
def folder_for(path: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`make_folder` for a command's output: when the body fails, the folders this
    created are removed again if still empty, so a failed first write leaves no trace."""
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]
    make_folder(path)
    try:
        yield path
    except BaseException:
        for folder in created:  # deepest first
            with suppress(OSError):
                folder.rmdir()
        raise


def library_write_error(path: str | os.PathLike[str], message: str) -> NcfError:
    """:func:`write_error` for a library that reports a failed write as text, such as
    TensorFlow's ``"...events.out.tfevents...; No space left on device"``."""
    reasons = [line.rsplit("; ", 1)[-1].strip() for line in message.splitlines() if "; " in line]
    reasons = [re.sub(r"\s*\[Op:\w+\]$", "", reason) for reason in reasons]  # "[Op:SaveV2]"
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
    tmp = _written_temporary(path, write, binary)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise write_error(path, exc) from None


def write_together(files: Mapping[Path, bytes]) -> None:
    """Write every file of ``files`` (path -> content) or none of them: each goes to a
    temporary file next to it first, and only once all are written and flushed are they
    renamed into place. A failure (a full disk) removes the temporaries and names the file
    it was writing; the targets keep what they held before."""
    written: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            written[path] = _written_temporary(path, _writer(data), True)
        for path, tmp in written.items():
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise write_error(path, exc) from None
    finally:
        for tmp in written.values():
            _discard(tmp)


def _writer(data: bytes) -> Callable[[IO[Any]], object]:
    return lambda fh: fh.write(data)


def _written_temporary(path: Path, write: Callable[[IO[Any]], object], binary: bool) -> Path:
    """A temporary file next to ``path`` holding what ``write(fh)`` wrote, flushed to disk;
    on failure it is removed (an :class:`OSError` raised as :func:`write_error` of ``path``)."""
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
    except OSError as exc:
        _discard(tmp)
        raise write_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise
    return tmp


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
