"""The float32 E-step (LDA dtype='float32', ldaem fit --dtype float32): the same fixed points as
float64 to float32's resolution, and fits whose ELBO still never decreases."""

import numpy as np
import pytest
import scipy.sparse as sp

from ldaem import LDA
from ldaem.estep import FLOAT32_WEIGHT_FLOOR, e_step, initial_gamma, topic_weights
from ldaem.model import load_model
from tests import reference
from tests.test_cli import REUTERS, REUTERS_VOCAB, fit_reuters, ldaem
from tests.test_kernels import random_problem
from tests.test_lda import assert_monotone


def test_topic_weights_are_float32_and_floored_only_when_asked():
    weights = np.array([[0.5, 1e-100], [0.5, 1.0 - 1e-100]])
    single = topic_weights(weights, "float32")
    assert single.dtype == np.float32 and single.flags.c_contiguous
    np.testing.assert_array_equal(single, np.float32([[0.5, FLOAT32_WEIGHT_FLOOR], [0.5, 1.0]]))
    assert topic_weights(weights).dtype == np.float64
    np.testing.assert_array_equal(topic_weights(weights), weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("point_theta", [False, True])
def test_float32_e_step_matches_the_numpy_reference_to_float32_resolution(seed, point_theta):
    X, beta, alpha = random_problem(seed, n_docs=30, n_words=60, n_topics=9)
    gamma0 = initial_gamma(X, alpha)
    ours = e_step(X, topic_weights(beta.T, "float32"), alpha, gamma0, max_iter=7, tol=0.0,
                  point_theta=point_theta)
    solve = reference.map_e_step if point_theta else reference.e_step
    gamma, sstats, doc_bound = solve(X, beta, alpha, gamma0, 7, 0.0)
    assert ours.gamma.dtype == ours.sstats.dtype == ours.doc_bound.dtype == np.float64
    double = e_step(X, beta.T, alpha, gamma0, max_iter=7, tol=0.0, point_theta=point_theta)
    assert not np.array_equal(ours.gamma, double.gamma)          # float32 did run
    np.testing.assert_allclose(ours.gamma, gamma, rtol=2e-5)
    np.testing.assert_allclose(ours.sstats, sstats.T, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(ours.doc_bound, doc_bound, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.sstats.sum(axis=1), np.asarray(X.sum(axis=0)).ravel(), rtol=1e-6)


@pytest.mark.parametrize("n_topics", [200, 500])
def test_float32_e_step_of_short_documents_with_a_small_alpha_stays_finite(n_topics):
    """exp(E[log theta]) of a one-token document with alpha = 1/K is about exp(psi(2/K)) for
    every topic: 1e-44 at K=200, below float32's range. The E-step scales t so that its largest
    value is 1 and takes the scale back out of the bound."""
    rng = np.random.default_rng(7)
    n_words = 300
    beta = rng.dirichlet(np.full(n_words, 0.1), size=n_topics)
    X = sp.csr_matrix((np.ones(6), (np.arange(6), rng.integers(0, n_words, 6))), shape=(6, n_words))
    alpha = np.full(n_topics, 1.0 / n_topics)
    single = e_step(X, topic_weights(beta.T, "float32"), alpha, max_iter=100, tol=1e-5)
    double = e_step(X, beta.T, alpha, max_iter=100, tol=1e-5)
    assert np.all(np.isfinite(single.gamma)) and np.all(np.isfinite(single.doc_bound))
    np.testing.assert_allclose(single.gamma, double.gamma, rtol=1e-4)
    np.testing.assert_allclose(single.doc_bound, double.doc_bound, rtol=1e-6)
    np.testing.assert_allclose(single.sstats, double.sstats, rtol=1e-4, atol=1e-9)


def test_float32_online_fit_of_short_documents_stays_finite(reuters):
    X = sp.vstack([reuters.X, sp.csr_matrix(np.eye(5, reuters.X.shape[1]))]).tocsr()
    lda = LDA(200, learning_method="online", max_iter=1, random_state=0, dtype="float32").fit(X)
    assert np.all(np.isfinite(lda.components_)) and np.isfinite(lda.score(X))


def test_float32_e_step_of_a_word_no_topic_has_stays_finite():
    """Maximum-likelihood topics floor an unseen word's weights at 1e-100, which float32 cannot hold:
    they become FLOAT32_WEIGHT_FLOOR, and a document of such words gets the same gamma as in float64
    (its words' ratios n / s are then near 1e30, a normal float32)."""
    n_topics, n_words = 5, 40
    rng = np.random.default_rng(3)
    beta = rng.dirichlet(np.full(n_words - 2, 0.5), size=n_topics)
    beta = np.hstack([beta, np.full((n_topics, 2), 1e-100)])       # the last two words: unseen
    X = sp.csr_matrix(np.array([[0] * (n_words - 2) + [3, 1], [1] * (n_words - 2) + [2, 0]], dtype=float))
    alpha = np.full(n_topics, 0.1)
    single = e_step(X, topic_weights(beta.T, "float32"), alpha, max_iter=50, tol=1e-6)
    double = e_step(X, beta.T, alpha, max_iter=50, tol=1e-6)
    assert np.all(np.isfinite(single.gamma)) and np.all(np.isfinite(single.sstats))
    np.testing.assert_allclose(single.gamma, double.gamma, rtol=1e-4)
    np.testing.assert_allclose(single.sstats.sum(), X.sum(), rtol=1e-6)


@pytest.mark.parametrize("params", [{}, {"topic_word_prior": 0.05}, {"inference": "map"}])
def test_float32_fit_never_decreases_its_elbo_and_ends_where_float64_does(reuters, params):
    single = LDA(10, random_state=0, max_iter=40, tol=0, dtype="float32", **params).fit(reuters.X)
    double = LDA(10, random_state=0, max_iter=40, tol=0, **params).fit(reuters.X)
    assert_monotone(single.elbo_trace_)
    assert not np.array_equal(single.elbo_trace_, double.elbo_trace_)     # float32 did run
    # the two paths drift apart by up to 1.1e-6 of the ELBO (smoothed topics, iteration 15)
    np.testing.assert_allclose(single.elbo_trace_, double.elbo_trace_, rtol=1e-5)
    np.testing.assert_allclose(single.topic_word_, double.topic_word_, atol=1e-4)
    # alpha rests on the E[log theta] of topics a document hardly uses (gamma_dk near alpha), whose
    # float32 rounding 40 iterations compound: 4e-4 measured with alpha near 0.024
    np.testing.assert_allclose(single.doc_topic_prior_, double.doc_topic_prior_, rtol=2e-3)


def test_float32_online_fit_matches_float64(reuters):
    params = {"learning_method": "online", "batch_size": 100, "max_iter": 3, "random_state": 1}
    single = LDA(8, dtype="float32", **params).fit(reuters.X)
    double = LDA(8, **params).fit(reuters.X)
    np.testing.assert_allclose(single.components_, double.components_, rtol=1e-3, atol=1e-3)


def test_dtype_is_checked_and_kept_in_the_model(reuters):
    with pytest.raises(ValueError, match="LDA parameter dtype must be 'float64' or 'float32'"):
        LDA(5, dtype="float16").fit(reuters.X)
    lda = LDA(5, random_state=0, max_iter=3, dtype="float32").fit(reuters.X)
    model = lda.to_model(reuters.vocab)
    assert model.settings["dtype"] == "float32"
    rebuilt = LDA.from_model(model)
    assert rebuilt.dtype == "float32" and rebuilt._fit_weights.dtype == np.float32
    np.testing.assert_array_equal(rebuilt.transform(reuters.X), lda.transform(reuters.X))


def test_held_out_scores_are_float64_whatever_the_dtype(reuters):
    """Words no training document uses have weight 1e-100 in every topic, which float32 cannot
    hold: infer, transform and score run in float64, so a float32 model scores held-out documents
    exactly as the same topics in float64 do."""
    train, test = reuters.X[:300], reuters.X[300:]
    single = LDA(8, random_state=0, max_iter=5, dtype="float32").fit(train)
    unseen = np.asarray(train.sum(axis=0)).ravel() == 0
    assert test[:, unseen].sum() > 0
    same_topics = LDA.from_model(single.to_model(reuters.vocab), dtype="float64")
    assert single.score(test) == same_topics.score(test)
    np.testing.assert_array_equal(single.transform(test), same_topics.transform(test))


def test_fit_dtype_float32_from_the_command_line(tmp_path):
    model_path = tmp_path / "single.npz"
    result = fit_reuters(model_path, "--seed", 3, "--dtype", "float32")
    assert result.exit_code == 0, result.stderr
    assert load_model(model_path).settings["dtype"] == "float32"
    double = fit_reuters(tmp_path / "double.npz", "--seed", 3)
    assert double.exit_code == 0, double.stderr
    np.testing.assert_allclose(load_model(model_path).elbo_trace, load_model(tmp_path / "double.npz").elbo_trace,
                               rtol=1e-6)
    inferred = ldaem("infer", REUTERS, "--vocab", REUTERS_VOCAB, "-m", model_path, "-o", tmp_path / "theta.tsv")
    assert inferred.exit_code == 0, inferred.stderr
    refused = fit_reuters(tmp_path / "m.npz", "--dtype", "float16")
    assert refused.exit_code == 2 and "float16" in refused.stderr
    assert not (tmp_path / "m.npz").exists()
