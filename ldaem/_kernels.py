"""Compiled kernels of the variational E-step (DESIGN.md, "Variational E-step" and "The ELBO").

Only numba functions over contiguous arrays and scalars live here: no classes, logging or I/O.
Topic-word parameters are stored word-major (V x K) so that each word's K values are contiguous.
Every kernel's docstring names its plain-numpy equivalent; tests/test_kernels.py checks it.
"""

import math

import numpy as np
from numba import njit, prange

# Floating-point reassociation lets LLVM vectorise the K-long dot products; no flag that assumes
# away NaN or infinity is set, so a NaN still propagates to the caller's checks.
FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, inline="always")
def _digamma_parts(x):
    """(y, c) with psi(x) = log(y) + c and y >= 6, for x > 0.

    Below 6, psi(x) = psi(x + 6) - sum_{i<6} 1/(x+i), the six terms summed as one fraction:
    pairing i with 5 - i gives (2x+5)(1/a + 1/b + 1/c). Above, the asymptotic series
    psi(y) ~ log y - 1/(2y) - sum_n B_2n / (2n y^2n), up to y^-14.
    """
    c = 0.0
    if x < 6.0:
        a = x * (x + 5.0)
        b = (x + 1.0) * (x + 4.0)
        d = (x + 2.0) * (x + 3.0)
        c = -(2.0 * x + 5.0) * (b * d + a * d + a * b) / (a * b * d)
        x += 6.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
        1.0 / 240 - inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12))))))
    return x, c - 0.5 * inv - series


@njit(cache=True, inline="always")
def digamma(x):
    """psi(x) for x > 0. Equivalent to scipy.special.digamma(x) (within 1e-13 relative)."""
    y, c = _digamma_parts(x)
    return math.log(y) + c


@njit(cache=True)
def exp_dirichlet_expectation(gamma_d, out):
    """out[k] = exp(E[log theta_k]) under Dirichlet(gamma_d).

    Equivalent to np.exp(psi(gamma_d) - psi(gamma_d.sum())); computed as y exp(c - psi(sum))
    with psi = log y + c, which saves a logarithm per topic.
    """
    total = 0.0
    for k in range(gamma_d.shape[0]):
        total += gamma_d[k]
    psi_total = digamma(total)
    for k in range(gamma_d.shape[0]):
        y, c = _digamma_parts(gamma_d[k])
        out[k] = y * math.exp(c - psi_total)


@njit(cache=True, parallel=True)
def dirichlet_expectation_sum(gamma):
    """Column sums of E[log theta] over documents (the alpha M-step's sufficient statistic).

    Equivalent to (psi(gamma) - psi(gamma.sum(1))[:, None]).sum(0).
    """
    n_docs, n_topics = gamma.shape
    per_doc = np.empty((n_docs, n_topics))
    for d in prange(n_docs):
        total = 0.0
        for k in range(n_topics):
            total += gamma[d, k]
        psi_total = digamma(total)
        for k in range(n_topics):
            per_doc[d, k] = digamma(gamma[d, k]) - psi_total
    return per_doc.sum(axis=0)


@njit(cache=True, parallel=True)
def log_dirichlet_normaliser(params):
    """Row-wise log Gamma(sum_k p_k) - sum_k log Gamma(p_k) of a 2-D array of Dirichlet parameters.

    Equivalent to gammaln(params.sum(1)) - gammaln(params).sum(1).
    """
    out = np.empty(params.shape[0])
    for r in prange(params.shape[0]):
        total = 0.0
        log_gamma_sum = 0.0
        for k in range(params.shape[1]):
            total += params[r, k]
            log_gamma_sum += math.lgamma(params[r, k])
        out[r] = math.lgamma(total) - log_gamma_sum
    return out


