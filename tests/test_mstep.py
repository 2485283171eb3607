import numpy as np
import pytest
from scipy import optimize
from scipy.special import digamma

from ldaem import mstep


def elog_theta_sum(alpha_true, n_docs, seed):
    theta = np.random.default_rng(seed).dirichlet(alpha_true, size=n_docs)
    return np.log(theta).sum(axis=0)


@pytest.mark.parametrize("alpha_true,start", [(0.1, 1.0), (0.5, 0.01), (3.0, 0.1)])
def test_symmetric_prior_maximises_its_elbo_term(alpha_true, start):
    n_topics, n_docs = 8, 500
    elog = elog_theta_sum(np.full(n_topics, alpha_true), n_docs, seed=1).sum()
    ours = mstep.update_symmetric_prior(start, elog, n_docs, n_topics)

    def negative(log_a):
        return -mstep.dirichlet_log_likelihood(np.full(n_topics, np.exp(log_a)), elog / n_topics
                                               * np.ones(n_topics), n_docs)

    best = np.exp(optimize.minimize_scalar(negative, bounds=(-15, 8), method="bounded",
                                           options={"xatol": 1e-12}).x)
    np.testing.assert_allclose(ours, best, rtol=1e-6)
    assert abs(ours - alpha_true) / alpha_true < 0.15      # and it recovers the generating alpha


def test_symmetric_prior_from_a_vanishing_start_moves_up_without_warnings():
    """At a = 1e-300 trigamma(a) overflows and the Newton step is nan: a unit step in log a instead."""
    elog = elog_theta_sum(np.full(8, 0.5), 500, seed=1).sum()
    with np.errstate(all="raise"):
        moved = mstep.update_symmetric_prior(1e-300, elog, 500, 8, max_iter=3)
    assert np.isfinite(moved) and moved > 1e-299


def test_asymmetric_prior_maximises_its_elbo_term():
    alpha_true = np.array([0.1, 0.2, 1.0, 3.0, 0.5])
    n_docs = 2000
    elog = elog_theta_sum(alpha_true, n_docs, seed=2)
    ours = mstep.update_asymmetric_prior(np.full(5, 0.1), elog, n_docs)
    gradient = n_docs * (digamma(ours.sum()) - digamma(ours)) + elog
    np.testing.assert_allclose(gradient, 0, atol=1e-6 * n_docs)
    np.testing.assert_allclose(ours, alpha_true, rtol=0.15)
    assert (mstep.dirichlet_log_likelihood(ours, elog, n_docs)
            >= mstep.dirichlet_log_likelihood(ours * 1.01, elog, n_docs))


def test_topics_from_sstats_are_normalised_and_floored():
    sstats = np.array([[2.0, 0.0], [6.0, 0.0], [0.0, 3.0]])
    beta = mstep.topics_from_sstats(sstats)
    np.testing.assert_allclose(beta.sum(axis=0), 1.0)
    np.testing.assert_allclose(beta[:, 0], [0.25, 0.75, mstep.MIN_TOPIC_WORD])
    assert beta.min() > 0
