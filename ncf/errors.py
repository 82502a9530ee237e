"""The one error type for user mistakes.

Anything the user can fix (a bad config key, a missing file, an unknown id, a malformed
data row) raises :class:`NcfError` with a message that names the file, line or key and says
how to fix it. The CLI prints the message alone and exits with status 2; everything else is
a bug and keeps its traceback. :func:`shown` writes a value into such a message.
"""

from __future__ import annotations


class NcfError(Exception):
    """A mistake in the user's input: printed as one line by the CLI, exit status 2."""


class ConfigError(NcfError):
    """A config file or ``--set`` override that does not validate."""


class DataError(NcfError):
    """Data that cannot be read or does not make sense (missing file, column, bad value)."""


def shown(value: object) -> str:
    """``repr(value)`` for a message, a numpy scalar as the plain value it holds: ``'a'`` and
    ``nan``, not ``np.str_('a')`` and ``np.float64(nan)``, which name Python internals."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    return repr(value)
