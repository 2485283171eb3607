import numba
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import integrate
from scipy.special import digamma, gammaln

from ldaem import _kernels
from ldaem.estep import (as_csr_counts, document_chunks, e_step, entries_by_word, initial_gamma,
                         topic_weights)
from tests import reference


def random_problem(seed, n_docs=12, n_words=30, n_topics=4, empty_doc=True):
    rng = np.random.default_rng(seed)
    X = sp.random(n_docs, n_words, density=0.3, random_state=seed, format="csr",
                  data_rvs=lambda size: rng.integers(1, 6, size))
    if empty_doc:
        X = sp.vstack([X, sp.csr_matrix((1, n_words))]).tocsr()
    beta = rng.dirichlet(np.full(n_words, 0.5), size=n_topics)
    alpha = rng.uniform(0.05, 1.0, n_topics)
    return X, beta, alpha


def test_digamma_matches_scipy():
    x = np.concatenate([np.logspace(-8, 6, 2000), np.linspace(0.5, 12, 1000)])
    ours = np.array([_kernels.digamma(v) for v in x])
    np.testing.assert_allclose(ours, digamma(x), rtol=1e-13, atol=1e-13)


@numba.njit(fastmath=_kernels.FAST)
def _fast_exp_loop(x, out):
    for i in range(x.shape[0]):      # vectorised, as in the kernels that call it
        out[i] = _kernels.fast_exp(x[i])


