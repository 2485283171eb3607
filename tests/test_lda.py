import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.special import digamma
from sklearn.base import clone

from ldaem import LDA
from ldaem.lda import SEEDED_DOCUMENTS
from tests.conftest import generate_lda_corpus, matched_similarity


def assert_monotone(elbo_trace):
    steps = np.diff(elbo_trace)
    assert np.all(steps >= -1e-10 * np.abs(elbo_trace[1:])), steps.min()


def matched_cosines(found, truth):
    """Cosine similarity of each true topic with the found topic matched to it one to one."""
    found = found / np.linalg.norm(found, axis=1, keepdims=True)
    truth = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    return matched_similarity(truth @ found.T)


@pytest.mark.parametrize("n_topics,alpha", [(5, 0.2), (8, 0.5)])
def test_recovers_topics_of_the_generative_process(n_topics, alpha):
    X, beta, _ = generate_lda_corpus(n_topics, n_words=20 * n_topics, n_docs=800, doc_length=120,
                                     alpha=alpha, seed=n_topics)
    lda = LDA(n_topics, random_state=0, max_iter=200, tol=1e-6).fit(X)
    assert matched_cosines(lda.topic_word_, beta).mean() >= 0.95
    assert_monotone(lda.elbo_trace_)
    assert alpha / 2 < lda.doc_topic_prior_[0] < alpha * 2   # variational EM overestimates alpha a little


@pytest.mark.parametrize("params", [
    {},
    {"doc_topic_prior_update": "asymmetric"},
    {"topic_word_prior": 0.05},
    {"topic_word_prior_update": "estimate"},
    {"topic_word_prior": 1e-3, "topic_word_prior_update": "estimate", "doc_topic_prior_burn_in": 0},
    {"doc_topic_prior": 0.5, "doc_topic_prior_update": "fixed"},
])
def test_elbo_never_decreases_on_a_real_corpus(reuters, params):
    lda = LDA(10, random_state=0, max_iter=40, tol=0, **params).fit(reuters.X)
    assert lda.n_iter_ == 40
    assert_monotone(lda.elbo_trace_)
    assert lda.elbo_trace_[-1] > lda.elbo_trace_[0]


def test_estimated_eta_recovers_the_prior_the_topics_were_drawn_from():
    rng = np.random.default_rng(3)
    n_topics, n_words, eta = 5, 400, 0.05
    beta = rng.dirichlet(np.full(n_words, eta), size=n_topics)
    theta = rng.dirichlet(np.full(n_topics, 0.3), size=1500)
    X = sp.csr_matrix(np.stack([rng.multinomial(150, p @ beta) for p in theta]).astype(float))
    lda = LDA(n_topics, topic_word_prior_update="estimate", random_state=0, max_iter=300, tol=1e-7).fit(X)
    assert_monotone(lda.elbo_trace_)
    assert eta / 1.5 < lda.topic_word_prior_ < eta * 1.5        # 0.069 measured
    # the fitted eta is the maximiser of its ELBO term given the final lambda: the gradient vanishes
    lam = lda.components_
    elog_beta = digamma(lam) - digamma(lam.sum(axis=1, keepdims=True))
    a = lda.topic_word_prior_
    gradient = n_topics * n_words * (digamma(n_words * a) - digamma(a)) + elog_beta.sum()
    assert abs(gradient) < 1e-6 * n_topics * n_words / a


def test_restarts_keep_the_fit_of_highest_elbo(reuters):
    best_of = LDA(6, n_init=3, random_state=0, max_iter=15).fit(reuters.X)
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=3)
    alone = [LDA(6, random_state=int(seed), max_iter=15).fit(reuters.X) for seed in seeds]
    np.testing.assert_array_equal(best_of.restart_bounds_, [lda.bound_ for lda in alone])
    assert len(set(best_of.restart_bounds_)) == 3          # the restarts really differ
    kept = alone[int(np.argmax(best_of.restart_bounds_))]
    assert best_of.restart_ == int(np.argmax(best_of.restart_bounds_))
    np.testing.assert_array_equal(best_of.components_, kept.components_)
    np.testing.assert_array_equal(best_of.elbo_trace_, kept.elbo_trace_)
    np.testing.assert_array_equal(best_of.doc_topic_prior_, kept.doc_topic_prior_)
    np.testing.assert_array_equal(best_of.transform(reuters.X[:20]), kept.transform(reuters.X[:20]))


