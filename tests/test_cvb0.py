"""inference='cvb0' (docs/cvb0.md): the sweep against a numpy reference, the estimator's use of it,
recovery of generated topics, and what it refuses."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from ldaem import LDA, _kernels
from ldaem.cvb0 import CVB0Sweeps
from ldaem.model import load_model
from tests import reference
from tests.conftest import generate_lda_corpus
from tests.test_cli import fit_reuters, ldaem, REUTERS, REUTERS_VOCAB
from tests.test_kernels import random_problem
from tests.test_lda import matched_cosines


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sweeps_match_the_numpy_reference(seed):
    X, beta, alpha = random_problem(seed, n_docs=20, n_words=40, n_topics=6)
    X = sp.csr_matrix(X)
    eta = 0.05
    runner = CVB0Sweeps(X, eta)
    phi = beta.T[X.indices]
    phi /= phi.sum(axis=1, keepdims=True)               # the runner's start: theta uniform
    for _ in range(3):
        totals = runner(beta.T, alpha)
        phi, word_topic, gamma, doc_bound = reference.cvb0_sweep(X, phi, alpha, eta, beta)
        np.testing.assert_allclose(runner._phi, phi, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(totals.sstats, word_topic, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(runner.gamma(), gamma, rtol=1e-12)
        assert totals.doc_bound == pytest.approx(doc_bound.sum(), rel=1e-12)
    np.testing.assert_allclose(phi.sum(axis=1), 1.0)
    np.testing.assert_allclose(totals.sstats.sum(), X.sum())      # every token is in the counts


@pytest.mark.parametrize("count,expected", [(1.0, [0.5, 0.5]), (2.0, [0.75, 0.25])])
def test_a_token_leaves_its_own_share_out_of_the_counts(count, expected):
    """One document of one word, K=2, phi starting at (0.8, 0.2), alpha 0.1: every count is the
    word's own. With one token, leaving its share out leaves only the priors, hence (1/2, 1/2);
    with two, the other token's (0.8, 0.2) plus alpha: (0.9, 0.3) normalised. Without the
    exclusion the sweep would give (0.9, 0.3) and (1.7, 0.5), normalised."""
    X = sp.csr_matrix(np.array([[count]]))
    runner = CVB0Sweeps(X, eta=0.05)
    runner(np.array([[0.8, 0.2]]), np.array([0.1, 0.1]))
    np.testing.assert_allclose(runner._phi[0], expected, rtol=1e-14)


def test_counts_below_one_keep_every_count_non_negative(reuters):
    """A fractional count is all of a token: its share n phi, not phi, is left out (with phi
    left out, N_dk - phi went negative and the objective NaN)."""
    X = reuters.X * 0.3
    lda = LDA(5, inference="cvb0", random_state=0, max_iter=20, tol=0).fit(X)
    assert np.all(np.isfinite(lda.elbo_trace_)) and np.all(lda.components_ > 0)


def test_word_topic_counts_match_numpy():
    rng = np.random.default_rng(3)
    X = sp.random(30, 25, density=0.3, random_state=3, format="csr", data_rvs=lambda n: rng.integers(1, 5, n))
    phi = rng.dirichlet(np.ones(4), size=X.nnz)
    runner = CVB0Sweeps(X, 0.1)
    out = np.full((25, 4), np.nan)
    _kernels.word_topic_counts(runner._index.word_ptr[0], runner._index.entry, runner._X.data, phi, out)
    expected = np.zeros((25, 4))
    np.add.at(expected, X.indices, X.data[:, None] * phi)
    np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("n_topics,alpha", [(5, 0.2), (8, 0.5)])
def test_recovers_topics_of_the_generative_process(n_topics, alpha):
    X, beta, _ = generate_lda_corpus(n_topics, n_words=20 * n_topics, n_docs=800, doc_length=120,
                                     alpha=alpha, seed=n_topics)
    lda = LDA(n_topics, inference="cvb0", random_state=0, max_iter=200, tol=1e-6).fit(X)
    assert matched_cosines(lda.topic_word_, beta).mean() >= 0.95
    assert lda.iterations_[-1].elbo > lda.iterations_[0].elbo


def test_fit_is_map_em_with_sweeps_for_e_steps(reuters):
    """The estimator's M-step and objective are MAP's: the topics after each sweep are its counts
    plus eta, normalised, and the objective is the documents' MAP objectives plus eta sum log beta."""
    X, n_topics, alpha, eta = reuters.X[:120], 4, 0.2, 0.03
    counts = np.random.default_rng(1).gamma(1.0, 1.0, (n_topics, X.shape[1]))
    lda = LDA(n_topics, inference="cvb0", doc_topic_prior=alpha, topic_word_prior=eta, init=counts,
              max_iter=2, tol=0).fit(X)
    beta = counts / counts.sum(axis=1, keepdims=True)
    phi = beta.T[X.indices]
    phi /= phi.sum(axis=1, keepdims=True)
    alphas = np.full(n_topics, alpha)
    for record in lda.iterations_:
        phi, word_topic, _, doc_bound = reference.cvb0_sweep(X, phi, alphas, eta, beta)
        assert record.elbo == pytest.approx(doc_bound.sum() + eta * np.log(beta).sum(), rel=1e-11)
        beta = ((word_topic + eta) / (word_topic + eta).sum(axis=0)).T
    np.testing.assert_allclose(lda.topic_word_, beta, rtol=1e-11)
    assert lda.n_iter_ == 2 and all(r.mean_doc_iter == 1.0 for r in lda.iterations_)


