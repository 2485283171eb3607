"""Writing output files atomically: a crash or a full disk never leaves a truncated file behind."""

import contextlib
import errno
import gzip
import io
import os
import stat
import sys
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path, mode="w", encoding="utf-8"):
    """Open a temporary file beside path for writing; rename it onto path only if the block succeeds.

    A symbolic link is written through (its target replaced, the link kept). A device or a named
    pipe (/dev/null), onto which nothing can be renamed, and this process's own standard output
    or error (/dev/stdout, even when redirected to a file), get the whole output once the block
    succeeds, written to them as they are open.
    """
    asked = Path(path)
    text = {} if "b" in mode else {"encoding": encoding, "newline": ""}
    stream = stream_of(asked)
    if stream is not None:
        buffer = io.BytesIO() if "b" in mode else io.StringIO(newline="")
        yield buffer
        for python_stream in (sys.stdout, sys.stderr):      # what Python holds goes out first
            with contextlib.suppress(AttributeError, OSError, ValueError):
                python_stream.flush()
        with (open(asked, mode, **text) if stream is True
              else os.fdopen(os.dup(stream), mode, **text)) as f:
            f.write(buffer.getvalue())
        return
    path = Path(os.path.realpath(asked))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "cannot write there (a folder)", str(asked))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _cannot_write(e, asked) from e
    os.fchmod(fd, 0o666 & ~_current_umask())     # mkstemp makes 0600; give what open() would
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp_name, path)
        except OSError as e:
            raise _cannot_write(e, asked) from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def stream_of(path):
    """How to write path other than by renaming a file onto it: the descriptor (1 or 2) of this
    process's standard output or error when path is the same file, True for another device or
    pipe, None for a regular file, a folder or nothing yet (a link followed; a loop of links is
    an error naming path)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _cannot_write(e, path) from None
    for descriptor in (1, 2):
        with contextlib.suppress(OSError):
            if os.path.samestat(found, os.fstat(descriptor)):
                return descriptor
    return None if stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode) else True


def _cannot_write(error, path):
    """error (an OSError) naming the file asked for, not a temporary one or a link's target."""
    return type(error)(error.errno, f"cannot write there ({error.strerror})", str(path))


class _Probe(Exception):
    """Ends check_writable's write before anything is renamed into place."""


def check_writable(path):
    """Raise the OSError that writing path would meet (a missing folder, no permission), before
    hours of work are spent on what goes into it."""
    if stream_of(path) is not None:
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
