"""The LDA estimator: batch variational EM (DESIGN.md) behind scikit-learn's conventions."""

import contextlib
import numbers
import time
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ldaem import _kernels, mstep
from ldaem.estep import as_csr_counts, e_step, initial_gamma
from ldaem.model import TopicModel


def _is_int(minimum):
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum


def _is_positive_real_or_none(v):
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)


def _is_nonnegative_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


# One table of parameter rules, checked by fit (STYLE.md): name -> (test, what it must be).
_PARAMETER_RULES = {
    "n_components": (_is_int(1), "an integer >= 1"),
    "doc_topic_prior": (_is_positive_real_or_none, "a positive number or None (0.5)"),
    "doc_topic_prior_update": (lambda v: v in ("symmetric", "asymmetric", "fixed"),
                               "'symmetric', 'asymmetric' or 'fixed'"),
    "doc_topic_prior_burn_in": (_is_int(0), "an integer >= 0"),
    "topic_word_prior": (_is_positive_real_or_none, "a positive number or None (no smoothing)"),
    "max_iter": (_is_int(1), "an integer >= 1"),
    "tol": (_is_nonnegative_real, "a number >= 0"),
    "max_doc_update_iter": (_is_int(1), "an integer >= 1"),
    "mean_change_tol": (_is_nonnegative_real, "a number >= 0"),
    "random_state": (lambda v: v is None or _is_int(0)(v) or isinstance(v, np.random.RandomState),
                     "None, an integer >= 0 or a numpy RandomState"),
    "n_jobs": (lambda v: v is None or v == -1 or _is_int(1)(v), "None, -1 or an integer >= 1"),
    "callback": (lambda v: v is None or callable(v), "None or a callable"),
}


# A flat start: with alpha = 1/K and alpha estimated from the first iteration on, documents commit
# to single topics before the topics have separated, and EM stalls in poor optima (measured on
# planted corpora and AP: see tests/test_lda.py and the README).
DEFAULT_DOC_TOPIC_PRIOR = 0.5


@dataclass(frozen=True)
class IterationRecord:
    """One EM iteration, as logged: the ELBO is that of the E-step, before the M-step."""

    iteration: int
    elbo: float
    elbo_per_token: float
    relative_change: float   # (elbo - previous) / |previous|; nan on the first iteration
    alpha: float             # mean of alpha after the M-step
    seconds: float
    mean_doc_iter: float     # inner E-step iterations per document


@contextlib.contextmanager
def _numba_threads(n_jobs):
    """Run the block with n_jobs numba threads (None or -1: all of them)."""
    available = numba.config.NUMBA_NUM_THREADS
    wanted = available if n_jobs in (None, -1) else min(n_jobs, available)
    before = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(before)


