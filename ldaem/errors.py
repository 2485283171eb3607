"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""

import contextlib


class LdaemError(Exception):
    """Base of the errors ldaem reports to a user without a traceback."""


class CorpusError(LdaemError, ValueError):
    """A corpus file is missing, malformed or undecodable; the message names the file and line."""


class ModelFileError(LdaemError, ValueError):
    """A model file is missing, corrupt, foreign, or does not fit the data it is applied to."""


class NumericalError(ArithmeticError):
    """The ELBO stopped being finite; the estimator keeps the topics of the last good iteration."""


@contextlib.contextmanager
def unreadable_is_corpus_error(path):
    """Within the block, a failure the readers did not foresee (a damaged gzip stream, a number of
    thousands of digits, a header asking for more memory than there is, JSON nested thousands
    deep, ...) becomes a CorpusError naming the file, like every foreseen one."""
    try:
        yield
    except CorpusError:
        raise
    except Exception as e:
        raise CorpusError(f"{path}: cannot be read as a corpus ({type(e).__name__}: "
                          f"{str(e)[:200]})") from None
