"""The systems compared: how each is fitted and how each scores held-out documents.

Every fit uses the same seed, two threads where the library has them, and the same per-document
E-step limits: at most 100 inner iterations, stopping when the mean absolute change of gamma_d is
below 1e-3 (ldaem, scikit-learn and gensim all use exactly this criterion).
"""

import logging
import warnings
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from sklearn.decomposition import LatentDirichletAllocation

from ldaem import LDA
from ldaem.estep import e_step

SEED = 0
THREADS = 2
MAX_DOC_ITER = 100
MEAN_CHANGE_TOL = 1e-3


@dataclass(frozen=True)
class System:
    name: str
    module: str              # the library to import (the benchmark skips a system without it)
    fit: Callable            # (X, n_topics, n_iter) -> fitted model; n_iter: EM iterations or sweeps
    heldout_bound: Callable  # (model, X) -> the library's own held-out bound per word, or None
    plugin: Callable         # (model, n_words) -> (topic_word K x V with rows summing to one, alpha K)
    e_step: str              # how its E-step starts, for the report


def fit_ldaem(X, n_topics, max_iter, tol=0.0, **params):
    return LDA(n_components=n_topics, random_state=SEED, max_iter=max_iter, tol=tol, n_jobs=THREADS,
               max_doc_update_iter=MAX_DOC_ITER, mean_change_tol=MEAN_CHANGE_TOL, **params).fit(X)


def fit_ldaem_random_start(X, n_topics, max_iter):
    return fit_ldaem(X, n_topics, max_iter, init="random")


def fit_ldaem_float32(X, n_topics, max_iter, tol=0.0):
    return fit_ldaem(X, n_topics, max_iter, tol, dtype="float32")


def fit_sklearn(X, n_topics, max_iter):
    return LatentDirichletAllocation(
        n_components=n_topics, learning_method="batch", max_iter=max_iter, evaluate_every=-1,
        max_doc_update_iter=MAX_DOC_ITER, mean_change_tol=MEAN_CHANGE_TOL, n_jobs=THREADS,
        random_state=SEED).fit(X)


def _gensim_corpus(X):
    from gensim.matutils import Sparse2Corpus
    return Sparse2Corpus(X, documents_columns=False)


def fit_gensim(X, n_topics, passes):
    # update_every=0 with all documents in one chunk is gensim's batch mode; decay=0 makes the
    # M-step weight rho = 1, the plain batch variational EM update (as scikit-learn's batch mode).
    from gensim.models import LdaModel
    logging.getLogger("gensim").setLevel(logging.ERROR)   # "too few updates" on short runs
    return LdaModel(_gensim_corpus(X), num_topics=n_topics,
                    id2word={w: str(w) for w in range(X.shape[1])}, update_every=0,
                    chunksize=X.shape[0], passes=passes, decay=0.0, eval_every=None,
                    iterations=MAX_DOC_ITER, gamma_threshold=MEAN_CHANGE_TOL, random_state=SEED)


def tomotopy_model(X, n_topics, seed=SEED, eta=None):
    """An untrained tomotopy LDAModel holding the documents of X (tokens named by their column);
    eta None: tomotopy's default (0.01)."""
    import tomotopy as tp
    model = tp.LDAModel(k=n_topics, seed=seed, **({} if eta is None else {"eta": eta}))
    for row in X:
        model.add_doc(np.repeat(row.indices, row.data.astype(np.int64)).astype(str).tolist())
    return model


def train_tomotopy(model, sweeps):
    with warnings.catch_warnings():   # "may differ even with fixed seed if workers != 1": accepted
        warnings.simplefilter("ignore", RuntimeWarning)
        model.train(sweeps, workers=THREADS)
    return model


def fit_tomotopy(X, n_topics, sweeps):
    return train_tomotopy(tomotopy_model(X, n_topics), sweeps)


def heldout_ldaem(model, X):
    return model.score(X) / X.sum()


def heldout_sklearn(model, X):
    return -np.log(model.perplexity(X))


def heldout_gensim(model, X):
    return model.log_perplexity(list(_gensim_corpus(X)))


def heldout_tomotopy(model, X):
    return None   # its infer() log-likelihood includes the topic-word term: not a per-document bound


