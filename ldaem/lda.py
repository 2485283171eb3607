"""The LDA estimator: batch variational EM (DESIGN.md) behind scikit-learn's conventions; its
online loop is the mixin ldaem.online_em.OnlineEM."""

import contextlib
import logging
import numbers
import time
from dataclasses import dataclass

import numba as _numba
import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ldaem import mstep
from ldaem.cvb0 import CVB0Sweeps
from ldaem.distributed import InProcessEStep
from ldaem.distributed import numba_threads as _numba_threads
from ldaem.errors import NumericalError
from ldaem.estep import as_csr_counts, e_step, topic_expectations, topic_weights
from ldaem.model import TopicModel, check_vocabulary_size
from ldaem.online_em import OnlineEM
from ldaem.records import (OBJECTIVE_NAMES, POINT_ESTIMATE_INFERENCES, PRECISIONS, IterationRecord,
                           relative_change)
from ldaem.resources import check_fit_memory

log = logging.getLogger(__name__)


def _is_int(minimum):
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum


def _is_positive_real_or_none(v):
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)


def _is_nonnegative_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


def _is_scheduler(v):
    return v is None or isinstance(v, str) or callable(getattr(v, "submit", None))


# One table of parameter rules, checked by fit (STYLE.md): name -> (test, what it must be).
_PARAMETER_RULES = {
    "n_components": (_is_int(1), "an integer >= 1"),
    "doc_topic_prior": (_is_positive_real_or_none, "a positive number or None (0.5)"),
    "doc_topic_prior_update": (lambda v: v in (None, "symmetric", "asymmetric", "fixed"),
                               "None, 'symmetric', 'asymmetric' or 'fixed'"),
    "doc_topic_prior_burn_in": (_is_int(0), "an integer >= 0"),
    "topic_word_prior": (_is_positive_real_or_none, "a positive number or None (no smoothing)"),
    "topic_word_prior_update": (lambda v: v in ("fixed", "estimate"), "'fixed' or 'estimate'"),
    "max_iter": (_is_int(1), "an integer >= 1"),
    "tol": (_is_nonnegative_real, "a number >= 0"),
    "max_doc_update_iter": (_is_int(1), "an integer >= 1"),
    "mean_change_tol": (_is_nonnegative_real, "a number >= 0"),
    "random_state": (lambda v: v is None or _is_int(0)(v) or isinstance(v, np.random.RandomState),
                     "None, an integer >= 0 or a numpy RandomState"),
    "n_jobs": (lambda v: v is None or v == -1 or _is_int(1)(v), "None, -1 or an integer >= 1"),
    "callback": (lambda v: v is None or callable(v), "None or a callable"),
    "init": (lambda v: (isinstance(v, str) and v in INIT_NAMES) or hasattr(v, "shape"),
             "'auto', 'random', 'seeded' or a K x V array of expected topic-word counts"),
    "learning_method": (lambda v: v in ("batch", "online"), "'batch' or 'online'"),
    "batch_size": (_is_int(1), "an integer >= 1"),
    "learning_offset": (_is_nonnegative_real, "a number >= 0"),
    "learning_decay": (lambda v: _is_nonnegative_real(v) and 0.5 < v <= 1, "a number in (0.5, 1]"),
    "total_samples": (_is_positive_real_or_none, "a positive number or None (the documents of X)"),
    "scheduler": (_is_scheduler, "None, a dask.distributed Client or a scheduler address"),
    "n_partitions": (lambda v: v is None or _is_int(1)(v), "None or an integer >= 1"),
    "n_init": (_is_int(1), "an integer >= 1"),
    "inference": (lambda v: v in INFERENCE_NAMES, "'variational', 'map' or 'cvb0'"),
    "dtype": (lambda v: v in PRECISIONS, "'float64' or 'float32'"),
}


# A flat start: with alpha = 1/K and alpha estimated from the first iteration on, documents commit
# to single topics before the topics have separated, and EM stalls in poor optima (measured on
# planted corpora and AP: see tests/test_lda.py and the README).
DEFAULT_DOC_TOPIC_PRIOR = 0.5

# Documents whose counts seed each topic in the 'seeded' start.
SEEDED_DOCUMENTS = 5

INIT_NAMES = ("auto", "random", "seeded")

