"""Slow, obviously-correct numpy versions of the kernels' mathematics (Blei, Ng & Jordan 2003)."""

import numpy as np
from scipy.special import digamma, gammaln


def e_step(X, beta, alpha, gamma0, max_iter, tol):
    """Mean-field E-step document by document, storing phi explicitly (beta: K x V).

    Each iteration computes the phi optimal for gamma and the gamma optimal for that phi; once
    gamma would change by less than tol (mean absolute), the current gamma and its phi are kept.
    Returns (gamma, sstats K x V, doc_bound): the ELBO of each document is the textbook sum of
    expectations (Blei et al. 2003, eq. 15) at gamma and the phi optimal for it.
    """
    return _document_iterations(
        X, beta, alpha, gamma0, max_iter, tol, optimal_phi,
        lambda n, phi, gamma_d, beta_words: document_elbo(n, phi, gamma_d, alpha, np.log(beta_words)))


def _document_iterations(X, beta, alpha, gamma0, max_iter, tol, phi_of, bound_of):
    """gamma_d = alpha + phi_of(gamma_d, beta_words) @ n until it changes by less than tol (then
    the current gamma and its phi are kept) or max_iter times, document by document; returns
    (gamma, sstats K x V, doc_bound) with doc_bound[d] = bound_of(n, phi, gamma_d, beta_words)."""
    X = np.asarray(X.todense()) if hasattr(X, "todense") else np.asarray(X)
    gamma = np.array(gamma0, dtype=float)
    sstats = np.zeros_like(beta)
    doc_bound = np.zeros(X.shape[0])
    for d in range(X.shape[0]):
        words = np.flatnonzero(X[d])
        n = X[d, words]
        for _ in range(max_iter):
            phi = phi_of(gamma[d], beta[:, words])
            new = alpha + phi @ n
            if np.abs(new - gamma[d]).mean() < tol:
                break      # converged: keep gamma, whose optimal phi is at hand
            gamma[d] = new
        else:
            phi = phi_of(gamma[d], beta[:, words])
        sstats[:, words] += phi * n
        doc_bound[d] = bound_of(n, phi, gamma[d], beta[:, words])
    return gamma, sstats, doc_bound


def optimal_phi(gamma_d, beta_words):
    """phi_wk proportional to beta_kw exp(E[log theta_k]), K x W, columns on the simplex."""
    elog_theta = digamma(gamma_d) - digamma(gamma_d.sum())
    phi = beta_words * np.exp(elog_theta)[:, None]
    return phi / phi.sum(axis=0)


def document_elbo(n, phi, gamma_d, alpha, log_beta_words):
    """E[log p(theta|alpha)] + E[log p(z|theta)] + E[log p(w|z,beta)] - E[log q(theta)] - E[log q(z)]."""
    elog_theta = digamma(gamma_d) - digamma(gamma_d.sum())
    log_phi = np.log(np.where(phi > 0, phi, 1.0))
    return (gammaln(alpha.sum()) - gammaln(alpha).sum() + ((alpha - 1) * elog_theta).sum()
            + (n * (phi * elog_theta[:, None]).sum(axis=0)).sum()
            + (n * (phi * log_beta_words).sum(axis=0)).sum()
            - gammaln(gamma_d.sum()) + gammaln(gamma_d).sum() - ((gamma_d - 1) * elog_theta).sum()
            - (n * (phi * log_phi).sum(axis=0)).sum())


def map_e_step(X, beta, alpha, gamma0, max_iter, tol):
    """EM for each document's MAP topic proportions (docs/map.md), storing phi explicitly.

    theta_d = gamma_d / sum gamma_d; each iteration computes the responsibilities phi_wk
    proportional to theta_k beta_kw and gamma_d = alpha + phi @ n, with e_step's stopping rule.
    Returns (gamma, sstats K x V, doc_bound): doc_bound the log posterior density of theta_d up to
    constants, log p(w_d | theta_d, beta) + sum_k alpha_k log theta_dk.
    """
    return _document_iterations(
        X, beta, alpha, gamma0, max_iter, tol, map_phi,
        lambda n, phi, gamma_d, beta_words: map_document_objective(n, gamma_d / gamma_d.sum(), alpha,
                                                                   beta_words))


def map_phi(gamma_d, beta_words):
    """phi_wk proportional to theta_k beta_kw, K x W, columns on the simplex."""
    phi = beta_words * gamma_d[:, None]
    return phi / phi.sum(axis=0)


def map_document_objective(n, theta, alpha, beta_words):
    """log p(w_d | theta, beta) + log Dirichlet(theta | alpha + 1), less the Dirichlet's normaliser."""
    return float(n @ np.log(theta @ beta_words) + alpha @ np.log(theta))


def cvb0_sweep(X, phi, alpha, eta, beta):
    """One CVB0 sweep (docs/cvb0.md), document after document, plain numpy: N_wk and N_k from the
    phi given (nnz x K, in X's CSR order), held fixed; each document's N_dk updated as its nonzeros
    are, one token's own share min(n_dw, 1) phi_dw left out of every count. Returns (phi, N_wk V x K after the sweep,
    gamma = alpha + N_dk, doc_bound: the MAP objective of theta_d = gamma_d / sum gamma_d with the
    topics beta K x V)."""
    X = X.tocsr()
    n_words = X.shape[1]
    phi = phi.copy()
    word_topic = np.zeros((n_words, phi.shape[1]))
    np.add.at(word_topic, X.indices, X.data[:, None] * phi)
    topic_total = word_topic.sum(axis=0)
    gamma, doc_bound = np.empty((X.shape[0], phi.shape[1])), np.empty(X.shape[0])
    for d in range(X.shape[0]):
        lo, hi = X.indptr[d], X.indptr[d + 1]
        doc_topic = X.data[lo:hi] @ phi[lo:hi]
        for i in range(lo, hi):
            w, own = X.indices[i], min(X.data[i], 1.0) * phi[i]
            new = (word_topic[w] - own + eta) * (doc_topic - own + alpha) / (topic_total - own + n_words * eta)
            new /= new.sum()
            doc_topic += X.data[i] * (new - phi[i])
            phi[i] = new
        gamma[d] = alpha + doc_topic
        doc_bound[d] = map_document_objective(X.data[lo:hi], gamma[d] / gamma[d].sum(), alpha,
                                              beta[:, X.indices[lo:hi]])
    word_topic = np.zeros((n_words, phi.shape[1]))
    np.add.at(word_topic, X.indices, X.data[:, None] * phi)
    return phi, word_topic, gamma, doc_bound