def test_fast_exp_matches_numpy():
    """Within 1.1 ulp of exp in extended precision over the whole normal range, in a vectorised
    loop and one value at a time; 0 where exp is subnormal, NaN for NaN."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-708.39, 709.4, 200_001), rng.uniform(-0.35, 0.35, 100_000),
                        rng.uniform(-60.0, 1.0, 100_000), [0.0, -0.0, 1e-300]])
    ours = np.empty_like(x)
    _fast_exp_loop(x, ours)
    exact = np.exp(x.astype(np.longdouble))
    ulps = np.abs((ours - exact) / np.spacing(exact.astype(np.float64))).astype(np.float64)
    assert ulps.max() < 1.1
    one_at_a_time = np.array([_kernels.fast_exp(v) for v in x[::50]])
    np.testing.assert_allclose(one_at_a_time, ours[::50], rtol=4.5e-16, atol=0)
    assert _kernels.fast_exp(-709.0) == 0.0 and _kernels.fast_exp(-np.inf) == 0.0
    assert np.isnan(_kernels.fast_exp(np.nan))


def test_fast_log_matches_numpy():
    """Within 2 ulp from the smallest subnormal to the largest double."""
    x = np.concatenate([np.exp(np.random.default_rng(0).uniform(-708.0, 709.0, 100_000)),
                        np.linspace(0.5, 2.0, 10_001), [5e-324, 1e-310, 2.2250738585072014e-308, 1.7e308]])
    ours = np.array([_kernels.fast_log(v) for v in x])
    np.testing.assert_allclose(ours, np.log(x), rtol=4.5e-16, atol=2.3e-16)


def test_log_gamma_matches_scipy():
    x = np.concatenate([np.logspace(-8, 6, 2000), np.linspace(0.5, 12, 1000)])

    def log_gamma(v):
        y, shift = _kernels._digamma_parts(v)
        return _kernels._log_gamma_from_parts(v, y, _kernels.fast_log(y))

    ours = np.array([log_gamma(v) for v in x])
    np.testing.assert_allclose(ours, gammaln(x), rtol=1e-13, atol=1e-13)


def test_theta_bound_matches_scipy():
    rng = np.random.default_rng(4)
    for n_topics in (1, 3, 20, 101):
        gamma_d = 1e-3 + rng.gamma(0.3, 4.0, n_topics)
        alpha = rng.uniform(0.01, 2.0, n_topics)
        elog_theta = digamma(gamma_d) - digamma(gamma_d.sum())
        expected = ((alpha - gamma_d) * elog_theta + gammaln(gamma_d)).sum() - gammaln(gamma_d.sum())
        assert _kernels._theta_bound(gamma_d, gamma_d.sum(), alpha) == pytest.approx(expected, rel=1e-13, abs=1e-12)


@pytest.mark.parametrize("n_chunks", [1, 7, 64])
def test_topic_expectations_match_numpy(n_chunks):
    rng = np.random.default_rng(1)
    lam = 1e-3 + rng.gamma(0.2, 5.0, (500, 9))
    exp_elog_beta = np.empty_like(lam)
    sums = _kernels.topic_expectations(lam, exp_elog_beta, n_chunks)
    elog_beta = digamma(lam) - digamma(lam.sum(0))
    assert (np.exp(elog_beta) < 1e-100).any()             # lam of 1e-3: values the floor lifts
    np.testing.assert_allclose(exp_elog_beta, np.maximum(np.exp(elog_beta), _kernels.SMOOTHED_WEIGHT_FLOOR),
                               rtol=1e-12)
    np.testing.assert_allclose(sums, [elog_beta.sum(), (lam * elog_beta).sum(),
                                      gammaln(lam).sum() - gammaln(lam.sum(0)).sum()], rtol=1e-12)


def test_dirichlet_helpers_match_numpy():
    gamma = np.random.default_rng(0).uniform(0.01, 50, (20, 7))
    np.testing.assert_allclose(_kernels.dirichlet_expectation_sum(gamma),
                               (digamma(gamma) - digamma(gamma.sum(1))[:, None]).sum(0), rtol=1e-12)
    np.testing.assert_allclose(_kernels.log_dirichlet_normaliser(gamma),
                               gammaln(gamma.sum(1)) - gammaln(gamma).sum(1), rtol=1e-12)
    # and a gamma whose exponents reach -54, which must not be rounded to float32 before the exp
    for gamma_d in (gamma[3], np.array([0.02, 0.05, 0.3, 1.0, 5.0, 40.0, 3.0])):
        elog_theta = digamma(gamma_d) - digamma(gamma_d.sum())
        for dtype, rtol in (("float64", 1e-12), ("float32", 1.2e-7)):   # float32: to its last bit
            out = np.empty(7, dtype=dtype)
            shift = _kernels.exp_dirichlet_expectation(gamma_d, out, np.empty(7))
            assert shift == pytest.approx(elog_theta.max(), rel=1e-13)
            np.testing.assert_allclose(out, np.exp(elog_theta - elog_theta.max()), rtol=rtol)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_iter,tol", [(1, 0.0), (7, 0.0), (100, 1e-6)])
def test_e_step_matches_numpy_reference(seed, max_iter, tol):
    X, beta, alpha = random_problem(seed)
    gamma0 = initial_gamma(X, alpha)
    ours = e_step(X, beta.T, alpha, gamma0, max_iter=max_iter, tol=tol)
    gamma, sstats, doc_bound = reference.e_step(X, beta, alpha, gamma0, max_iter, tol)
    np.testing.assert_allclose(ours.gamma, gamma, rtol=1e-11)
    np.testing.assert_allclose(ours.sstats, sstats.T, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours.doc_bound, doc_bound, rtol=1e-10, atol=1e-10)
    assert abs(ours.doc_bound[-1]) < 1e-12   # an empty document has probability one
    np.testing.assert_allclose(ours.gamma[-1], alpha)


# Document lengths around every chunk of a block: 1 to 19 words, then around 32 (float64's full
# chunk of 8 vectors) and 64 (float32's), and documents of several chunks.
REMAINDER_LENGTHS = [*range(1, 20), 31, 32, 33, 36, 63, 64, 65, 72, 100, 120, 129]


@pytest.mark.parametrize("n_topics", [3, 4, 5, 8, 9, 13])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_e_step_matches_numpy_reference_for_every_remainder_of_words_and_topics(n_topics, dtype):
    """Documents around every chunk size and K around the vector widths (4 doubles, 8 singles):
    every partial tile of the gather, chunk of the passes and leftover topic."""
    rng = np.random.default_rng(n_topics)
    n_words = 160
    dense = np.zeros((len(REMAINDER_LENGTHS) + 1, n_words))      # and an empty document
    for d, length in enumerate(REMAINDER_LENGTHS):
        dense[d, rng.choice(n_words, length, replace=False)] = rng.integers(1, 4, length)
    X = sp.csr_matrix(dense)
    beta = rng.dirichlet(np.full(n_words, 0.5), size=n_topics)
    alpha = rng.uniform(0.05, 1.0, n_topics)
    gamma0 = initial_gamma(X, alpha)
    ours = e_step(X, topic_weights(beta.T, dtype), alpha, gamma0, max_iter=6, tol=0.0)
    gamma, sstats, doc_bound = reference.e_step(X, beta, alpha, gamma0, 6, 0.0)
    rtol = 1e-11 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(ours.gamma, gamma, rtol=rtol)
    np.testing.assert_allclose(ours.sstats, sstats.T, rtol=10 * rtol, atol=1e-9)
    np.testing.assert_allclose(ours.doc_bound, doc_bound, rtol=rtol, atol=1e-12)


def test_e_step_refuses_parameters_of_another_shape():
    """A wrong alpha or gamma is an error, not a read or write outside the kernel's arrays."""
    X, beta, alpha = random_problem(0)
    with pytest.raises(ValueError, match="alpha"):
        e_step(X, beta.T, alpha[:-1])
    with pytest.raises(ValueError, match="gamma"):
        e_step(X, beta.T, alpha, gamma=np.ones((X.shape[0], alpha.shape[0] + 1)))
    with pytest.raises(ValueError, match="words"):
        e_step(X, beta.T[:-1], alpha)


