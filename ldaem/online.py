"""The minibatch updates of online (stochastic) variational EM (DESIGN.md, "Stochastic variational EM").

Hoffman, Blei & Bach, "Online learning for latent Dirichlet allocation", NIPS 2010: each minibatch
B of a corpus of D documents gets an E-step against the current topics, whose statistics, scaled
by D / |B|, stand in for the whole corpus's; the global parameters then take a step of size rho_t
towards the values batch EM would give them. These are plain numpy functions of their arguments;
ldaem.lda.LDA owns the loop (fit with learning_method='online', and partial_fit).
"""

import numpy as np
from scipy.special import digamma, polygamma

# A damped alpha step that would leave the positive orthant is halved at most this often.
_MAX_HALVINGS = 60


def learning_rate(t, tau0, kappa):
    """rho_t = (tau0 + t)^(-kappa), the step size of the t-th update (t = 1, 2, ...).

    Hoffman et al. 2010, eq. 7 (DESIGN.md, "Stochastic variational EM"); with kappa in (0.5, 1]
    the steps satisfy Robbins-Monro: sum rho_t = infinity, sum rho_t^2 < infinity. Counting from
    t = 1, as scikit-learn does, keeps rho_t <= 1 even for tau0 = 0.
    """
    return float((tau0 + t) ** -kappa)


def minibatch_scale(total_samples, batch_docs):
    """D / |B|: how many times a minibatch must be counted to stand for the whole corpus."""
    return float(total_samples) / batch_docs


def online_topic_update(lam, sstats, eta, rho, scale):
    """lambda <- (1 - rho) lambda + rho (eta + scale ss_B) (DESIGN.md, "Stochastic variational EM").

    eta + scale ss_B is the lambda that batch EM would compute (lambda_kw = eta + sum_d n_dw phi_dwk)
    if the corpus were scale copies of the minibatch; the update is a natural-gradient step of size
    rho on the ELBO (Hoffman et al. 2010, eq. 8). lam and sstats share a layout (V x K here).
    """
    return (1.0 - rho) * lam + rho * (eta + scale * sstats)


def dirichlet_newton_step(alpha, elog_sum, n_docs):
    """The Newton-Raphson step for alpha on n (log Gamma(sum alpha) - sum log Gamma(alpha_k))
    + sum_k (alpha_k - 1) elog_sum_k, the prior's ELBO term (DESIGN.md, "M-step").

    The Hessian is diag(q) + z 1 1^T, which inverts in O(K) (Minka 2000, "Estimating a Dirichlet
    distribution", section 1): step = -(g - b) / q with b = sum(g / q) / (1 / z + sum(1 / q)).
    From a symmetric alpha with elog_sum constant across topics the step is the one-dimensional
    Newton step of a symmetric alpha.
    """
    gradient = n_docs * (digamma(alpha.sum()) - digamma(alpha)) + elog_sum
    q = -n_docs * polygamma(1, alpha)
    z = n_docs * polygamma(1, alpha.sum())
    b = (gradient / q).sum() / (1.0 / z + (1.0 / q).sum())
    return -(gradient - b) / q


def damped_alpha_step(alpha, elog_sum, n_docs, rho, symmetric):
    """alpha + rho * (Newton step), halved until alpha stays positive (online update of alpha).

    elog_sum and n_docs are the minibatch's sum of E[log theta_d] and size scaled to the corpus
    (times D / |B|), so that the step estimates the batch M-step's. symmetric: alpha stays one
    shared value, moved by the Newton step of the symmetric objective (elog_sum averaged over
    topics). Hoffman et al. 2010 (section 2.2) update alpha this way; their code skips a step
    that would make alpha non-positive, ours halves it instead.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if symmetric:
        elog_sum = np.full(alpha.shape, np.mean(elog_sum))
    step = rho * dirichlet_newton_step(alpha, elog_sum, n_docs)
    for _ in range(_MAX_HALVINGS):
        candidate = alpha + step
        if np.all(candidate > 0):
            return candidate
        step = step / 2.0
    return alpha.copy()