def test_converges_on_ap_to_a_tight_bound(ap):
    lda = LDA(20, random_state=0).fit(ap.X)
    assert_monotone(lda.elbo_trace_)
    assert lda.iterations_[-1].relative_change < 1e-4 or lda.n_iter_ == lda.max_iter
    assert lda.bound_ / ap.n_tokens > -7.65   # lda-c reaches -7.62 (../shared/corpora/README.md)


def test_same_seed_same_model_whatever_the_thread_count(reuters):
    runs = [LDA(6, random_state=3, max_iter=8, n_jobs=n).fit(reuters.X) for n in (1, 2, 2)]
    for other in runs[1:]:
        assert np.array_equal(runs[0].components_, other.components_)
        assert np.array_equal(runs[0].elbo_trace_, other.elbo_trace_)
    different = LDA(6, random_state=4, max_iter=8).fit(reuters.X)
    assert not np.array_equal(runs[0].components_, different.components_)


def test_fitted_attributes(reuters):
    lda = LDA(7, random_state=0, max_iter=5).fit(reuters.X)
    n_words = reuters.X.shape[1]
    assert lda.components_.shape == lda.topic_word_.shape == (7, n_words)
    np.testing.assert_allclose(lda.topic_word_.sum(axis=1), 1.0)
    assert lda.doc_topic_prior_.shape == (7,) and np.all(lda.doc_topic_prior_ > 0)
    assert lda.n_iter_ == len(lda.iterations_) == lda.elbo_trace_.size
    assert lda.bound_ == lda.elbo_trace_[-1]
    np.testing.assert_allclose(lda.topic_tokens_.sum(), reuters.n_tokens, rtol=1e-10)


def test_transform_of_training_documents_matches_the_fit():
    X, beta, theta = generate_lda_corpus(4, 80, 300, 200, 0.3, seed=11)
    lda = LDA(4, random_state=1, max_iter=100).fit(X)
    proportions = lda.transform(X)
    np.testing.assert_allclose(proportions.sum(axis=1), 1.0)
    order = linear_sum_assignment(-(beta @ lda.topic_word_.T))[1]
    assert np.abs(proportions[:, order] - theta).mean() < 0.05


def test_empty_documents_get_the_prior_proportions(reuters):
    lda = LDA(5, random_state=0, max_iter=5, doc_topic_prior_update="asymmetric").fit(reuters.X)
    X = sp.vstack([reuters.X[:3], sp.csr_matrix((2, reuters.X.shape[1]))]).tocsr()
    doc_topic, doc_bound = lda.infer(X)
    prior = lda.doc_topic_prior_ / lda.doc_topic_prior_.sum()
    np.testing.assert_allclose(doc_topic[3:], [prior, prior])
    np.testing.assert_allclose(doc_bound[3:], 0.0, atol=1e-12)


def test_score_and_perplexity_agree(reuters):
    train, test = reuters.X[:300], reuters.X[300:]
    lda = LDA(8, random_state=0, max_iter=20).fit(train)
    n_tokens = test.sum()
    assert lda.perplexity(test) == pytest.approx(np.exp(-lda.score(test) / n_tokens))
    assert lda.score(train) / train.sum() > lda.score(test) / n_tokens


def test_dense_input_gives_the_same_model(reuters):
    X = reuters.X[:60]
    sparse = LDA(3, random_state=0, max_iter=4).fit(X)
    dense = LDA(3, random_state=0, max_iter=4).fit(X.toarray())
    np.testing.assert_array_equal(sparse.components_, dense.components_)