@pytest.mark.parametrize("lanes", [4, 8])
def test_gather_places_each_word_in_the_chunk_the_passes_take(lanes):
    """_gather puts word j in the chunk _chunk_of names; _block_pass takes chunks of
    CHUNK_VECTORS vectors, then one each of 4, 2 and 1 as the words left allow: the same ones."""
    for n_padded in range(0, 40 * lanes, lanes):
        chunks, first = [], 0
        while first + _kernels.CHUNK_VECTORS * lanes <= n_padded:
            chunks.append((first, _kernels.CHUNK_VECTORS * lanes))
            first += _kernels.CHUNK_VECTORS * lanes
        for n_vectors in (4, 2, 1):
            if first + n_vectors * lanes <= n_padded:
                chunks.append((first, n_vectors * lanes))
                first += n_vectors * lanes
        assert first == n_padded
        for j in range(n_padded):
            expected = next(chunk for chunk in chunks if chunk[0] <= j < chunk[0] + chunk[1])
            assert tuple(_kernels._chunk_of.py_func(j, n_padded, lanes)) == expected


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gather_lays_out_chunks_topic_major_and_the_passes_read_them(dtype):
    """_gather puts topic k's weight for word j at chunk K + k width + j - chunk, (chunk, width)
    = _chunk_of(j), and pads the words to a whole vector with weights 1 and counts 0; _block_pass
    over that block gives numpy's ratio = n / (t @ B) and B @ ratio (every padded length up to 40
    vectors, so every mix of the 8-, 4-, 2- and 1-vector chunks; K=11, copied a square tile at a
    time and then topic by topic in both precisions)."""
    n_topics, lanes = 11, 32 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(4)
    weights = rng.uniform(0.01, 1.0, (50, n_topics)).astype(dtype)
    for n_words in range(0, 40 * lanes + 1, 3):
        indices = rng.integers(0, 50, n_words).astype(np.int32)
        counts = rng.integers(1, 4, n_words).astype(np.float64)
        n_padded = -(-n_words // lanes) * lanes
        block = np.full(n_topics * n_padded, np.nan, dtype=dtype)
        block_counts = np.full(n_padded, np.nan, dtype=dtype)
        _kernels._gather(indices, counts, weights, 0, n_words, block, block_counts)
        B = np.ones((n_topics, n_padded), dtype=dtype)
        B[:, :n_words] = weights[indices].T
        chunk, width = np.array([_kernels._chunk_of.py_func(j, n_padded, lanes)
                                 for j in range(n_padded)], dtype=np.int64).reshape(-1, 2).T
        k = np.arange(n_topics)[:, None]
        position = chunk * n_topics + k * width + np.arange(n_padded) - chunk
        np.testing.assert_array_equal(block[position], B)
        np.testing.assert_array_equal(block_counts, np.r_[counts, np.zeros(n_padded - n_words)])
        t = rng.uniform(0.1, 1.0, n_topics).astype(dtype)
        ratio = np.full(n_padded, np.nan, dtype=dtype)
        partial = np.zeros(n_topics * lanes, dtype=dtype)
        _kernels._block_pass(n_padded, block_counts, block, t, ratio, partial, False)
        expected_ratio = block_counts.astype(float) / (t.astype(float) @ B)
        rtol = 1e-13 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(ratio, expected_ratio, rtol=rtol)
        np.testing.assert_allclose(partial.reshape(n_topics, lanes).sum(1), B @ expected_ratio, rtol=rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_block_pass_backward_takes_every_chunk_as_forward_does(dtype):
    """Taken from the last chunk to the first, a block gives the same ratios (bitwise: each s_j
    sums the same terms in the same order) and the same products (within rounding: the words come
    in another order), for every padded length up to 40 vectors."""
    n_topics, lanes = 7, 32 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(3)
    for n_padded in range(0, 40 * lanes + 1, lanes):
        block = rng.uniform(0.01, 1.0, n_topics * n_padded).astype(dtype)
        counts = rng.integers(1, 4, n_padded).astype(dtype)
        t = rng.uniform(0.1, 1.0, n_topics).astype(dtype)
        results = []
        for backward in (False, True):
            ratio = np.full(n_padded, np.nan, dtype=dtype)
            partial = np.zeros(n_topics * lanes, dtype=dtype)
            _kernels._block_pass(n_padded, counts, block, t, ratio, partial, backward)
            results.append((ratio, partial.reshape(n_topics, -1).sum(1)))
        (ratio, acc), (ratio_back, acc_back) = results
        np.testing.assert_array_equal(ratio_back, ratio)
        np.testing.assert_allclose(acc_back, acc, rtol=1e-14 if dtype == "float64" else 1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_e_step_in_blocks_of_words_matches_numpy_reference(dtype):
    """A document with more words than a block holds (BLOCK_VALUES) is taken a block of words at a
    time: same result as the reference."""
    n_topics = 64
    n_words = _kernels.BLOCK_VALUES // n_topics * 2 + 3       # three blocks, the last one short
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 4, n_words).astype(float)
    X = sp.csr_matrix(np.vstack([counts, np.r_[counts[:100], np.zeros(n_words - 100)]]))
    beta = rng.dirichlet(np.full(n_words, 0.5), size=n_topics)
    alpha = np.full(n_topics, 0.3)
    gamma0 = initial_gamma(X, alpha)
    ours = e_step(X, topic_weights(beta.T, dtype), alpha, gamma0, max_iter=5, tol=0.0)
    gamma, sstats, doc_bound = reference.e_step(X, beta, alpha, gamma0, 5, 0.0)
    rtol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(ours.gamma, gamma, rtol=rtol / 10)
    np.testing.assert_allclose(ours.sstats, sstats.T, rtol=rtol, atol=1e-13 if dtype == "float64" else 1e-6)
    np.testing.assert_allclose(ours.doc_bound, doc_bound, rtol=rtol)


def test_word_index_is_the_csc_order_and_a_given_index_changes_nothing():
    X, beta, alpha = random_problem(4, n_docs=40)
    X = as_csr_counts(X)
    index = entries_by_word(X)
    np.testing.assert_array_equal(index.chunk_docs, [0, X.shape[0]])     # a small batch: one chunk
    word_ptr, entry, entry_doc = index.word_ptr[0], index.entry, index.entry_doc
    csc = X.tocsc()
    np.testing.assert_array_equal(word_ptr, csc.indptr)
    np.testing.assert_array_equal(entry_doc, csc.indices)         # documents, in order, per word
    np.testing.assert_array_equal(X.indices[entry], np.repeat(np.arange(X.shape[1]), np.diff(word_ptr)))
    np.testing.assert_array_equal(X.data[entry], csc.data)
    given, computed = e_step(X, beta.T, alpha, word_index=index), e_step(X, beta.T, alpha)
    np.testing.assert_array_equal(given.sstats, computed.sstats)
    np.testing.assert_array_equal(given.gamma, computed.gamma)


def test_document_chunks_cover_the_documents_within_the_nonzeros():
    X = sp.random(60, 30, density=0.3, format="csr", random_state=1)
    X = as_csr_counts(sp.vstack([X[:7], np.ones((1, 30)), X[8:]]))   # document 7: 30 nonzeros, a chunk of its own
    bounds = document_chunks(X, max_nonzeros=20)
    assert bounds[0] == 0 and bounds[-1] == X.shape[0] and np.all(np.diff(bounds) >= 1)
    sizes = np.diff(X.indptr[bounds])
    assert np.all((sizes <= 20) | (np.diff(bounds) == 1))
    assert any(b == 7 for b in bounds) and any(b == 8 for b in bounds)
    # greedy: no chunk could have taken the next document too
    assert np.all(X.indptr[bounds[2:]] - X.indptr[bounds[:-2]] > 20)


def test_e_step_by_chunks_of_documents_equals_one_pass():
    """The E-step keeps the ratios of one chunk of documents at a time; its results are the same to
    the bit, as each word's sufficient statistics are still summed in document order."""
    X, beta, alpha = random_problem(6, n_docs=200, n_words=80, n_topics=7)
    X = as_csr_counts(X)
    whole = e_step(X, beta.T, alpha, word_index=entries_by_word(X, max_nonzeros=X.nnz))
    index = entries_by_word(X, max_nonzeros=97)
    assert len(index.chunk_docs) > 10
    chunked = e_step(X, beta.T, alpha, word_index=index)
    for field in ("gamma", "sstats", "doc_bound", "n_iter"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))


def test_sstats_preserve_token_counts():
    X, beta, alpha = random_problem(3, n_docs=40, n_words=50, n_topics=6)
    result = e_step(X, beta.T, alpha)
    np.testing.assert_allclose(result.sstats.sum(axis=1), np.asarray(X.sum(axis=0)).ravel(), rtol=1e-12)
    np.testing.assert_allclose(result.gamma.sum(axis=1) - alpha.sum(),
                               np.asarray(X.sum(axis=1)).ravel(), rtol=1e-12)


def test_e_step_does_not_depend_on_thread_count():
    import numba
    X, beta, alpha = random_problem(4, n_docs=300, n_words=80, n_topics=5)
    numba.set_num_threads(1)
    one = e_step(X, beta.T, alpha)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    many = e_step(X, beta.T, alpha)
    for field in ("gamma", "sstats", "doc_bound"):
        assert np.array_equal(getattr(one, field), getattr(many, field))


def exact_log_likelihood_two_topics(counts, beta, alpha):
    """log p(w | alpha, beta) of one document for K=2, by quadrature over theta_1 in (0, 1)."""
    words = np.repeat(np.arange(counts.size), counts)
    log_norm = gammaln(alpha.sum()) - gammaln(alpha).sum()

    def integrand(t):
        prior = np.exp(log_norm + (alpha[0] - 1) * np.log(t) + (alpha[1] - 1) * np.log1p(-t))
        return prior * np.prod(t * beta[0, words] + (1 - t) * beta[1, words])

    value, _ = integrate.quad(integrand, 0, 1, epsabs=0, epsrel=1e-12, limit=200,
                              points=[1e-6, 1e-3, 0.5, 1 - 1e-3])
    return np.log(value)


def test_elbo_is_below_the_exact_log_likelihood():
    """K=2, V=3: the ELBO bounds log p(w) from below, and tightly for a converged E-step."""
    beta = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    alpha = np.array([0.8, 1.5])
    docs = np.array([[3, 1, 0], [0, 2, 4], [1, 1, 1], [5, 0, 0], [0, 0, 0]])
    result = e_step(sp.csr_matrix(docs.astype(float)), beta.T, alpha, max_iter=1000, tol=1e-12)
    exact = np.array([exact_log_likelihood_two_topics(d, beta, alpha) for d in docs])
    assert np.all(result.doc_bound <= exact + 1e-9)
    assert np.all(exact - result.doc_bound < 0.5)
    assert abs(result.doc_bound[-1]) < 1e-12 and abs(exact[-1]) < 1e-12