def test_a_fit_does_not_depend_on_the_number_of_threads(reuters):
    fits = []
    for threads in (1, 2):
        fits.append(LDA(6, inference="cvb0", random_state=2, max_iter=10, tol=0, n_jobs=threads).fit(reuters.X))
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
    np.testing.assert_array_equal(fits[0].elbo_trace_, fits[1].elbo_trace_)


def test_float32_sweeps_stay_near_float64(reuters):
    single = LDA(6, inference="cvb0", random_state=2, max_iter=20, tol=0, dtype="float32").fit(reuters.X)
    double = LDA(6, inference="cvb0", random_state=2, max_iter=20, tol=0).fit(reuters.X)
    np.testing.assert_allclose(single.elbo_trace_, double.elbo_trace_, rtol=1e-5)
    np.testing.assert_allclose(single.topic_word_, double.topic_word_, atol=1e-4)


def test_stops_when_the_objective_changes_less_than_tol_either_way(reuters):
    lda = LDA(6, inference="cvb0", random_state=0, max_iter=300, tol=1e-4).fit(reuters.X)
    changes = np.array([r.relative_change for r in lda.iterations_[1:]])
    assert lda.n_iter_ < 300 and abs(changes[-1]) < 1e-4 and np.all(np.abs(changes[:-1]) >= 1e-4)


def test_model_file_round_trip_keeps_the_pseudo_counts(reuters, tmp_path):
    lda = LDA(5, inference="cvb0", topic_word_prior=0.02, random_state=0, max_iter=5).fit(reuters.X)
    model = lda.to_model(reuters.vocab)
    assert model.settings["inference"] == "cvb0" and model.eta is None
    rebuilt = LDA.from_model(model)
    assert rebuilt.topic_word_prior == 0.02
    np.testing.assert_array_equal(rebuilt.transform(reuters.X), lda.transform(reuters.X))


def test_refuses_a_scheduler(reuters):
    """What MAP refuses CVB0 refuses too (tests/test_map.py); and it runs in this process only."""
    with pytest.raises(ValueError, match="inference='cvb0' runs in this process"):
        LDA(5, inference="cvb0", scheduler="tcp://127.0.0.1:1").fit(reuters.X)


def test_partial_fit_is_refused(reuters):
    with pytest.raises(ValueError, match="partial_fit is online EM: inference='cvb0' works with batch fits only"):
        LDA(5, inference="cvb0").partial_fit(reuters.X)


def test_restarts_keep_the_fit_of_highest_objective(reuters):
    lda = LDA(5, inference="cvb0", n_init=2, random_state=0, max_iter=5).fit(reuters.X)
    assert len(lda.restart_bounds_) == 2 and lda.bound_ == max(lda.restart_bounds_)


def test_refuses_to_resume(reuters):
    state = LDA(5, inference="cvb0", random_state=0, max_iter=2).fit(reuters.X).fit_state()
    with pytest.raises(ValueError, match="cannot be resumed"):
        LDA(5, inference="cvb0", random_state=0, max_iter=4).fit(reuters.X, resume=state)


def test_fit_from_the_command_line(tmp_path):
    model_path = tmp_path / "cvb0.npz"
    result = fit_reuters(model_path, "--seed", 4, "--inference", "cvb0")
    assert result.exit_code == 0, result.stderr
    assert load_model(model_path).settings["inference"] == "cvb0"
    assert all(" log posterior " in line for line in result.stderr.splitlines() if line.startswith("iter "))
    inferred = ldaem("infer", REUTERS, "--vocab", REUTERS_VOCAB, "-m", model_path, "-o", tmp_path / "theta.tsv")
    assert inferred.exit_code == 0, inferred.stderr


@pytest.mark.parametrize("options", [("--workers", 2), ("--method", "online"), ("--alpha", "estimate")])
def test_the_command_line_refuses_what_it_cannot_do_before_reading(tmp_path, options):
    result = fit_reuters(tmp_path / "m.npz", "--inference", "cvb0", *options)
    assert result.exit_code == 2
    assert "--inference cvb0" in result.stderr
    assert not (tmp_path / "m.npz").exists()