@njit(cache=True, fastmath=FAST)
def _accumulate_ratios(start, end, indices, counts, exp_elog_beta, exp_elog_theta_d, ratio, acc):
    """ratio_i = n_i / s_i with s_i = sum_k t_k beta_{w_i k}, and acc = sum_i ratio_i beta_{w_i},
    over the nonzeros start..end-1 of one document.

    Equivalent to ratio = counts / (B @ t); acc = ratio @ B, with B = exp_elog_beta[indices[start:end]].
    Words are taken four at a time: four independent dot products, one pass over acc per four words.
    """
    n_topics = acc.shape[0]
    beta = exp_elog_beta
    acc[:] = 0.0
    i = start
    while i + 4 <= end:
        # 2-D indexing, not row views: a view per word costs reference counting in the hot loop
        w0, w1, w2, w3 = indices[i], indices[i + 1], indices[i + 2], indices[i + 3]
        s0 = s1 = s2 = s3 = 0.0
        for k in range(n_topics):
            t = exp_elog_theta_d[k]
            s0 += t * beta[w0, k]
            s1 += t * beta[w1, k]
            s2 += t * beta[w2, k]
            s3 += t * beta[w3, k]
        c0, c1, c2, c3 = counts[i] / s0, counts[i + 1] / s1, counts[i + 2] / s2, counts[i + 3] / s3
        ratio[i], ratio[i + 1], ratio[i + 2], ratio[i + 3] = c0, c1, c2, c3
        for k in range(n_topics):
            acc[k] += c0 * beta[w0, k] + c1 * beta[w1, k] + c2 * beta[w2, k] + c3 * beta[w3, k]
        i += 4
    while i < end:
        w0 = indices[i]
        s0 = 0.0
        for k in range(n_topics):
            s0 += exp_elog_theta_d[k] * beta[w0, k]
        c0 = counts[i] / s0
        ratio[i] = c0
        for k in range(n_topics):
            acc[k] += c0 * beta[w0, k]
        i += 1


@njit(cache=True, fastmath=FAST)
def _fit_document(start, end, indices, counts, exp_elog_beta, alpha, gamma_d, exp_elog_theta_d,
                  ratio, max_iter, tol):
    """Coordinate ascent on one document's (gamma_d, phi_d); gamma_d is updated in place.

    Leaves in exp_elog_theta_d the exp(E[log theta_d]) of the returned gamma_d, and in
    ratio[start:end] the n_dw / s_w of the phi optimal for it. Once the change of gamma falls
    below tol, the gamma before that last small step is kept: its optimal phi is already at hand,
    and every step of coordinate ascent raised the ELBO. Returns (sum_w n_dw log s_w, iterations).
    """
    n_topics = alpha.shape[0]
    acc = np.empty(n_topics)
    previous = np.empty(n_topics)
    n_iter = 0
    converged = False
    for it in range(max_iter):
        n_iter = it + 1
        exp_dirichlet_expectation(gamma_d, exp_elog_theta_d)
        _accumulate_ratios(start, end, indices, counts, exp_elog_beta, exp_elog_theta_d, ratio, acc)
        # gamma_dk = alpha_k + t_k sum_w n_dw beta_kw / s_w  (DESIGN.md, E-step)
        change = 0.0
        for k in range(n_topics):
            new = alpha[k] + exp_elog_theta_d[k] * acc[k]
            change += abs(new - gamma_d[k])
            previous[k] = gamma_d[k]
            gamma_d[k] = new
        if change / n_topics < tol:
            converged = True
            break
    if converged:
        gamma_d[:] = previous
    else:
        exp_dirichlet_expectation(gamma_d, exp_elog_theta_d)
        _accumulate_ratios(start, end, indices, counts, exp_elog_beta, exp_elog_theta_d, ratio, acc)
    word_bound = 0.0
    for i in range(start, end):
        word_bound += counts[i] * math.log(counts[i] / ratio[i])
    return word_bound, n_iter