INFERENCE_NAMES = tuple(OBJECTIVE_NAMES)

# inference='map''s and 'cvb0''s defaults for the pseudo-counts alpha and eta (docs/map.md): chosen
# for MAP on AP at K=50 (bench/map_results.md), near tomotopy's defaults (alpha 0.1, eta 0.01).
MAP_DOC_TOPIC_PRIOR = 0.1
MAP_TOPIC_WORD_PRIOR = 0.05


@dataclass(frozen=True)
class FitState:
    """What batch EM continues from: the topics and alpha after an iteration's M-step, and every
    document's gamma from its E-step. A fit resumed from it retraces the uninterrupted fit."""

    topic_word: np.ndarray   # V x K, beta or lambda (word-major)
    alpha: np.ndarray        # K
    gamma: np.ndarray        # D x K, or None: the next E-step starts from alpha + N_d / K
    iterations: tuple        # the IterationRecords so far
    eta: float = None        # the topics' prior (None: maximum likelihood)
    inference: str = "variational"   # the fit's inference (LDA's inference parameter)


class LDA(OnlineEM, TransformerMixin, BaseEstimator):
    """Latent Dirichlet allocation fitted by variational EM (Blei, Ng & Jordan 2003), batch or
    online (Hoffman, Blei & Bach 2010).

    Parameters
    ----------
    n_components : number of topics K.
    doc_topic_prior : alpha, the starting (or fixed) value of the symmetric Dirichlet prior on
        each document's topic proportions; None means 0.5 (DEFAULT_DOC_TOPIC_PRIOR) for batch
        EM, 1 / K online and 0.1 (a pseudo-count) for inference 'map' and 'cvb0'. Online EM moves alpha by
        small damped steps, and from 0.5 it was still 10 times the generating alpha after a pass
        over 100k documents, whose topics it had blurred (matched to the generating ones at 0.59
        instead of 0.80).
    doc_topic_prior_update : 'symmetric' (Newton-Raphson on one shared alpha, as lda-c's
        "estimate"), 'asymmetric' (one alpha per topic) or 'fixed'; None means 'symmetric', and
        'fixed' for inference 'map' and 'cvb0'.
    doc_topic_prior_burn_in : EM iterations before alpha is first estimated, so that the topics
        separate while documents may still mix them (as MALLET's optimize-burn-in).
    topic_word_prior : eta. None fits the topics by maximum likelihood; a number smooths them
        with a Dirichlet(eta) prior and a variational Dirichlet posterior (components_ = lambda).
        Online EM needs smoothed topics: there None means 1 / n_components. For inference 'map'
        and 'cvb0', the pseudo-count added to each topic's expected counts (None: 0.05).
    topic_word_prior_update : 'fixed', or 'estimate': eta (starting from topic_word_prior, or
        1 / n_components) is estimated like a symmetric alpha, by Newton-Raphson on the ELBO's
        sum_k E[log p(beta_k | eta)] (DESIGN.md, "M-step"), after the same burn-in; online, by
        a Newton step scaled by rho_t after every update.
    max_iter, tol : batch EM stops after max_iter iterations or when the relative ELBO change is
        below tol. Online EM makes max_iter passes over X (tol is not used).
    max_doc_update_iter, mean_change_tol : per-document E-step limits (mean absolute change of gamma).
    random_state : seed of the random initial topics.
    inference : 'variational' (DESIGN.md: a Dirichlet posterior over each document's topic
        proportions) or 'map' (docs/map.md: batch EM for the maximum a posteriori topics and
        proportions, with alpha and eta fixed pseudo-counts; the log posterior less its constant
        normalisers takes the ELBO's place in elbo_trace_ and the records). MAP fits complete
        held-out documents better on AP and KOS (bench/map_results.md). Or 'cvb0' (docs/cvb0.md:
        the zero-order collapsed variational update of Asuncion et al. 2009, with MAP's pseudo-counts,
        M-step and objective, and one sweep over every token as its E-step; in this process only,
        with a distribution over topics per nonzero: nnz x K values, in dtype; not resumable).
        Every model infers new documents by the variational E-step.
    dtype : the precision of the fit's E-steps, 'float64' or 'float32' (the topic weights, their
        products with exp(E[log theta]) and the ratios n_dw / s_w; gamma, the sufficient
        statistics, the M-step and the ELBO stay float64). float32 E-steps are up to 1.5x faster
        (bench/scaling_results.md) for a change in the ELBO near float32's resolution. infer,
        transform and score run in float64 whatever the dtype: float32 cannot hold the 1e-100 of
        a word no topic uses, and a held-out document's bound counts such words.
    n_init : batch EM runs from this many initial topics (seeds drawn from random_state) and keeps
        the fit with the highest final ELBO (restart_bounds_ lists them all).
    init : the initial topics: 'auto' (the default: 'seeded' for batch EM with maximum-likelihood
        topics, else 'random'), 'random' (lda-c's random start; smoothed or online, Gamma(100,
        1/100) counts as Hoffman et al.), 'seeded' (each topic from the counts of a few random
        documents, as lda-c's seeded start), or a K x V array of expected topic-word counts (e.g.
        from an earlier model, to continue or refine it). On AP (bench/starts_results.md, seeds 0-6)
        seeded beats random in document completion at K=50 for every seed (-7.779 against
        -7.835 nats per token on average), in the held-out bound at K=20 for 6 of 7 (-7.944
        against -7.958), and its first E-steps are half as deep (K=100: 48 inner iterations per
        document against 91). Smoothed topics start better from 'random' (eta 0.01: -7.867
        against -7.963 seeded): exp(E[log beta]) of a seeded lambda is peaked on the seed
        documents' words.
    n_jobs : threads of the E-step (None or -1: all cores). With a scheduler, the threads of each
        partition's task on its worker (None: 1, as Dask runs a task per worker thread).
    callback : called with an IterationRecord after every EM iteration (a MinibatchRecord after
        every online update); returning True stops the fit there (stopped_).
    learning_method : 'batch' (variational EM over all of X each iteration) or 'online'
        (stochastic variational EM, DESIGN.md "Stochastic variational EM": one update of the topics
        per minibatch, lambda <- (1 - rho_t) lambda + rho_t (eta + (D / |B|) ss_B)). fit's online
        passes take the minibatches in row order: shuffle the rows of X first if their order is not
        random (e.g. sorted by date). partial_fit is always online.
    batch_size : documents per minibatch |B| (online).
    learning_offset, learning_decay : tau0 and kappa of rho_t = (tau0 + t)^(-kappa), t = 1, 2, ...
        (online). alpha, unless fixed, takes a Newton step scaled by rho_t after every update
        past the burn-in, which then counts updates rather than iterations.
    total_samples : D, the size of the corpus the minibatches come from (online). None means the
        documents of X in fit; partial_fit, which sees one chunk at a time, needs it.
    scheduler : where batch EM's E-step runs: None in this process; a dask.distributed Client, or
        a scheduler's address, partitions X across the cluster's workers once and keeps it there
        (see ldaem.distributed.DaskEStep). The model equals the in-process one up to the order of
        summation.
    n_partitions : row blocks of X on the cluster; None means one per worker thread.

    Attributes
    ----------
    components_ : K x V, the topics (beta), or lambda when topic_word_prior is set.
    topic_word_ : K x V, topic-word probabilities (rows sum to one).
    doc_topic_prior_ : K, the fitted alpha. topic_word_prior_ : eta (None: maximum likelihood).
    n_iter_ : EM iterations run. bound_ : the last ELBO. elbo_trace_ : the ELBO of every iteration.
    iterations_ : the IterationRecord of every iteration. topic_tokens_ : expected training tokens per topic.
    n_batch_iter_ : online updates made (the t of the next rho_t, less one).
    init_ : the start the fit took: 'seeded', 'random' or 'array' ('auto' resolved).
    restart_ : the run under way (0, 1, ...; from a callback), then the one kept (n_init > 1).
    restart_bounds_ : the final ELBO of each run (n_init > 1).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True            # X: counts, dense or scipy.sparse
        tags.input_tags.positive_only = True
        return tags

    def __init__(self, n_components=10, *, doc_topic_prior=None, doc_topic_prior_update=None,
                 doc_topic_prior_burn_in=10, topic_word_prior=None, topic_word_prior_update="fixed",
                 max_iter=100, tol=1e-4, max_doc_update_iter=100,
                 mean_change_tol=1e-3, random_state=None, n_jobs=None, callback=None,
                 learning_method="batch", batch_size=512, learning_offset=16.0, learning_decay=0.6,
                 total_samples=None, scheduler=None, n_partitions=None, init="auto", n_init=1,
                 inference="variational", dtype="float64"):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.doc_topic_prior_update = doc_topic_prior_update
        self.doc_topic_prior_burn_in = doc_topic_prior_burn_in
        self.topic_word_prior = topic_word_prior
        self.topic_word_prior_update = topic_word_prior_update
        self.max_iter = max_iter
        self.tol = tol
        self.max_doc_update_iter = max_doc_update_iter
        self.mean_change_tol = mean_change_tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.callback = callback
        self.learning_method = learning_method
        self.batch_size = batch_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.total_samples = total_samples
        self.scheduler = scheduler
        self.n_partitions = n_partitions
        self.init = init
        self.n_init = n_init
        self.inference = inference
        self.dtype = dtype

    def __sklearn_clone__(self):
        """clone() copies every parameter but the scheduler: a Dask client is shared, not copied."""
        params = self.get_params(deep=False)
        scheduler = params.pop("scheduler")
        return type(self)(**{name: clone(value, safe=False) for name, value in params.items()},
                          scheduler=scheduler)

    def _validate_params(self):
        for name, (is_valid, expected) in _PARAMETER_RULES.items():
            value = getattr(self, name)
            if not is_valid(value):
                raise ValueError(f"LDA parameter {name} must be {expected}, got {value!r}")
        if self.n_init > 1 and (self.learning_method == "online" or not isinstance(self.init, str)):
            raise ValueError("LDA parameter n_init > 1 works with learning_method='batch' and "
                             "init 'auto', 'random' or 'seeded' only")
        if self._point_estimates() and (self.learning_method == "online" or self._alpha_update() != "fixed"
                                        or self.topic_word_prior_update != "fixed"):
            raise ValueError(f"LDA parameter inference={self.inference!r} works with learning_method="
                             f"'batch' and holds alpha and eta fixed (doc_topic_prior_update None or "
                             f"'fixed', topic_word_prior_update 'fixed')")
        if self.inference == "cvb0" and self.scheduler is not None:
            raise ValueError("LDA parameter inference='cvb0' runs in this process: give no scheduler")

    def _point_estimates(self):
        """Whether the fit is EM for the MAP topics and topic proportions (docs/map.md), or CVB0
        (docs/cvb0.md), which shares its M-step and objective."""
        return self.inference in POINT_ESTIMATE_INFERENCES

    def _alpha_update(self):
        """doc_topic_prior_update, None resolved: 'fixed' for MAP and CVB0 fits, else 'symmetric'."""
        if self.doc_topic_prior_update is not None:
            return self.doc_topic_prior_update
        return "fixed" if self._point_estimates() else "symmetric"

    def _check_counts(self, X, reset):
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=reset)
        values = X.data if sp.issparse(X) else X
        if values.size and values.min() < 0:
            raise ValueError("Negative values in data: document-term counts must be non-negative")
        return as_csr_counts(X)

    def _start(self, X, topic_word_prior, random_state=None, online=False):
        """Fresh fitted state: the initial alpha, eta, topics and an empty log. random_state: the
        seed of the initial topics, if not the random_state parameter."""
        initial_alpha = self.doc_topic_prior or (
            1.0 / self.n_components if online
            else MAP_DOC_TOPIC_PRIOR if self._point_estimates() else DEFAULT_DOC_TOPIC_PRIOR)
        self.doc_topic_prior_ = np.full(self.n_components, float(initial_alpha))
        self.topic_word_prior_ = topic_word_prior
        seed = self.random_state if random_state is None else random_state
        init = self.init
        if isinstance(init, str) and init == "auto":
            init = "seeded" if topic_word_prior is None and not online else "random"
        self.init_ = init if isinstance(init, str) else "array"
        sstats = self._initial_sstats(X, init, check_random_state(seed))
        if self.topic_word_prior_ is None:
            self._set_topics(mstep.topics_from_sstats(sstats))
        else:
            self._set_topics(self.topic_word_prior_ + sstats)
        self.iterations_ = []
        self.topic_tokens_ = np.zeros(self.n_components)

    def _initial_sstats(self, X, init, rng):
        """Expected topic-word counts to start from (V x K), by init (the init parameter, 'auto'
        resolved):
        'random': without smoothing, lda-c's random start, 1/V + uniform(0, 1) (normalised by
        the M-step); smoothed, Hoffman et al.'s Gamma(100, 1/100) counts, about one per word and
        topic. Small random counts would not do there: exp(E[log beta]) under a Dirichlet whose
        parameters are all near eta is peaked on each topic's few largest draws (digamma(x) ~
        -1/x), so the first E-step would sort documents by noise, which one pass of online EM
        never undoes. 'seeded': lda-c's seeded start, the counts of SEEDED_DOCUMENTS random
        documents plus 0.1 per word; an array: K x V expected counts, e.g. an earlier model's."""
        n_docs, n_words = X.shape
        if isinstance(init, str) and init == "random":
            if self.topic_word_prior_ is not None:
                return rng.gamma(100.0, 1.0 / 100.0, (self.n_components, n_words)).T.copy()
            return (1.0 / n_words + rng.random_sample((self.n_components, n_words))).T.copy()
        if isinstance(init, str):
            docs = rng.randint(0, n_docs, size=(self.n_components, SEEDED_DOCUMENTS))
            seeds = sp.csr_matrix((np.ones(docs.size), (np.repeat(np.arange(self.n_components),
                                   SEEDED_DOCUMENTS), docs.ravel())), shape=(self.n_components, n_docs))
            sstats = (X.T @ seeds.T).toarray(order="C") + 0.1   # V x K: topic k, its documents' counts
            if not np.all(np.isfinite(sstats)):
                raise NumericalError("the seeded start's topic-word counts overflow (counts near "
                                     "the float64 limit): start from init='random'")
            return sstats
        sstats = np.asarray(init, dtype=np.float64)
        if sstats.shape != (self.n_components, n_words) or not np.all(np.isfinite(sstats)) or sstats.min() < 0:
            raise ValueError(f"LDA parameter init: an array must be {self.n_components} x {n_words} "
                             f"finite non-negative expected counts, got shape {sstats.shape}")
        return np.ascontiguousarray(sstats.T)

    def _set_topics(self, topic_word):
        """The topics (V x K: beta, or lambda when smoothed) and what the E-step and the ELBO take
        from them: the E-step's weights, beta itself or exp(E[log beta]) under Dir(lambda), and
        for smoothed topics the sums of _topic_bound and eta's M-step (ldaem.estep.topic_expectations)."""
        self._topic_word = topic_word
        if self.topic_word_prior_ is None:
            weights, self._topic_sums = topic_word, None
        else:
            weights, self._topic_sums = topic_expectations(topic_word)
        self._exp_elog_beta = weights
        # CVB0's sweeps take the topics only to start phi and for the objective: in float64
        self._fit_weights = weights if self.inference == "cvb0" else topic_weights(weights, self.dtype)

    def _topic_pseudo_count(self):
        """eta of a MAP or CVB0 fit, added to each topic's expected counts in the M-step (docs/map.md)."""
        return self.topic_word_prior if self.topic_word_prior is not None else MAP_TOPIC_WORD_PRIOR

    def _topic_bound(self):
        """sum_k E[log p(beta_k | eta)] - E[log q(beta_k | lambda_k)] (zero without smoothing);
        for a MAP fit, eta sum_kw log beta_kw (docs/map.md)."""
        if self._point_estimates():
            return float(self._topic_pseudo_count() * np.log(self._topic_word).sum())
        eta = self.topic_word_prior_
        if eta is None:
            return 0.0
        n_words, n_topics = self._topic_word.shape
        sums = self._topic_sums
        return float(n_topics * (gammaln(n_words * eta) - n_words * gammaln(eta))
                     + eta * sums.elog_beta - sums.lam_elog_beta + sums.log_gamma)

    def _alpha_is_estimated(self, iteration, n_docs):
        return (self._alpha_update() != "fixed" and n_docs > 0
                and iteration > self.doc_topic_prior_burn_in)

    def _eta_is_estimated(self, iteration):
        return self.topic_word_prior_update == "estimate" and iteration > self.doc_topic_prior_burn_in

    def _batch_topic_word_prior(self):
        """eta for batch EM: as given, or 1 / K to start an estimated one; None (point estimates
        of the topics) for MAP fits, whose eta is a pseudo-count (_topic_pseudo_count)."""
        if self._point_estimates():
            return None
        if self.topic_word_prior is None and self.topic_word_prior_update == "estimate":
            return 1.0 / self.n_components
        return self.topic_word_prior

    def _elog_beta_sum(self):
        """sum_k sum_w E[log beta_kw] under Dir(lambda_k): the statistic of eta's M-step."""
        return self._topic_sums.elog_beta

    def _m_step(self, totals, iteration):
        """Topics, eta and alpha from an E-step's EStepTotals (DESIGN.md, "M-step"; docs/map.md)."""
        if self._point_estimates():
            self._set_topics(mstep.topics_from_sstats(totals.sstats + self._topic_pseudo_count()))
        elif self.topic_word_prior_ is None:
            self._set_topics(mstep.topics_from_sstats(totals.sstats))
        else:
            self._set_topics(self.topic_word_prior_ + totals.sstats)
        if self._eta_is_estimated(iteration):
            # eta is a symmetric Dirichlet over V words with K draws, the topics (DESIGN.md, "M-step")
            n_words, n_topics = self._topic_word.shape
            self.topic_word_prior_ = mstep.update_symmetric_prior(
                self.topic_word_prior_, self._elog_beta_sum(), n_topics, n_words)
        if not self._alpha_is_estimated(iteration, totals.n_docs):
            return
        if self._alpha_update() == "symmetric":
            value = mstep.update_symmetric_prior(
                self.doc_topic_prior_[0], totals.elog_theta.sum(), totals.n_docs, self.n_components)
            self.doc_topic_prior_ = np.full(self.n_components, value)
        else:
            self.doc_topic_prior_ = mstep.update_asymmetric_prior(
                self.doc_topic_prior_, totals.elog_theta, totals.n_docs)

    def fit(self, X, y=None, resume=None):
        """Fit topics to X, a D x V matrix of document-term counts (sparse or dense).

        resume: a FitState (from fit_state(), e.g. through ldaem.checkpoint) of an earlier batch fit
        of the same X and parameters, to continue it. The callback may stop the fit after any
        iteration by returning True (stopped_ is then True). If the ELBO stops being finite, fit
        raises NumericalError naming the iteration and keeps the topics of the iteration before.
        """
        self._validate_params()
        X = self._check_counts(X, reset=True)
        if not X.data.sum() > 0:
            raise ValueError("the documents hold no tokens: there is nothing to fit")
        cvb0 = self.inference == "cvb0"
        check_fit_memory(*X.shape, X.nnz, self.n_components,
                         nonzero_topic_bytes=(4 if self.dtype == "float32" else 8) if cvb0 else 0)
        if self.learning_method == "online":
            return self._fit_online(X)
        if cvb0 and resume is not None:
            raise ValueError("a fit with inference='cvb0' cannot be resumed: its state is a "
                             "distribution over topics per token, which checkpoints do not hold")
        if self.n_init > 1:
            if resume is not None:
                raise ValueError("a fit with n_init > 1 cannot be resumed")
            return self._fit_best_of(X)
        return self._fit_batch(X, resume)

    def _fit_best_of(self, X):
        """n_init batch fits from seeds drawn from random_state; keeps the one of highest ELBO.
        A fit stopped by the callback ends the restarts (the best so far is kept)."""
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=self.n_init)
        best, bounds = None, []
        for restart, seed in enumerate(seeds):
            self.restart_ = restart
            self._fit_batch(X, None, random_state=int(seed))
            bounds.append(self.bound_)
            if best is None or self.bound_ > best["bound_"]:
                best = {name: value for name, value in vars(self).items()
                        if name.endswith("_") and not name.startswith("__")
                        or name in ("_topic_word", "_exp_elog_beta", "_fit_weights", "_topic_sums")}
            if self.stopped_:
                break
        stopped = self.stopped_
        vars(self).update(best)
        self.stopped_, self.restart_bounds_ = stopped, np.array(bounds)
        return self

    def _fit_batch(self, X, resume, random_state=None):
        n_docs, n_words = X.shape
        n_tokens = float(X.data.sum())
        self._start(X, self._batch_topic_word_prior(), random_state)
        if resume is not None:
            self._resume(resume, n_docs)
        self.stopped_ = False
        with _numba_threads(self.n_jobs), self._e_step_runner(X) as run_e_step:
            if resume is not None and resume.gamma is not None:
                run_e_step.set_gamma(np.ascontiguousarray(resume.gamma, dtype=np.float64))
            self._runner = run_e_step
            try:
                for iteration in range(len(self.iterations_) + 1, self.max_iter + 1):
                    record = self._batch_iteration(run_e_step, iteration, n_docs, n_tokens)
                    if self.callback is not None and self.callback(record):
                        self.stopped_ = True
                        break
                    if record.iteration > 1 and self._converged(record.relative_change):
                        break
            finally:
                self._finish_batch()
        return self

    def _converged(self, relative_change):
        """batch EM's stopping rule: the relative change of the objective below tol; of its size
        for CVB0, whose objective may fall as well as rise (docs/cvb0.md)."""
        return (abs(relative_change) if self.inference == "cvb0" else relative_change) < self.tol

    def _batch_iteration(self, run_e_step, iteration, n_docs, n_tokens):
        """One E-step and M-step; returns the iteration's record."""
        start = time.perf_counter()
        totals = run_e_step(self._fit_weights, self.doc_topic_prior_)
        elbo = totals.doc_bound + self._topic_bound()
        if not np.isfinite(elbo):
            raise NumericalError(f"iteration {iteration}: the ELBO is {elbo}; the topics of "
                                 f"iteration {iteration - 1} are kept")
        self.topic_tokens_ = totals.sstats.sum(axis=0)
        self._m_step(totals, iteration)
        previous = self.iterations_[-1].elbo if self.iterations_ else None
        record = IterationRecord(
            iteration=iteration, elbo=elbo, elbo_per_token=elbo / max(n_tokens, 1.0),
            relative_change=relative_change(elbo, previous),
            alpha=float(self.doc_topic_prior_.mean()), seconds=time.perf_counter() - start,
            mean_doc_iter=totals.doc_iter / n_docs if n_docs else 0.0)
        self.iterations_.append(record)
        return record

    def _finish_batch(self):
        """The public attributes from the state reached, also when an iteration failed."""
        self._runner = None
        self.n_iter_ = len(self.iterations_)
        self.bound_ = self.iterations_[-1].elbo if self.iterations_ else np.nan
        self.elbo_trace_ = np.array([r.elbo for r in self.iterations_])
        self._set_public_topics()

    def _resume(self, state, n_docs):
        expected = (self._topic_word.shape, (self.n_components,), (n_docs, self.n_components))
        found = (state.topic_word.shape, state.alpha.shape,
                 expected[2] if state.gamma is None else state.gamma.shape)
        if found != expected:
            raise ValueError(f"the state to resume has shapes {found} (topics, alpha, gamma); "
                             f"this fit needs {expected}")
        if (state.eta is None) != (self.topic_word_prior_ is None):
            raise ValueError("the state to resume and this fit disagree on smoothing the topics (eta)")
        if state.inference != self.inference:
            raise ValueError(f"the state to resume is of a fit with inference={state.inference!r}, "
                             f"this fit has inference={self.inference!r}")
        self.topic_word_prior_ = state.eta
        self._set_topics(np.ascontiguousarray(state.topic_word, dtype=np.float64))
        self.doc_topic_prior_ = np.asarray(state.alpha, dtype=np.float64).copy()
        self.iterations_ = list(state.iterations)

    def fit_state(self):
        """The FitState to continue this batch fit from; from a callback during fit, or after it
        (then without gamma, which the fit does not keep: gamma is None)."""
        runner = getattr(self, "_runner", None)
        return FitState(topic_word=self._topic_word.copy(), alpha=self.doc_topic_prior_.copy(),
                        gamma=None if runner is None else runner.gamma(),
                        iterations=tuple(self.iterations_), eta=self.topic_word_prior_,
                        inference=self.inference)

    @contextlib.contextmanager
    def _dask_client(self):
        """None without a scheduler; else the Dask client (one made from an address is closed
        at the end) and the number of partitions to split the work into."""
        if self.scheduler is None:
            yield None, 1
            return
        from distributed import Client

        with contextlib.ExitStack() as stack:
            client = self.scheduler
            if isinstance(client, str):
                client = stack.enter_context(Client(client))
            n_partitions = self.n_partitions or sum(client.nthreads().values())
            log.info("E-step on the Dask cluster at %s: %d partitions over %d worker threads",
                     client.scheduler.address, n_partitions, sum(client.nthreads().values()))
            yield client, n_partitions

    @contextlib.contextmanager
    def _e_step_runner(self, X):
        """The batch E-step's runner (ldaem.distributed): in this process, or on the Dask
        cluster of scheduler, X partitioned across its workers."""
        with self._dask_client() as (client, n_partitions):
            if self.inference == "cvb0":
                runner = CVB0Sweeps(X, self._topic_pseudo_count(), self.dtype)
            elif client is None:
                runner = InProcessEStep(X, self.max_doc_update_iter, self.mean_change_tol,
                                        point_theta=self._point_estimates())
                log.info("E-step in this process on %d threads", _numba.get_num_threads())
            else:
                from ldaem.distributed import DaskEStep
                runner = DaskEStep.from_matrix(client, X, n_partitions, self.max_doc_update_iter,
                                               self.mean_change_tol, n_threads=self.n_jobs or 1,
                                               point_theta=self._point_estimates())
            try:
                yield runner
            finally:
                runner.close()

    def _set_public_topics(self):
        self.components_ = np.ascontiguousarray(self._topic_word.T)
        self.topic_word_ = self.components_ / self.components_.sum(axis=1, keepdims=True)

    def infer(self, X):
        """Topic proportions of the documents of X and each document's ELBO term L_d.

        Returns (doc_topic, doc_bound): doc_topic D x K (rows sum to one; an empty document gets
        the prior's proportions), doc_bound D (sum over documents: the held-out bound). Also
        works during a fit, from its callback, with the topics of the iteration just finished.
        """
        check_is_fitted(self, "_exp_elog_beta")
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
        """The fitted model as a TopicModel, ready for ldaem.model.save_model; vocab: a term per
        column of X. Parameters that JSON cannot hold as they are become numbers and lists (numpy
        scalars, arrays), or None (a random generator object as random_state)."""
        check_is_fitted(self, "components_")
        check_vocabulary_size(vocab, self.components_.shape[1])
        return TopicModel(
            topic_word=self.components_, alpha=self.doc_topic_prior_.copy(),
            eta=self.topic_word_prior_, vocab=np.asarray(vocab, dtype=str),
            elbo_trace=self.elbo_trace_.copy(), topic_tokens=self.topic_tokens_.copy(),
            settings={**{name: _storable(value) for name, value in self.get_params().items()
                         if name not in ("callback", "scheduler", "init")},
                      "callback": None, "scheduler": None, "init": self.init_,
                      **({"n_batch_iter": self.n_batch_iter_} if hasattr(self, "n_batch_iter_") else {}),
                      **(settings or {})})

    @classmethod
    def from_model(cls, model, **params):
        """An estimator ready to transform and score, rebuilt from a TopicModel."""
        saved = {name: model.settings[name] for name in cls._get_param_names()
                 if name in model.settings and name not in ("callback", "scheduler", "init")}
        # a MAP or CVB0 model's file has no eta (its topics are points); its pseudo-count is a setting
        eta = saved.get("topic_word_prior") if saved.get("inference") in POINT_ESTIMATE_INFERENCES else model.eta
        lda = cls(**{**saved, **params, "n_components": model.n_topics, "topic_word_prior": eta})
        lda.topic_word_prior_ = model.eta
        lda._set_topics(np.ascontiguousarray(model.topic_word.T))
        lda.doc_topic_prior_ = model.alpha.copy()
        lda.elbo_trace_ = model.elbo_trace.copy()
        lda.n_iter_ = model.elbo_trace.size
        lda.bound_ = float(model.elbo_trace[-1]) if model.elbo_trace.size else np.nan
        lda.topic_tokens_ = model.topic_tokens.copy()
        lda.init_ = model.settings.get("init", "array")
        if "n_batch_iter" in model.settings:      # online: partial_fit continues its rho_t schedule
            lda.n_batch_iter_ = int(model.settings["n_batch_iter"])
        lda.n_features_in_ = model.topic_word.shape[1]
        lda._set_public_topics()
        return lda


def _storable(value):
    """A parameter as a model file's JSON settings hold it (LDA.to_model)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return None
    return value
