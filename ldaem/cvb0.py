"""CVB0 (docs/cvb0.md): batch EM's runner for LDA(inference='cvb0').

A CVB0 fit is a MAP fit (docs/map.md) whose E-step is one CVB0 sweep instead of each document's
EM to convergence: the estimator's M-step (topics = expected counts + eta, normalised), objective
and records are MAP's. The sweep keeps every nonzero's distribution over topics (nnz x K), so
this runner runs in this process only, and a fit cannot be resumed from a checkpoint.
"""

import numpy as np

from ldaem import _kernels
from ldaem.distributed import EStepTotals
from ldaem.estep import as_csr_counts, entries_by_word


class CVB0Sweeps:
    """Each call: one CVB0 sweep over all of X; its totals for the M-step and the objective.

    The first call starts every nonzero's phi from the topics it is given (theta uniform: phi_dwk
    proportional to beta_kw), so that the estimator's starts (seeded, random, an earlier model)
    apply. Later calls take the topics only for the objective: the sweep reads its own counts.
    """

    def __init__(self, X, eta, dtype="float64"):
        self._X = as_csr_counts(X)
        self._eta = float(eta)
        self._dtype = np.float32 if dtype == "float32" else np.float64
        self._index = entries_by_word(self._X, max_nonzeros=max(self._X.nnz, 1))   # one chunk
        self._phi = self._word_topic = self._gamma = None

    def __call__(self, topics, alpha):
        """The sweep's EStepTotals at these topics (V x K, normalised) and alpha (K, fixed)."""
        X = self._X
        topics = np.ascontiguousarray(topics, dtype=np.float64)
        if self._phi is None:
            self._phi = np.empty((X.nnz, topics.shape[1]), dtype=self._dtype)
            _kernels.cvb0_start(X.indices, topics, self._phi)
            self._word_topic = self._counts()
        n_docs = X.shape[0]
        gamma, doc_bound = np.empty((n_docs, topics.shape[1])), np.empty(n_docs)
        _kernels.cvb0_sweep(X.indptr, X.indices, X.data, self._phi, self._word_topic,
                            self._word_topic.sum(axis=0), np.ascontiguousarray(alpha, dtype=np.float64),
                            self._eta, topics, gamma, doc_bound)
        self._word_topic, self._gamma = self._counts(), gamma
        return EStepTotals(sstats=self._word_topic, doc_bound=float(doc_bound.sum()),
                           elog_theta=np.zeros(topics.shape[1]), doc_iter=n_docs, n_docs=n_docs)

    def _counts(self):
        """N_wk = sum over word w's nonzeros of n_dw phi_dwk (V x K)."""
        word_topic = np.empty((self._X.shape[1], self._phi.shape[1]))
        _kernels.word_topic_counts(self._index.word_ptr[0], self._index.entry, self._X.data,
                                   self._phi, word_topic)
        return word_topic

    def gamma(self):
        """alpha + N_dk of every document after the last sweep (None before the first)."""
        return None if self._gamma is None else self._gamma.copy()

    def close(self):
        pass