@njit(cache=True, parallel=True)
def _topic_word_sstats(indptr, indices, ratio, exp_elog_theta, exp_elog_beta):
    """ss_wk = sum_d n_dw t_dk beta_wk / s_dw (DESIGN.md, E-step), word-major.

    Equivalent to exp_elog_beta * (R.T @ exp_elog_theta) with R the CSR matrix (indptr, indices,
    ratio). Each thread owns whole words, so the sum has a fixed order: no per-thread copies of
    the V x K array, and the result does not depend on the number of threads.
    """
    n_docs = indptr.shape[0] - 1
    n_words, n_topics = exp_elog_beta.shape
    nnz = indices.shape[0]
    word_ptr = np.zeros(n_words + 1, dtype=np.int64)
    for i in range(nnz):
        word_ptr[indices[i] + 1] += 1
    for w in range(n_words):
        word_ptr[w + 1] += word_ptr[w]
    fill = word_ptr[:-1].copy()
    entry = np.empty(nnz, dtype=np.int64)
    entry_doc = np.empty(nnz, dtype=np.int64)
    for d in range(n_docs):
        for i in range(indptr[d], indptr[d + 1]):
            w = indices[i]
            entry[fill[w]] = i
            entry_doc[fill[w]] = d
            fill[w] += 1
    sstats = np.zeros((n_words, n_topics))
    for w in prange(n_words):
        for p in range(word_ptr[w], word_ptr[w + 1]):
            r = ratio[entry[p]]
            d = entry_doc[p]
            for k in range(n_topics):
                sstats[w, k] += r * exp_elog_theta[d, k]
        for k in range(n_topics):
            sstats[w, k] *= exp_elog_beta[w, k]
    return sstats


@njit(cache=True, parallel=True)
def e_step(indptr, indices, counts, exp_elog_beta, alpha, gamma_init, max_iter, tol, want_sstats):
    """The variational E-step over a CSR batch of documents (DESIGN.md).

    indptr, indices, counts: the batch's rows (int64, int64, float64); exp_elog_beta: V x K, beta
    itself for maximum-likelihood topics or exp(E[log beta]) for smoothed ones; alpha: K;
    gamma_init: D x K starting point (a warm start or alpha + N_d / K).

    Returns (gamma, sstats, doc_bound, n_iter): gamma D x K; sstats V x K (zeros(0, 0) unless
    want_sstats); doc_bound[d] = L_d, the document's ELBO at the phi optimal for gamma_d;
    n_iter[d] = inner iterations used.
    """
    n_docs = indptr.shape[0] - 1
    n_topics = alpha.shape[0]
    gamma = gamma_init.copy()
    exp_elog_theta = np.empty((n_docs, n_topics))
    ratio = np.empty(indices.shape[0])
    doc_bound = np.empty(n_docs)
    n_iter = np.empty(n_docs, dtype=np.int64)
    alpha_sum = 0.0
    alpha_log_gamma = 0.0
    for k in range(n_topics):
        alpha_sum += alpha[k]
        alpha_log_gamma += math.lgamma(alpha[k])
    prior_norm = math.lgamma(alpha_sum) - alpha_log_gamma
    for d in prange(n_docs):
        word_bound, n_iter[d] = _fit_document(
            indptr[d], indptr[d + 1], indices, counts, exp_elog_beta, alpha, gamma[d],
            exp_elog_theta[d], ratio, max_iter, tol)
        # L_d (DESIGN.md, "The ELBO"); E[log theta_dk] = log t_dk recomputed exactly with digamma
        gamma_sum = 0.0
        for k in range(n_topics):
            gamma_sum += gamma[d, k]
        psi_sum = digamma(gamma_sum)
        bound = prior_norm - math.lgamma(gamma_sum) + word_bound
        for k in range(n_topics):
            g = gamma[d, k]
            bound += (alpha[k] - g) * (digamma(g) - psi_sum) + math.lgamma(g)
        doc_bound[d] = bound
    if want_sstats:
        sstats = _topic_word_sstats(indptr, indices, ratio, exp_elog_theta, exp_elog_beta)
    else:
        sstats = np.zeros((0, 0))
    return gamma, sstats, doc_bound, n_iter
