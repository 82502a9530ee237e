"""The one error type for user mistakes.

Anything the user can fix (a bad config key, a missing file, an unknown id, a malformed
data row) raises :class:`NcfError` with a message that names the file, line or key and says
how to fix it. The CLI prints the message alone and exits with status 2; everything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class NcfError(Exception):
    """A mistake in the user's input: printed as one line by the CLI, exit status 2."""


class ConfigError(NcfError):
    """A config file or ``--set`` override that does not validate."""


class DataError(NcfError):
    """Data that cannot be read or does not make sense (missing file, column, bad value)."""