@pytest.mark.parametrize("params,message", [
    ({"n_components": 0}, "n_components must be an integer >= 1"),
    ({"doc_topic_prior": -1.0}, "doc_topic_prior must be a positive number"),
    ({"doc_topic_prior_update": "sometimes"}, "doc_topic_prior_update must be None, 'symmetric'"),
    ({"tol": -1}, "tol must be a number >= 0"),
    ({"n_jobs": 0}, "n_jobs must be None, -1 or an integer >= 1"),
    ({"topic_word_prior_update": "auto"}, "topic_word_prior_update must be 'fixed' or 'estimate'"),
    ({"n_init": 0}, "n_init must be an integer >= 1"),
    ({"n_init": 2, "learning_method": "online"}, "n_init > 1 works with learning_method='batch'"),
])
def test_bad_parameters_are_refused(reuters, params, message):
    with pytest.raises(ValueError, match=message):
        LDA(**params).fit(reuters.X)


def test_bad_input_is_refused(reuters):
    lda = LDA(3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="non-negative"):
        lda.fit(-reuters.X)
    bad = reuters.X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lda.fit(bad)
    lda.fit(reuters.X)
    with pytest.raises(ValueError, match="features"):
        lda.transform(reuters.X[:, :100])


def test_follows_scikit_learn_conventions(reuters):
    lda = LDA(4, random_state=0, max_iter=3)
    assert clone(lda).get_params() == lda.get_params()
    assert not hasattr(lda, "components_")
    with pytest.raises(Exception, match="not fitted"):
        lda.transform(reuters.X)
    lda.set_params(n_components=5)
    assert lda.fit(reuters.X).transform(reuters.X).shape == (reuters.X.shape[0], 5)
    assert lda.fit_transform(reuters.X).shape == (reuters.X.shape[0], 5)


def test_model_round_trip_keeps_inference(reuters, tmp_path):
    from ldaem.lda import LDA as Estimator
    from ldaem.model import load_model, save_model
    lda = Estimator(5, random_state=0, max_iter=5).fit(reuters.X)
    save_model(tmp_path / "m.npz", lda.to_model(reuters.vocab, {"seed": 0}))
    restored = Estimator.from_model(load_model(tmp_path / "m.npz"))
    np.testing.assert_array_equal(restored.transform(reuters.X), lda.transform(reuters.X))


def test_the_default_start_is_seeded_for_batch_maximum_likelihood_and_random_otherwise(reuters):
    def one_iteration(**params):
        return LDA(4, random_state=2, max_iter=1, **params).fit(reuters.X).components_

    assert np.array_equal(one_iteration(), one_iteration(init="seeded"))
    assert LDA(4, random_state=2, max_iter=1).fit(reuters.X).to_model(reuters.vocab).settings["init"] == "seeded"
    assert not np.array_equal(one_iteration(), one_iteration(init="random"))
    assert np.array_equal(one_iteration(topic_word_prior=0.1), one_iteration(topic_word_prior=0.1, init="random"))
    online = {"learning_method": "online", "batch_size": 100}
    assert np.array_equal(one_iteration(**online), one_iteration(**online, init="random"))


def test_seeded_start_gives_each_topic_the_counts_of_its_seed_documents(reuters):
    X = reuters.X.tocsr()
    rng = np.random.RandomState(3)
    expected = np.full((X.shape[1], 6), 0.1)
    for k in range(6):                    # lda-c's seeded start, one topic at a time
        expected[:, k] += np.asarray(X[rng.randint(0, X.shape[0], size=SEEDED_DOCUMENTS)].sum(axis=0)).ravel()
    start = LDA(6)._initial_sstats(X, "seeded", np.random.RandomState(3))
    np.testing.assert_array_equal(start, expected)
    assert start.flags.c_contiguous


def test_seeded_start_recovers_planted_topics():
    X, beta, _ = generate_lda_corpus(6, 120, 800, 120, 0.3, seed=21)
    lda = LDA(6, init="seeded", random_state=0, max_iter=200, tol=1e-6).fit(X)
    assert matched_cosines(lda.topic_word_, beta).mean() >= 0.95
    assert_monotone(lda.elbo_trace_)


