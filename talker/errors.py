"""talker's expected failures and how the command-line tools report them.

Every error a user can cause or fix (a config key, a damaged dataset or medium, an unreadable
checkpoint, a run folder that cannot be written) derives from :class:`TalkerError` and says in one
line which file or key is wrong. Each CLI's ``main`` runs inside :func:`one_line_errors`, which
prints that line and exits non-zero; ``TALKER_DEBUG=1`` shows the traceback instead. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

DEBUG_VARIABLE = "TALKER_DEBUG"
# Operating-system failures that the user fixes, not talker: full, read-only or forbidden storage, and
# a path that runs through a file or names a folder where a file is wanted.
ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
    errno.ENAMETOOLONG,
})


class TalkerError(Exception):
    """An expected failure, explained in one line that names the file or config key."""


class ConfigError(TalkerError, ValueError):
    """A config problem, explained in one line naming the key and the valid choices or range."""


class RunFolderError(TalkerError, ValueError):
    """A run folder cannot be used (not writable, or it holds something else); the message names it."""


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure the user fixes (one line) rather than a bug (a traceback)."""
    if isinstance(exc, TalkerError):
        return True
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS and exc.filename is not None


def one_line(exc: BaseException) -> str:
    """The message of an expected failure on one line (an OSError names its file first)."""
    if isinstance(exc, OSError) and not isinstance(exc, TalkerError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false", "no")


@contextmanager
def one_line_errors(prog: str, status: int = 2) -> Iterator[None]:
    """Report an expected failure raised inside as ``<prog>: error: <one line>`` and exit with ``status``.

    With ``TALKER_DEBUG=1`` the traceback is printed above the line. Unexpected errors pass through.
    """
    try:
        yield
    except Exception as exc:
        if not is_expected(exc):
            raise
        if debugging():
            traceback.print_exc()
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        sys.exit(status)
