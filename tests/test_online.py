import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import digamma, polygamma

from ldaem import LDA, online
from ldaem.corpus import load_corpus
from ldaem.records import MinibatchRecord
from tests.conftest import SHARED_CORPORA, matched_similarity


def test_learning_rate_is_hoffmans_schedule():
    for tau0, kappa in [(64.0, 0.7), (1.0, 0.55), (0.0, 1.0)]:
        rates = [online.learning_rate(t, tau0, kappa) for t in range(1, 200)]
        np.testing.assert_allclose(rates, (tau0 + np.arange(1, 200)) ** -kappa, rtol=1e-15)
        assert np.all(np.diff(rates) < 0) and rates[0] <= 1.0
    assert online.learning_rate(1, 0.0, 0.7) == 1.0


def test_topic_update_is_a_convex_step_towards_the_minibatch_estimate():
    rng = np.random.default_rng(0)
    lam, sstats = rng.gamma(1.0, size=(30, 4)), rng.gamma(1.0, size=(30, 4))
    eta, rho, scale = 0.1, 0.3, 2021 / 256
    np.testing.assert_allclose(online.online_topic_update(lam, sstats, eta, rho, scale),
                               0.7 * lam + 0.3 * (eta + scale * sstats), rtol=1e-15)
    # with rho = 1 and one minibatch holding the corpus, it is batch EM's lambda = eta + ss
    np.testing.assert_array_equal(online.online_topic_update(lam, sstats, eta, 1.0, 1.0), eta + sstats)
    assert online.minibatch_scale(2021, 256) == 2021 / 256


def newton_step_by_dense_hessian(alpha, elog_sum, n_docs):
    gradient = n_docs * (digamma(alpha.sum()) - digamma(alpha)) + elog_sum
    hessian = n_docs * (polygamma(1, alpha.sum()) - np.diag(polygamma(1, alpha)))
    return -np.linalg.solve(hessian, gradient)


def test_dirichlet_newton_step_solves_the_hessian_system():
    rng = np.random.default_rng(1)
    alpha = np.array([0.1, 0.5, 1.0, 2.0, 0.3])
    elog_sum = np.log(rng.dirichlet(np.ones(5), size=300)).sum(axis=0)
    np.testing.assert_allclose(online.dirichlet_newton_step(alpha, elog_sum, 300),
                               newton_step_by_dense_hessian(alpha, elog_sum, 300), rtol=1e-10)


def test_symmetric_step_is_the_one_dimensional_newton_step():
    n_topics, n_docs, a, total = 8, 500, 0.4, -9000.0
    step = online.damped_alpha_step(np.full(n_topics, a), np.linspace(-1, 1, n_topics) + total / n_topics,
                                    n_docs, rho=1.0, symmetric=True) - a
    first = n_docs * n_topics * (digamma(n_topics * a) - digamma(a)) + total
    second = n_docs * n_topics * (n_topics * polygamma(1, n_topics * a) - polygamma(1, a))
    assert np.all(step == step[0])
    np.testing.assert_allclose(step[0], -first / second, rtol=1e-10)


def test_damped_alpha_step_takes_rho_of_the_newton_step_and_stays_positive():
    alpha = np.array([0.5, 1.0, 2.0])
    elog_sum = np.array([-300.0, -150.0, -80.0])
    newton = online.dirichlet_newton_step(alpha, elog_sum, 100)
    np.testing.assert_allclose(online.damped_alpha_step(alpha, elog_sum, 100, 0.1, symmetric=False),
                               alpha + 0.1 * newton, rtol=1e-15)
    # very negative E[log theta]: the full step would cross zero, so it is halved until it does not
    elog_sum = np.array([-5000.0, -150.0, -80.0])
    newton = online.dirichlet_newton_step(alpha, elog_sum, 100)
    assert np.any(alpha + newton <= 0)
    damped = online.damped_alpha_step(alpha, elog_sum, 100, 1.0, symmetric=False)
    halvings = next(j for j in range(60) if np.all(alpha + newton / 2 ** j > 0))
    np.testing.assert_allclose(damped, alpha + newton / 2 ** halvings, rtol=1e-15)


def online_lda(**params):
    return LDA(**{"n_components": 6, "learning_method": "online", "batch_size": 50,
                  "learning_offset": 1.0, "learning_decay": 0.6, "random_state": 0, **params})


def test_one_minibatch_with_rho_one_is_a_batch_em_iteration(reuters):
    """The whole corpus as the minibatch and rho_1 = 1: the update is batch EM's M-step, and the
    record's estimate is batch EM's ELBO. (alpha given: its default start differs.)"""
    batch = LDA(6, doc_topic_prior=0.2, topic_word_prior=0.05, random_state=0, max_iter=1).fit(reuters.X)
    first = online_lda(doc_topic_prior=0.2, topic_word_prior=0.05, batch_size=reuters.X.shape[0],
                       learning_offset=0.0, max_iter=1).fit(reuters.X)
    assert first.iterations_[0].rho == 1.0
    np.testing.assert_array_equal(first.components_, batch.components_)
    assert first.iterations_[0].elbo == batch.iterations_[0].elbo