def test_a_fit_started_from_a_model_continues_from_its_topics(reuters):
    first = LDA(5, random_state=0, max_iter=30, tol=0).fit(reuters.X)
    counts = first.topic_word_ * first.topic_tokens_[:, None]
    again = LDA(5, init=counts, doc_topic_prior=float(first.doc_topic_prior_[0]),
                doc_topic_prior_burn_in=0, max_iter=3, tol=0).fit(reuters.X)
    # starting where the first fit ended: the first E-step's ELBO is already at its level
    assert again.elbo_trace_[0] >= first.elbo_trace_[-1] - 1e-3 * abs(first.elbo_trace_[-1])
    assert again.elbo_trace_[0] > first.elbo_trace_[5]
    with pytest.raises(ValueError, match="an array must be 5 x 4258"):
        LDA(5, init=counts[:, :10]).fit(reuters.X)


def test_the_estimator_passes_scikit_learns_checks():
    """All of check_estimator's checks but two, which call partial_fit without total_samples (the
    corpus size that scales each minibatch: ldaem asks for it rather than assume scikit-learn's 1e6)."""
    from sklearn.utils.estimator_checks import check_estimator
    expected = {name: "partial_fit needs total_samples"
                for name in ("check_fit_score_takes_y", "check_n_features_in_after_fitting")}
    check_estimator(LDA(n_components=3, max_iter=2), expected_failed_checks=expected)


def test_stored_zeros_are_no_counts(reuters):
    """scipy keeps zeros written into a sparse matrix's data: they must not enter the bound as 0 log(0/0)."""
    X = reuters.X[:100].astype(np.float64)
    pruned = X.copy()
    pruned.data[pruned.data < 2] = 0                       # pruned in place: the zeros stay stored
    clean = pruned.copy()
    clean.eliminate_zeros()
    assert pruned.nnz > clean.nnz
    fitted = LDA(3, max_iter=3, random_state=0).fit(pruned)
    np.testing.assert_array_equal(fitted.components_, LDA(3, max_iter=3, random_state=0).fit(clean).components_)
    np.testing.assert_array_equal(fitted.infer(pruned)[1], fitted.infer(clean)[1])
    assert np.isfinite(fitted.score(pruned))


def test_a_tiny_eta_leaves_unseen_words_a_finite_weight(reuters):
    """exp(E[log beta]) of a word no training document used is exp(psi(eta) - ...), below 1e-300 at
    eta = 0.001: floored as maximum-likelihood topics are, new documents keep finite proportions."""
    lda = LDA(5, topic_word_prior=0.001, max_iter=3, random_state=0).fit(reuters.X[:300])
    unseen = np.asarray(reuters.X[:300].sum(axis=0)).ravel() == 0
    assert np.asarray(reuters.X[300:][:, unseen].sum(axis=1)).ravel().astype(bool).sum() > 50
    theta = lda.transform(reuters.X[300:])
    assert np.all(np.isfinite(theta)) and np.allclose(theta.sum(axis=1), 1)
    assert np.isfinite(lda.score(reuters.X[300:]))


@pytest.mark.parametrize("inference", ["variational", "map", "cvb0"])
def test_an_objective_of_zero_is_a_converged_fit_not_a_division_by_zero(inference):
    """One topic over one term: every document's likelihood is 1, the MAP objective exactly 0."""
    lda = LDA(1, inference=inference, max_iter=5, random_state=0).fit(np.ones((3, 1)))
    assert lda.n_iter_ >= 2 and np.isfinite(lda.bound_)


def test_to_model_stores_numpy_parameters_and_checks_the_vocabulary(reuters, tmp_path):
    from ldaem.model import load_model, save_model
    lda = LDA(np.int64(3), max_iter=np.int64(2), random_state=np.random.RandomState(0)).fit(reuters.X)
    save_model(tmp_path / "m.npz", lda.to_model(reuters.vocab))
    settings = load_model(tmp_path / "m.npz").settings
    assert settings["n_components"] == 3 and settings["max_iter"] == 2 and settings["random_state"] is None
    with pytest.raises(ValueError, match=f"a vocabulary of 2 terms for topics over {reuters.X.shape[1]}"):
        lda.to_model(["a", "b"])
