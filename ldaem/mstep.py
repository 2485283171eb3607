"""The M-step (DESIGN.md): closed-form topics, Newton-Raphson for the Dirichlet priors."""

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from ldaem.model import UNSEEN_WORD_PROBABILITY as MIN_TOPIC_WORD
from ldaem.online import dirichlet_newton_step

# A Newton step that does not improve the objective is halved at most this often.
_MAX_HALVINGS = 60


def topics_from_sstats(sstats):
    """beta_kw proportional to sum_d n_dw phi_dwk (maximum likelihood), word-major V x K.

    A topic that no token is assigned to becomes uniform.
    """
    totals = sstats.sum(axis=0)
    used = totals > 0
    beta = sstats / np.where(used, totals, 1.0)
    if not used.all():
        beta[:, ~used] = 1.0 / sstats.shape[0]
    return np.maximum(beta, MIN_TOPIC_WORD, out=beta)


def dirichlet_log_likelihood(alpha, elog_sum, n_docs):
    """n (log Gamma(sum alpha) - sum log Gamma(alpha_k)) + sum_k (alpha_k - 1) elog_sum_k.

    The part of the ELBO that depends on a Dirichlet prior alpha, given the summed E[log theta]
    of n_docs draws from it.
    """
    return n_docs * (gammaln(alpha.sum()) - gammaln(alpha).sum()) + ((alpha - 1.0) * elog_sum).sum()


def update_symmetric_prior(value, elog_sum, n_docs, n_topics, max_iter=100, tol=1e-10):
    """Maximise the prior's ELBO term over a symmetric alpha = a * ones(K), by Newton in log a.

    elog_sum is the total of E[log theta_dk] over documents and topics (a scalar). As in lda-c,
    Newton runs in log a so that a stays positive; a step that would lower the objective is halved.
    """
    def objective(a):
        return n_docs * (gammaln(n_topics * a) - n_topics * gammaln(a)) + (a - 1.0) * elog_sum

    log_a = np.log(value)
    current = objective(value)
    for _ in range(max_iter):
        a = np.exp(log_a)
        with np.errstate(invalid="ignore", over="ignore"):     # a ~ 1e-300: trigamma(a) = inf,
            grad = n_docs * n_topics * (digamma(n_topics * a) - digamma(a)) + elog_sum
            hess = n_docs * n_topics * (n_topics * polygamma(1, n_topics * a) - polygamma(1, a))
        # derivatives with respect to log a
        grad_log = grad * a
        hess_log = hess * a * a + grad_log
        step = -grad_log / hess_log if hess_log < 0 else np.sign(grad_log)   # nan: a unit step
        for _ in range(_MAX_HALVINGS):
            candidate = objective(np.exp(log_a + step))
            if candidate >= current:
                break
            step /= 2.0
        else:
            break
        log_a += step
        current = candidate
        if abs(step) < tol:
            break
    return float(np.exp(log_a))


def update_asymmetric_prior(alpha, elog_sum, n_docs, max_iter=100, tol=1e-10):
    """Maximise the prior's ELBO term over alpha (K values) by Newton-Raphson.

    The Hessian is diag(q) + z 1 1^T and inverts in O(K) (Minka 2000, "Estimating a Dirichlet
    distribution", section 1); steps that leave the positive orthant or lower the objective are halved.
    """
    alpha = np.asarray(alpha, dtype=np.float64).copy()
    current = dirichlet_log_likelihood(alpha, elog_sum, n_docs)
    for _ in range(max_iter):
        step = -dirichlet_newton_step(alpha, elog_sum, n_docs)
        for halving in range(_MAX_HALVINGS):
            candidate_alpha = alpha - 0.5 ** halving * step
            if np.all(candidate_alpha > 0):
                candidate = dirichlet_log_likelihood(candidate_alpha, elog_sum, n_docs)
                if candidate >= current:
                    break
        else:
            break
        alpha = candidate_alpha
        current = candidate
        if np.max(np.abs(0.5 ** halving * step)) < tol * max(1.0, alpha.max()):
            break
    return alpha