def test_fit_records_every_minibatch_update(reuters):
    lda = online_lda(max_iter=3).fit(reuters.X)
    n_batches = -(-reuters.X.shape[0] // 50)
    records = lda.iterations_
    assert all(isinstance(r, MinibatchRecord) for r in records)
    updates = range(1, 3 * n_batches + 1)
    assert [r.iteration for r in records] == list(updates)
    assert [r.epoch for r in records] == [p for p in (1, 2, 3) for _ in range(n_batches)]
    assert [r.rho for r in records] == [online.learning_rate(t, 1.0, 0.6) for t in updates]
    assert [r.batch_docs for r in records[:n_batches]] == [50] * (n_batches - 1) + [reuters.X.shape[0] % 50]
    assert lda.n_iter_ == 3 and lda.n_batch_iter_ == 3 * n_batches
    np.testing.assert_array_equal(lda.elbo_trace_, [r.elbo for r in records])
    assert lda.topic_word_prior_ == 1 / 6                  # online smooths by default
    assert lda.doc_topic_prior_.shape == (6,) and np.all(lda.doc_topic_prior_ == lda.doc_topic_prior_[0])
    # lambda - eta weighs the minibatches' counts, each scaled by D / |B|: an estimate of the corpus's
    np.testing.assert_allclose(lda.topic_tokens_.sum(), reuters.n_tokens, rtol=0.02)
    # the corpus-scaled estimate of the bound per token improves from the first pass to the last
    first, last = (np.mean([r.elbo_per_token for r in records if r.epoch == p]) for p in (1, 3))
    assert last > first


def test_a_callback_returning_true_stops_the_fit_after_that_update(reuters):
    whole = online_lda(max_iter=2).fit(reuters.X)
    stopped = online_lda(max_iter=2, callback=lambda record: record.iteration == 10).fit(reuters.X)
    assert stopped.stopped_ and not whole.stopped_
    assert stopped.n_batch_iter_ == 10 and [r.iteration for r in stopped.iterations_] == list(range(1, 11))
    np.testing.assert_array_equal(stopped.elbo_trace_, whole.elbo_trace_[:10])     # the same updates, cut


def test_partial_fit_over_chunks_makes_the_updates_of_fit(reuters):
    X = reuters.X
    fitted = online_lda(max_iter=2, doc_topic_prior_update="asymmetric", doc_topic_prior_burn_in=3).fit(X)
    streamed = online_lda(doc_topic_prior_update="asymmetric", doc_topic_prior_burn_in=3,
                          total_samples=X.shape[0])
    for _ in range(2):
        for start, stop in [(0, 100), (100, 250), (250, X.shape[0])]:
            streamed.partial_fit(X[start:stop])
    np.testing.assert_array_equal(streamed.components_, fitted.components_)
    np.testing.assert_array_equal(streamed.doc_topic_prior_, fitted.doc_topic_prior_)
    np.testing.assert_array_equal(streamed.elbo_trace_, fitted.elbo_trace_)
    assert streamed.n_batch_iter_ == fitted.n_batch_iter_ and streamed.n_iter_ == 6


def test_same_seed_same_model_whatever_the_thread_count(reuters):
    runs = [online_lda(max_iter=2, n_jobs=n).fit(reuters.X) for n in (1, 2, 2)]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0].components_, other.components_)
        np.testing.assert_array_equal(runs[0].elbo_trace_, other.elbo_trace_)
    different = online_lda(max_iter=2, random_state=1).fit(reuters.X)
    assert not np.array_equal(runs[0].components_, different.components_)


def test_fixed_alpha_stays_fixed(reuters):
    lda = online_lda(max_iter=1, doc_topic_prior=0.3, doc_topic_prior_update="fixed").fit(reuters.X)
    np.testing.assert_array_equal(lda.doc_topic_prior_, 0.3)


def test_estimated_eta_moves_towards_the_batch_estimate(reuters):
    """Reuters, K=6: batch EM estimates eta 0.28; 20 online passes 0.20, from 1/6 and after
    a burn-in counted in updates."""
    batch = LDA(6, topic_word_prior_update="estimate", random_state=0).fit(reuters.X)
    stochastic = online_lda(max_iter=20, topic_word_prior_update="estimate").fit(reuters.X)
    assert batch.topic_word_prior_ / 2 < stochastic.topic_word_prior_ < batch.topic_word_prior_ * 2
    assert stochastic.topic_word_prior_ != 1 / 6
    assert np.all(np.isfinite(stochastic.elbo_trace_))


def test_partial_fit_continues_a_smoothed_batch_model(reuters):
    lda = LDA(5, topic_word_prior=0.1, random_state=0, max_iter=5, total_samples=395).fit(reuters.X[:300])
    before = lda.components_.copy()
    lda.partial_fit(reuters.X[300:])
    assert lda.n_batch_iter_ == 1 and lda.topic_word_prior_ == 0.1
    assert not np.allclose(lda.components_, before)


