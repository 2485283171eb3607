"""Writing output files atomically: a crash or a full disk never leaves a truncated file behind."""

import contextlib
import gzip
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside path for writing; rename it onto path only if the block succeeds."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:         # name the file asked for, not the temporary one
        raise type(e)(e.errno, f"cannot write there ({e.strerror})", str(path)) from e
    os.fchmod(fd, 0o666 & ~_current_umask())     # mkstemp makes 0600; give what open() would
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding, "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


class _Probe(Exception):
    """Ends check_writable's write before anything is renamed into place."""


def check_writable(path):
    """Raise the OSError that writing path would meet (a missing folder, no permission), before
    hours of work are spent on what goes into it."""
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
