"""Writing output files atomically: a crash or a full disk never leaves a truncated file behind."""

import contextlib
import errno
import gzip
import os
import stat
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside path for writing; rename it onto path only if the block succeeds.

    A symbolic link is written through (its target replaced, the link kept); a device or a named
    pipe (/dev/null, /dev/stdout) is written to directly, as nothing can be renamed onto it.
    """
    asked = Path(path)
    text = {} if "b" in mode else {"encoding": encoding, "newline": ""}
    if _is_special(asked):
        with open(asked, mode, **text) as f:
            yield f
        return
    path = Path(os.path.realpath(asked))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "cannot write there (a folder)", str(asked))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:         # name the file asked for, not the temporary one
        raise type(e)(e.errno, f"cannot write there ({e.strerror})", str(asked)) from e
    os.fchmod(fd, 0o666 & ~_current_umask())     # mkstemp makes 0600; give what open() would
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp_name, path)
        except OSError as e:
            raise type(e)(e.errno, f"cannot write there ({e.strerror})", str(asked)) from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _is_special(path):
    """Whether path (its link followed) is an existing file other than a regular one or a folder."""
    try:
        kind = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(kind) or stat.S_ISDIR(kind))


class _Probe(Exception):
    """Ends check_writable's write before anything is renamed into place."""


def check_writable(path):
    """Raise the OSError that writing path would meet (a missing folder, no permission), before
    hours of work are spent on what goes into it."""
    if _is_special(path):
        return
    with contextlib.suppress(_Probe), atomic_output(path, "wb"):
        raise _Probe


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_binary(path):
    """Open a file for reading bytes, decompressing it on the fly if its name ends in .gz."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")
