"""Corner cases of the data: the fit stays finite and its ELBO monotone (issue 7, numerical safety)."""

import numpy as np
import pytest
import scipy.sparse as sp

from ldaem import LDA


def fits_cleanly(X, **params):
    lda = LDA(random_state=0, max_iter=30, tol=0, **params).fit(sp.csr_matrix(X, dtype=float))
    for values in (lda.components_, lda.doc_topic_prior_, lda.elbo_trace_, lda.transform(X)):
        assert np.all(np.isfinite(values))
    steps = np.diff(lda.elbo_trace_)
    assert np.all(steps >= -1e-9 * np.abs(lda.elbo_trace_[1:]))
    return lda


@pytest.mark.parametrize("name,X,params", [
    ("empty and one-word documents", [[0, 0, 0, 0], [0, 3, 0, 0], [1, 0, 0, 0], [2, 1, 0, 5]],
     {"n_components": 2}),
    ("more topics than documents", [[1, 2, 0, 1], [0, 1, 4, 0]], {"n_components": 6}),
    ("a vocabulary of one term", [[3], [1], [7]], {"n_components": 2}),
    ("huge counts", [[1e9, 2e9, 0], [0, 1e9, 3e9], [5e8, 0, 1e9]], {"n_components": 2}),
    ("alpha driven towards zero", [[50, 0, 0, 0], [0, 50, 0, 0], [0, 0, 50, 0], [0, 0, 0, 50]],
     {"n_components": 4, "doc_topic_prior_burn_in": 0}),
    ("asymmetric alpha on one-word documents", [[1, 0], [0, 1], [1, 0]],
     {"n_components": 3, "doc_topic_prior_update": "asymmetric"}),
    ("smoothed topics with an unused word", [[2, 0, 1], [1, 0, 3]], {"n_components": 2, "topic_word_prior": 0.01}),
])
def test_corner_cases_stay_finite_and_monotone(name, X, params):
    lda = fits_cleanly(np.array(X, dtype=float), **params)
    # all 30 iterations, unless the ELBO stopped changing but for rounding (tol=0 then stops)
    assert lda.n_iter_ == 30 or abs(lda.iterations_[-1].relative_change) < 1e-13


def test_alpha_driven_towards_zero_stays_positive():
    X = np.eye(6) * 40
    lda = fits_cleanly(X, n_components=6, doc_topic_prior_burn_in=0)
    assert np.all(lda.doc_topic_prior_ > 0) and lda.doc_topic_prior_[0] < 0.5


def test_a_fit_too_large_for_memory_is_refused_before_allocating(reuters):
    from ldaem.resources import InsufficientMemory, check_fit_memory, fit_memory_bytes
    with pytest.raises(InsufficientMemory, match=r"fitting 5000000 topics to 395 documents x 4258 terms "
                                                 r"needs about \d+\.\d GiB; \d+\.\d GiB is available"):
        LDA(5_000_000).fit(reuters.X)
    assert fit_memory_bytes(10, 100, 50, 4) == 8 * 4 * (4 * 100 + 3 * 10) + 40 * 50
    check_fit_memory(10, 100, 50, 4, available=10**6)
    with pytest.raises(InsufficientMemory, match="needs about 0.0 GiB; 0.0 GiB is available"):
        check_fit_memory(10, 100, 50, 4, available=1000)


def test_documents_without_tokens_are_refused():
    with pytest.raises(ValueError, match="the documents hold no tokens: there is nothing to fit"):
        LDA(2).fit(sp.csr_matrix((3, 4)))
