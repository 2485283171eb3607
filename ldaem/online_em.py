"""Online (stochastic) variational EM's loop, as a mixin of ldaem.lda.LDA: fit with
learning_method='online', and partial_fit. The updates themselves are ldaem.online's functions."""

import contextlib
import functools
import time

import numpy as np

from ldaem import online
from ldaem.distributed import minibatch_e_step
from ldaem.distributed import numba_threads as _numba_threads
from ldaem.errors import NumericalError
from ldaem.records import MinibatchRecord, relative_change


class OnlineEM:
    """The online loop of LDA; it uses LDA's state (_start, _set_topics, _topic_bound, ...)."""

    @contextlib.contextmanager
    def _minibatch_runner(self):
        """Online EM's E-step of a minibatch, (X, exp_elog_beta, alpha) -> EStepTotals: in this
        process, or spread over the workers of the scheduler's Dask cluster."""
        with self._dask_client() as (client, n_partitions):
            if client is None:
                yield functools.partial(minibatch_e_step, max_iter=self.max_doc_update_iter,
                                        tol=self.mean_change_tol)
            else:
                from ldaem.distributed import DaskMinibatchEStep
                yield DaskMinibatchEStep(client, n_partitions, self.max_doc_update_iter,
                                         self.mean_change_tol, n_threads=self.n_jobs or 1)

    def _start_online(self, X):
        """Fresh random topics, alpha and eta for online EM, and an empty log."""
        self._start(X, self._online_topic_word_prior(), online=True)
        self.n_iter_ = self.n_batch_iter_ = 0
        self.elbo_trace_ = np.empty(0)

    def _fit_online(self, X):
        """max_iter passes of online EM over the rows of X, in order, from fresh random topics."""
        self._start_online(X)
        total_samples = self.total_samples or X.shape[0]
        with _numba_threads(self.n_jobs), self._minibatch_runner() as run_e_step:
            for _ in range(self.max_iter):
                self._online_pass(run_e_step, X, total_samples)
                if self.stopped_:
                    break
        return self

    def partial_fit(self, X, y=None):
        """One online EM update per minibatch (batch_size rows, in order) of X, a chunk of a
        corpus of total_samples documents.

        The first call starts from random topics; later calls, or a call on a model fitted or
        loaded with smoothed topics, continue from the current ones. Feeding a corpus chunk by
        chunk makes the same updates as a pass of fit with learning_method='online' when every
        chunk but the last holds a multiple of batch_size documents. Chunks may come from disk
        one at a time: nothing but the topics, alpha and the log is kept between calls.
        """
        self._validate_params()
        if self._point_estimates():
            raise ValueError(f"partial_fit is online EM: inference={self.inference!r} works with batch fits only")
        if self.total_samples is None:
            raise ValueError("partial_fit needs total_samples, the number of documents in the corpus")
        continuing = hasattr(self, "components_")
        if continuing and self.topic_word_prior_ is None:
            raise ValueError("partial_fit continues only a model with smoothed topics "
                             "(topic_word_prior); this one was fitted by maximum likelihood")
        X = self._check_counts(X, reset=not continuing)
        if not continuing:
            self._start_online(X)
        self.n_batch_iter_ = getattr(self, "n_batch_iter_", 0)     # a smoothed batch model has none
        self.iterations_ = getattr(self, "iterations_", [])
        with _numba_threads(self.n_jobs), self._minibatch_runner() as run_e_step:
            self._online_pass(run_e_step, X, self.total_samples)
        return self

    def _online_topic_word_prior(self):
        return self.topic_word_prior if self.topic_word_prior is not None else 1.0 / self.n_components

    def _online_pass(self, run_e_step, X, total_samples):
        """One update per minibatch of X's rows, in order, until the callback asks to stop
        (stopped_); then the public attributes."""
        epoch = self.n_iter_ + 1
        self.stopped_ = False
        records = []
        for start in range(0, X.shape[0], self.batch_size):
            records.append(self._online_update(run_e_step, X[start:start + self.batch_size], total_samples, epoch))
            if self.stopped_:
                break
        self.n_iter_ = epoch
        if records:
            self.bound_ = records[-1].elbo
        self.elbo_trace_ = np.concatenate([self.elbo_trace_, [r.elbo for r in records]])
        eta = self.topic_word_prior_
        self.topic_tokens_ = self._topic_word.sum(axis=0) - self._topic_word.shape[0] * eta
        self._set_public_topics()

    def _online_update(self, run_e_step, batch, total_samples, epoch):
        """E-step on one minibatch (run_e_step, see _minibatch_runner), then the online updates of
        lambda, eta and alpha (ldaem.online)."""
        start = time.perf_counter()
        t = self.n_batch_iter_ + 1
        rho = online.learning_rate(t, self.learning_offset, self.learning_decay)
        scale = online.minibatch_scale(total_samples, batch.shape[0])
        totals = run_e_step(batch, self._fit_weights, self.doc_topic_prior_)
        # the minibatch's ELBO terms scaled to the corpus, with the topics it was computed against
        elbo = scale * totals.doc_bound + self._topic_bound()
        if not np.isfinite(elbo):
            raise NumericalError(f"minibatch update {t}: the ELBO is {elbo}; the topics of the update "
                                 f"before are kept")
        n_tokens = scale * float(batch.data.sum())
        self._set_topics(online.online_topic_update(
            self._topic_word, totals.sstats, self.topic_word_prior_, rho, scale))
        if self._eta_is_estimated(t):
            n_words, n_topics = self._topic_word.shape
            self.topic_word_prior_ = float(online.damped_alpha_step(
                np.full(n_words, self.topic_word_prior_), np.full(n_words, self._elog_beta_sum() / n_words),
                n_topics, rho, symmetric=True)[0])
        if self._alpha_is_estimated(t, batch.shape[0]):
            self.doc_topic_prior_ = online.damped_alpha_step(
                self.doc_topic_prior_, scale * totals.elog_theta, scale * batch.shape[0], rho,
                symmetric=self._alpha_update() == "symmetric")
        self.n_batch_iter_ = t
        previous = self.iterations_[-1].elbo if self.iterations_ else None
        record = MinibatchRecord(
            iteration=t, elbo=elbo, elbo_per_token=elbo / max(n_tokens, 1.0),
            relative_change=relative_change(elbo, previous),
            alpha=float(self.doc_topic_prior_.mean()), seconds=time.perf_counter() - start,
            mean_doc_iter=totals.doc_iter / max(totals.n_docs, 1), epoch=epoch, rho=rho,
            batch_docs=batch.shape[0])
        self.iterations_.append(record)
        if self.callback is not None and self.callback(record):
            self.stopped_ = True
        return record