def plugin_ldaem(model, n_words):
    return model.topic_word_, model.doc_topic_prior_


def plugin_sklearn(model, n_words):
    topic_word = model.components_ / model.components_.sum(axis=1, keepdims=True)
    return topic_word, np.full(model.n_components, model.doc_topic_prior_)


def plugin_gensim(model, n_words):
    return model.get_topics(), model.alpha


def plugin_tomotopy(model, n_words):
    topic_word = np.zeros((model.k, n_words))
    columns = [int(w) for w in model.used_vocabs]
    for k in range(model.k):
        topic_word[k, columns] = model.get_topic_word_dist(k)
    return topic_word, np.asarray(model.alpha)


class Plugin:
    """Topics (K x V, rows summing to one) and alpha of any system, with ldaem's E-step to infer
    documents: what ldaem.evaluate needs (topic_word_ and infer), so that every system's held-out
    figures come from one computation."""

    def __init__(self, topic_word, alpha):
        self.topic_word_ = np.asarray(topic_word, dtype=np.float64)
        self.alpha = np.asarray(alpha, dtype=np.float64)
        self._beta = np.ascontiguousarray(np.maximum(self.topic_word_.T, 1e-100))

    def infer(self, X):
        result = e_step(X, self._beta, self.alpha, max_iter=MAX_DOC_ITER, tol=MEAN_CHANGE_TOL,
                        want_sstats=False)
        return result.gamma / result.gamma.sum(axis=1, keepdims=True), result.doc_bound


def plugin(system, model, n_words):
    return Plugin(*system.plugin(model, n_words))


def plugin_bound(system, model, X):
    """Held-out ELBO per word of X computed by ldaem's E-step with the system's topics (posterior
    means) and alpha plugged in: one formula for every system, so these figures compare directly."""
    return float(plugin(system, model, X.shape[1]).infer(X)[1].sum() / X.sum())


def inner_iterations(system, X, n_topics, n_iter):
    """Mean inner (per-document) E-step iterations per document and EM iteration of an n_iter
    fit of scikit-learn (one process) or gensim, counted by wrapping the function each calls once
    per inner iteration to test convergence. A separate, untimed fit: the wrapper slows it."""
    if system is SKLEARN:
        from sklearn.decomposition import _lda as module
        name = "cy_mean_change"
        fit = lambda: LatentDirichletAllocation(   # noqa: E731
            n_components=n_topics, learning_method="batch", max_iter=n_iter, evaluate_every=-1,
            max_doc_update_iter=MAX_DOC_ITER, mean_change_tol=MEAN_CHANGE_TOL, n_jobs=1,
            random_state=SEED).fit(X)
    else:
        from gensim.models import ldamodel as module
        name = "mean_absolute_difference"
        fit = lambda: fit_gensim(X, n_topics, n_iter)   # noqa: E731
    original, calls = getattr(module, name), [0]

    def counted(*args):
        calls[0] += 1
        return original(*args)

    setattr(module, name, {"float": counted, "double": counted} if system is SKLEARN else counted)
    try:
        fit()
    finally:
        setattr(module, name, original)
    return calls[0] / (X.shape[0] * n_iter)


LDAEM = System("ldaem", "ldaem", fit_ldaem, heldout_ldaem, plugin_ldaem,
               "warm (previous iteration's gamma)")
LDAEM_RANDOM_START = replace(LDAEM, name="ldaem, lda-c's random start", fit=fit_ldaem_random_start)
LDAEM_FLOAT32 = replace(LDAEM, name="ldaem --dtype float32", fit=fit_ldaem_float32)
SKLEARN = System("scikit-learn", "sklearn", fit_sklearn, heldout_sklearn, plugin_sklearn,
                 "random, every iteration")
GENSIM = System("gensim", "gensim", fit_gensim, heldout_gensim, plugin_gensim,
                "random, every pass")
TOMOTOPY = System("tomotopy", "tomotopy", fit_tomotopy, heldout_tomotopy, plugin_tomotopy,
                  "collapsed Gibbs sampling")


def installed(system):
    try:
        __import__(system.module)
    except ImportError:
        return False
    return True