def sparse_lda_corpus(n_topics, n_words, n_docs, seed):
    """Documents of the LDA process with sparse topics ~ Dir(0.01) over the words and sparse
    proportions ~ Dir(0.02) (one to three topics a document), 1 + Poisson(60) tokens each: the
    process of bench/online_scale.py, smaller. Returns (X csr, beta K x V)."""
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(n_words, 0.01), size=n_topics)
    theta = rng.dirichlet(np.full(n_topics, 0.02), size=n_docs)
    per_topic = rng.multinomial(1 + rng.poisson(60, size=n_docs), theta)
    rows = np.concatenate([np.repeat(np.arange(n_docs), per_topic[:, k]) for k in range(n_topics)])
    cols = np.concatenate([rng.choice(n_words, per_topic[:, k].sum(), p=beta[k]) for k in range(n_topics)])
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_docs, n_words))
    X.sum_duplicates()
    return X, beta


def topic_recovery(found, truth):
    """Mean Bhattacharyya coefficient sum_w sqrt(p_w q_w) of the generating topics and the found
    ones matched one to one (1: identical; two different Dir(0.01) topics score about 0.02)."""
    return matched_similarity(np.sqrt(truth) @ np.sqrt(found).T).mean()


def test_one_pass_with_the_defaults_recovers_sparse_topics():
    """K=100 sparse topics, 40,000 documents, one pass of the defaults (minibatches of 512,
    tau0 16, kappa 0.6, alpha from 1/K). Measured: recovery 0.79, alpha 0.014 (generating 0.02).
    The former defaults (256, tau0 1, kappa 0.55, alpha from 0.5) gave 0.65 with alpha 0.08,
    scikit-learn's online defaults 0.67; starting lambda at eta + 100/V pseudo-counts instead of
    Gamma(100, 1/100) gave 0.26 at 2M documents (bench/online_results.md)."""
    X, beta = sparse_lda_corpus(100, 5000, 40_000, seed=0)
    lda = LDA(100, learning_method="online", max_iter=1, random_state=0).fit(X)
    assert topic_recovery(lda.topic_word_, beta) > 0.75
    assert 0.005 < lda.doc_topic_prior_[0] < 0.05


@pytest.mark.parametrize("name", ["ap", "kos"])
def test_online_reaches_the_held_out_bound_of_batch_em_with_the_defaults(ap, name):
    """The last 10% of the documents held out, 10 passes of the default minibatches (512, tau0
    16, kappa 0.6). Measured: AP batch EM -8.246 per word, online -8.287 (0.49% apart); KOS -7.687
    and -7.739 (0.67%). Minibatches of 1024 were 0.51% and 1.05% behind, Hoffman et al.'s tau0
    and kappa (64, 0.7) 0.9% and 2.7%."""
    corpus = ap if name == "ap" else load_corpus(SHARED_CORPORA / "kos" / "docword.kos.txt.gz")
    cut = corpus.X.shape[0] - corpus.X.shape[0] // 10
    train, test = corpus.X[:cut], corpus.X[cut:]
    n_tokens = test.sum()
    batch = LDA(20, topic_word_prior=0.05, random_state=0).fit(train)
    stochastic = LDA(20, topic_word_prior=0.05, learning_method="online", max_iter=10, random_state=0).fit(train)
    batch_bound, online_bound = batch.score(test) / n_tokens, stochastic.score(test) / n_tokens
    assert abs(online_bound - batch_bound) < 0.01 * abs(batch_bound), (online_bound, batch_bound)


@pytest.mark.parametrize("params,message", [
    ({"learning_method": "stochastic"}, "learning_method must be 'batch' or 'online'"),
    ({"learning_decay": 0.5}, r"learning_decay must be a number in \(0.5, 1\]"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"learning_offset": -1.0}, "learning_offset must be a number >= 0"),
    ({"total_samples": 0}, "total_samples must be a positive number or None"),
])
def test_bad_online_parameters_are_refused(reuters, params, message):
    with pytest.raises(ValueError, match=message):
        online_lda(**params).fit(reuters.X)


def test_partial_fit_needs_the_corpus_size_and_smoothed_topics(reuters):
    with pytest.raises(ValueError, match="partial_fit needs total_samples"):
        online_lda().partial_fit(reuters.X)
    unsmoothed = LDA(4, random_state=0, max_iter=2, total_samples=395).fit(reuters.X)
    with pytest.raises(ValueError, match="only a model with smoothed topics"):
        unsmoothed.partial_fit(reuters.X)


def test_a_saved_online_model_continues_its_schedule(reuters, tmp_path):
    from ldaem.model import load_model, save_model
    X = reuters.X
    fitted = online_lda(max_iter=1, total_samples=X.shape[0]).fit(X)
    save_model(tmp_path / "m.npz", fitted.to_model(reuters.vocab))
    reloaded = LDA.from_model(load_model(tmp_path / "m.npz"))
    assert reloaded.n_batch_iter_ == fitted.n_batch_iter_ == 8
    fitted.partial_fit(X[:50])
    reloaded.partial_fit(X[:50])
    assert reloaded.n_batch_iter_ == 9 and reloaded.iterations_[-1].rho == fitted.iterations_[-1].rho
    np.testing.assert_allclose(reloaded.components_, fitted.components_, rtol=1e-12)
