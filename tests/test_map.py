"""inference='map': EM for the MAP topics and topic proportions (docs/map.md), against numpy
references, a numerical optimiser and the generative process."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import softmax

from ldaem import LDA
from ldaem.estep import e_step, initial_gamma
from ldaem.model import load_model, save_model
from tests import reference
from tests.conftest import generate_lda_corpus
from tests.test_kernels import random_problem
from tests.test_lda import assert_monotone, matched_cosines


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_iter,tol", [(1, 0.0), (9, 0.0), (200, 1e-8)])
def test_map_e_step_matches_numpy_reference(seed, max_iter, tol):
    X, beta, alpha = random_problem(seed)
    gamma0 = initial_gamma(X, alpha)
    ours = e_step(X, beta.T, alpha, gamma0, max_iter=max_iter, tol=tol, point_theta=True)
    gamma, sstats, doc_bound = reference.map_e_step(X, beta, alpha, gamma0, max_iter, tol)
    np.testing.assert_allclose(ours.gamma, gamma, rtol=1e-11)
    np.testing.assert_allclose(ours.sstats, sstats.T, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours.doc_bound, doc_bound, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.gamma[-1], alpha)      # an empty document keeps the prior's mode


def test_converged_map_e_step_finds_the_posterior_mode():
    """The E-step's theta_d maximises log p(w_d | theta, beta) + log Dir(theta | alpha + 1) over
    the simplex: a general-purpose optimiser (softmax coordinates, many starts) finds no better."""
    X, beta, alpha = random_problem(3, n_docs=4, n_topics=5, empty_doc=False)
    result = e_step(X, beta.T, alpha, max_iter=10_000, tol=1e-12, point_theta=True)
    dense = X.toarray()
    rng = np.random.default_rng(0)
    for d in range(X.shape[0]):
        words = np.flatnonzero(dense[d])

        def negative(z, n=dense[d, words], beta_words=beta[:, words]):
            return -reference.map_document_objective(n, softmax(z), alpha, beta_words)

        best = min((minimize(negative, rng.normal(size=beta.shape[0]), method="BFGS", tol=1e-12)
                    for _ in range(5)), key=lambda r: r.fun)
        theta = result.gamma[d] / result.gamma[d].sum()
        assert result.doc_bound[d] >= -best.fun - 1e-8
        np.testing.assert_allclose(theta, softmax(best.x), atol=1e-5)


def test_first_iteration_objective_and_m_step_match_the_reference(reuters):
    """From given topics, iteration 1's objective is the documents' MAP objectives plus
    eta sum_kw log beta_kw, and its M-step gives beta proportional to the counts plus eta."""
    X, n_topics, alpha, eta = reuters.X[:150], 4, 0.2, 0.03
    counts = np.random.default_rng(1).gamma(1.0, 1.0, (n_topics, X.shape[1]))
    lda = LDA(n_topics, inference="map", doc_topic_prior=alpha, topic_word_prior=eta, init=counts,
              max_iter=1, max_doc_update_iter=50, mean_change_tol=1e-3).fit(X)
    beta = counts / counts.sum(axis=1, keepdims=True)
    alphas = np.full(n_topics, alpha)
    _, sstats, doc_bound = reference.map_e_step(X, beta, alphas, initial_gamma(X, alphas), 50, 1e-3)
    topic_bound = eta * np.log(beta).sum()
    np.testing.assert_allclose(lda.elbo_trace_[0], doc_bound.sum() + topic_bound, rtol=1e-11)
    expected = (sstats + eta) / (sstats + eta).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(lda.components_, expected, rtol=1e-10)


@pytest.mark.parametrize("params", [{}, {"doc_topic_prior": 0.5, "topic_word_prior": 0.001},
                                    {"init": "random"}])
def test_map_objective_never_decreases_on_a_real_corpus(reuters, params):
    lda = LDA(10, inference="map", random_state=0, max_iter=40, tol=0, **params).fit(reuters.X)
    assert lda.n_iter_ == 40
    assert_monotone(lda.elbo_trace_)
    assert lda.elbo_trace_[-1] > lda.elbo_trace_[0]
    assert lda.init_ == params.get("init", "seeded")
    np.testing.assert_array_equal(lda.doc_topic_prior_, params.get("doc_topic_prior", 0.1))


def test_map_recovers_topics_of_the_generative_process():
    X, beta, _ = generate_lda_corpus(6, n_words=120, n_docs=800, doc_length=120, alpha=0.3, seed=6)
    lda = LDA(6, inference="map", random_state=0, max_iter=300, tol=1e-7).fit(X)
    assert matched_cosines(lda.topic_word_, beta).mean() >= 0.95
    assert_monotone(lda.elbo_trace_)


def test_map_model_round_trip_and_inference(reuters, tmp_path):
    """The fitted model is an LDA model like any other: point topics (no eta in the file), alpha,
    and the variational inference of new documents; the file records the inference and the
    pseudo-count eta, which a rebuilt estimator keeps."""
    lda = LDA(5, inference="map", topic_word_prior=0.3, random_state=0, max_iter=5).fit(reuters.X)
    assert lda.topic_word_prior_ is None
    save_model(tmp_path / "m.npz", lda.to_model(reuters.vocab, {"seed": 0}))
    model = load_model(tmp_path / "m.npz")
    assert model.eta is None and model.settings["inference"] == "map"
    restored = LDA.from_model(model)
    assert restored.get_params()["topic_word_prior"] == 0.3 and restored.topic_word_prior_ is None
    assert restored._topic_bound() == lda._topic_bound()
    np.testing.assert_array_equal(restored.transform(reuters.X), lda.transform(reuters.X))
    variational = e_step(reuters.X, lda.components_.T, lda.doc_topic_prior_, want_sstats=False)
    np.testing.assert_allclose(lda.score(reuters.X), variational.doc_bound.sum(), rtol=1e-12)


@pytest.mark.parametrize("inference", ["map", "cvb0"])
@pytest.mark.parametrize("params,message", [
    ({"learning_method": "online"}, "works with learning_method='batch'"),
    ({"doc_topic_prior_update": "symmetric"}, "holds alpha and eta fixed"),
    ({"topic_word_prior_update": "estimate"}, "holds alpha and eta fixed"),
    ({"inference": "mode"}, "inference must be 'variational', 'map' or 'cvb0'"),
])
def test_point_estimates_refuse_what_they_cannot_do(reuters, inference, params, message):
    """MAP and CVB0 (which runs inside the MAP fit, docs/cvb0.md) refuse the same settings."""
    with pytest.raises(ValueError, match=message):
        LDA(3, **{"inference": inference, **params}).fit(reuters.X)


def test_partial_fit_is_refused_for_map(reuters):
    with pytest.raises(ValueError, match="partial_fit is online EM: inference='map' works with batch"):
        LDA(3, inference="map", total_samples=1000).partial_fit(reuters.X[:100])


def test_a_state_resumes_only_a_fit_of_the_same_inference(reuters):
    """A variational fit's state (maximum-likelihood topics, as a MAP fit's) does not resume a
    MAP fit, nor the other way round."""
    for first, second in (("variational", "map"), ("map", "variational")):
        state = LDA(3, inference=first, random_state=0, max_iter=2).fit(reuters.X).fit_state()
        assert state.inference == first
        with pytest.raises(ValueError, match=f"inference='{first}', this fit has inference='{second}'"):
            LDA(3, inference=second, random_state=0, max_iter=4).fit(reuters.X, resume=state)


def test_map_objective_is_on_the_scale_of_the_log_likelihood(reuters):
    """Without the priors' constant normalisers the logged objective is negative, a few nats per
    token like a log-likelihood, and its topic term (eta sum log beta) lowers it: EM's relative
    stopping rule means for it what it means for the ELBO."""
    lda = LDA(10, inference="map", random_state=0, max_iter=10, tol=0).fit(reuters.X)
    assert np.all(lda.elbo_trace_ < 0)
    without_topic_term = lda.iterations_[-1].elbo_per_token - lda._topic_bound() / reuters.X.sum()
    assert -12 < lda.iterations_[-1].elbo_per_token < without_topic_term < 0
