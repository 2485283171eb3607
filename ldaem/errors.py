"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class LdaemError(Exception):
    """Base of the errors ldaem reports to a user without a traceback."""


class CorpusError(LdaemError, ValueError):
    """A corpus file is missing, malformed or undecodable; the message names the file and line."""


class ModelFileError(LdaemError, ValueError):
    """A model file is missing, corrupt, foreign, or does not fit the data it is applied to."""


class NumericalError(ArithmeticError):
    """The ELBO stopped being finite; the estimator keeps the topics of the last good iteration."""
