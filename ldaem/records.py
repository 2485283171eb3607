"""What a fit logs: a record per EM iteration (batch) or per minibatch update (online)."""

import math
from dataclasses import dataclass

# What the records' elbo is under each of LDA's inferences (its inference parameter): the ELBO of
# variational EM, or the log posterior less its constants of MAP EM (docs/map.md), which CVB0
# logs too, at its point estimates (docs/cvb0.md).
OBJECTIVE_NAMES = {"variational": "ELBO", "map": "log posterior", "cvb0": "log posterior"}

# The inferences whose topics and topic proportions are points, with alpha and eta fixed
# pseudo-counts (docs/map.md; CVB0 runs inside the MAP fit, docs/cvb0.md).
POINT_ESTIMATE_INFERENCES = ("map", "cvb0")

# The precisions of the E-step's inner iterations (LDA dtype, ldaem fit --dtype).
PRECISIONS = ("float64", "float32")


def relative_change(objective, previous):
    """(objective - previous) / |previous|: nan without a previous value, 0 if both are 0."""
    if previous is None:
        return float("nan")
    change = objective - previous
    return change / abs(previous) if previous else (0.0 if change == 0 else math.copysign(math.inf, change))


@dataclass(frozen=True)
class IterationRecord:
    """One EM iteration, as logged: the ELBO is that of the E-step, before the M-step."""

    iteration: int
    elbo: float
    elbo_per_token: float
    relative_change: float   # (elbo - previous) / |previous|; nan on the first iteration
    alpha: float             # mean of alpha after the M-step
    seconds: float
    mean_doc_iter: float     # inner E-step iterations per document


@dataclass(frozen=True)
class MinibatchRecord(IterationRecord):
    """One update of online EM. iteration counts updates (t); elbo is the minibatch's estimate of
    the corpus ELBO, (D / |B|) sum_{d in B} L_d + the topic term, and elbo_per_token divides it by
    (D / |B|) tokens of B; relative_change compares it with the previous update's estimate."""

    epoch: int               # pass over the data (fit), or call of partial_fit, that made the update
    rho: float               # the step size rho_t
    batch_docs: int          # |B|