class LDA(TransformerMixin, BaseEstimator):
    """Latent Dirichlet allocation fitted by batch variational EM (Blei, Ng & Jordan 2003).

    Parameters
    ----------
    n_components : number of topics K.
    doc_topic_prior : alpha, the starting (or fixed) value of the symmetric Dirichlet prior on
        each document's topic proportions; None means 0.5 (DEFAULT_DOC_TOPIC_PRIOR).
    doc_topic_prior_update : 'symmetric' (Newton-Raphson on one shared alpha, as lda-c's
        "estimate"), 'asymmetric' (one alpha per topic) or 'fixed'.
    doc_topic_prior_burn_in : EM iterations before alpha is first estimated, so that the topics
        separate while documents may still mix them (as MALLET's optimize-burn-in).
    topic_word_prior : eta. None fits the topics by maximum likelihood; a number smooths them
        with a Dirichlet(eta) prior and a variational Dirichlet posterior (components_ = lambda).
    max_iter, tol : EM stops after max_iter iterations or when the relative ELBO change is below tol.
    max_doc_update_iter, mean_change_tol : per-document E-step limits (mean absolute change of gamma).
    random_state : seed of the random initial topics.
    n_jobs : threads of the E-step (None or -1: all cores).
    callback : called with an IterationRecord after every EM iteration.

    Attributes
    ----------
    components_ : K x V, the topics (beta), or lambda when topic_word_prior is set.
    topic_word_ : K x V, topic-word probabilities (rows sum to one).
    doc_topic_prior_ : K, the fitted alpha.
    n_iter_ : EM iterations run. bound_ : the last ELBO. elbo_trace_ : the ELBO of every iteration.
    iterations_ : the IterationRecord of every iteration. topic_tokens_ : expected training tokens per topic.
    """

    def __init__(self, n_components=10, *, doc_topic_prior=None, doc_topic_prior_update="symmetric",
                 doc_topic_prior_burn_in=10, topic_word_prior=None, max_iter=100, tol=1e-4, max_doc_update_iter=100,
                 mean_change_tol=1e-3, random_state=None, n_jobs=None, callback=None):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.doc_topic_prior_update = doc_topic_prior_update
        self.doc_topic_prior_burn_in = doc_topic_prior_burn_in
        self.topic_word_prior = topic_word_prior
        self.max_iter = max_iter
        self.tol = tol
        self.max_doc_update_iter = max_doc_update_iter
        self.mean_change_tol = mean_change_tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.callback = callback

    def _validate_params(self):
        for name, (is_valid, expected) in _PARAMETER_RULES.items():
            value = getattr(self, name)
            if not is_valid(value):
                raise ValueError(f"LDA parameter {name} must be {expected}, got {value!r}")

    def _check_counts(self, X, reset):
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=reset)
        values = X.data if sp.issparse(X) else X
        if values.size and values.min() < 0:
            raise ValueError("document-term counts must be non-negative")
        return as_csr_counts(X)

    def _init_topics(self, n_words, rng):
        """Random topics, as lda-c's "random" start: each beta_k proportional to 1/V + uniform(0, 1)."""
        sstats = (1.0 / n_words + rng.random_sample((self.n_components, n_words))).T.copy()
        if self.topic_word_prior is None:
            self._topic_word = mstep.topics_from_sstats(sstats)
        else:
            self._topic_word = self.topic_word_prior + sstats * (100.0 / n_words)
        self._exp_elog_beta = self._exp_elog_beta_of(self._topic_word)

    def _exp_elog_beta_of(self, topic_word):
        """The E-step's word-major topic weights: beta itself, or exp(E[log beta]) under Dir(lambda)."""
        if self.topic_word_prior is None:
            return topic_word
        return np.exp(digamma(topic_word) - digamma(topic_word.sum(axis=0))[None, :])

    def _topic_bound(self):
        """sum_k E[log p(beta_k | eta)] - E[log q(beta_k | lambda_k)] (zero without smoothing)."""
        eta = self.topic_word_prior
        if eta is None:
            return 0.0
        lam = self._topic_word
        n_words = lam.shape[0]
        elog_beta = np.log(self._exp_elog_beta)
        return float(lam.shape[1] * (gammaln(n_words * eta) - n_words * gammaln(eta))
                     + ((eta - lam) * elog_beta).sum() + gammaln(lam).sum()
                     - gammaln(lam.sum(axis=0)).sum())

    def _m_step(self, result, iteration):
        if self.topic_word_prior is None:
            self._topic_word = mstep.topics_from_sstats(result.sstats)
        else:
            self._topic_word = self.topic_word_prior + result.sstats
        self._exp_elog_beta = self._exp_elog_beta_of(self._topic_word)
        n_docs = result.gamma.shape[0]
        if (self.doc_topic_prior_update == "fixed" or n_docs == 0
                or iteration <= self.doc_topic_prior_burn_in):
            return
        elog_sum = _kernels.dirichlet_expectation_sum(result.gamma)
        if self.doc_topic_prior_update == "symmetric":
            value = mstep.update_symmetric_prior(
                self.doc_topic_prior_[0], elog_sum.sum(), n_docs, self.n_components)
            self.doc_topic_prior_ = np.full(self.n_components, value)
        else:
            self.doc_topic_prior_ = mstep.update_asymmetric_prior(self.doc_topic_prior_, elog_sum, n_docs)

    def fit(self, X, y=None):
        """Fit topics to X, a D x V matrix of document-term counts (sparse or dense)."""
        self._validate_params()
        X = self._check_counts(X, reset=True)
        n_docs, n_words = X.shape
        n_tokens = float(X.data.sum())
        rng = check_random_state(self.random_state)
        initial_alpha = self.doc_topic_prior or DEFAULT_DOC_TOPIC_PRIOR
        self.doc_topic_prior_ = np.full(self.n_components, float(initial_alpha))
        self.topic_word_prior_ = self.topic_word_prior
        self._init_topics(n_words, rng)
        gamma = initial_gamma(X, self.doc_topic_prior_)
        self.iterations_ = []
        with _numba_threads(self.n_jobs):
            for iteration in range(1, self.max_iter + 1):
                start = time.perf_counter()
                result = e_step(X, self._exp_elog_beta, self.doc_topic_prior_, gamma,
                                self.max_doc_update_iter, self.mean_change_tol)
                elbo = float(result.doc_bound.sum()) + self._topic_bound()
                self.topic_tokens_ = result.sstats.sum(axis=0)
                self._m_step(result, iteration)
                gamma = result.gamma
                previous = self.iterations_[-1].elbo if self.iterations_ else None
                relative = np.nan if previous is None else (elbo - previous) / abs(previous)
                record = IterationRecord(
                    iteration=iteration, elbo=elbo, elbo_per_token=elbo / max(n_tokens, 1.0),
                    relative_change=relative, alpha=float(self.doc_topic_prior_.mean()),
                    seconds=time.perf_counter() - start,
                    mean_doc_iter=float(result.n_iter.mean()) if n_docs else 0.0)
                self.iterations_.append(record)
                if self.callback is not None:
                    self.callback(record)
                if previous is not None and relative < self.tol:
                    break
        self.n_iter_ = len(self.iterations_)
        self.bound_ = self.iterations_[-1].elbo
        self.elbo_trace_ = np.array([r.elbo for r in self.iterations_])
        self._set_public_topics()
        return self

    def _set_public_topics(self):
        self.components_ = np.ascontiguousarray(self._topic_word.T)
        self.topic_word_ = self.components_ / self.components_.sum(axis=1, keepdims=True)

    def infer(self, X):
        """Topic proportions of the documents of X and each document's ELBO term L_d.

        Returns (doc_topic, doc_bound): doc_topic D x K (rows sum to one; an empty document gets
        the prior's proportions), doc_bound D (sum over documents: the held-out bound).
        """
        check_is_fitted(self, "components_")
        X = self._check_counts(X, reset=False)
        with _numba_threads(self.n_jobs):
            result = e_step(X, self._exp_elog_beta, self.doc_topic_prior_, None,
                            self.max_doc_update_iter, self.mean_change_tol, want_sstats=False)
        doc_topic = result.gamma / result.gamma.sum(axis=1, keepdims=True)
        return doc_topic, result.doc_bound

    def transform(self, X):
        """D x K topic proportions (normalised gamma) of the documents of X."""
        return self.infer(X)[0]

    def score(self, X, y=None):
        """The ELBO of the documents of X with the topics fixed (sum of L_d): higher is better."""
        return float(self.infer(X)[1].sum())

    def perplexity(self, X):
        """exp(-score(X) / tokens of X), in nats: the held-out perplexity bound."""
        n_tokens = float(as_csr_counts(X).data.sum())
        return float(np.exp(-self.score(X) / max(n_tokens, 1.0)))

    def to_model(self, vocab, settings=None):
        """The fitted model as a TopicModel, ready for ldaem.model.save_model."""
        check_is_fitted(self, "components_")
        return TopicModel(
            topic_word=self.components_, alpha=self.doc_topic_prior_.copy(),
            eta=self.topic_word_prior_, vocab=np.asarray(vocab, dtype=str),
            elbo_trace=self.elbo_trace_.copy(), topic_tokens=self.topic_tokens_.copy(),
            settings={**self.get_params(), "callback": None, **(settings or {})})

    @classmethod
    def from_model(cls, model, **params):
        """An estimator ready to transform and score, rebuilt from a TopicModel."""
        saved = {name: model.settings[name] for name in cls._get_param_names()
                 if name in model.settings and name != "callback"}
        lda = cls(**{**saved, **params, "n_components": model.n_topics,
                     "topic_word_prior": model.eta})
        lda._topic_word = np.ascontiguousarray(model.topic_word.T)
        lda._exp_elog_beta = lda._exp_elog_beta_of(lda._topic_word)
        lda.doc_topic_prior_ = model.alpha.copy()
        lda.topic_word_prior_ = model.eta
        lda.elbo_trace_ = model.elbo_trace.copy()
        lda.n_iter_ = model.elbo_trace.size
        lda.bound_ = float(model.elbo_trace[-1]) if model.elbo_trace.size else np.nan
        lda.topic_tokens_ = model.topic_tokens.copy()
        lda.n_features_in_ = model.topic_word.shape[1]
        lda._set_public_topics()
        return lda
