"""E-step runners: for batch EM over the whole corpus in this process, or over row blocks of it
kept on the workers of a Dask cluster; for online EM over each minibatch, here or spread over the
workers.

Batch EM (ldaem.lda.LDA.fit) asks a runner, once per iteration, for the E-step's totals given
the topics and alpha (DESIGN.md, "Variational E-step"): the sufficient statistics, the summed ELBO
terms and the summed E[log theta] that the M-step needs. The runner keeps each document's gamma
to warm-start the next iteration. Both runners call ldaem.estep.e_step through
partition_e_step, and the M-step is the estimator's, so the two paths differ only in where the
E-step runs and in the order in which per-document terms are summed.

Dask is imported only by DaskEStep, so that the in-process path needs no dask.
"""

import contextlib
import logging
import operator
import signal
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from ldaem import _kernels
from ldaem.estep import as_csr_counts, e_step, entries_by_word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EStepTotals:
    """The additive part of an E-step over some documents: what the M-step and the ELBO need."""

    sstats: np.ndarray       # V x K, sum_d n_dw phi_dwk (word-major)
    doc_bound: float         # sum_d L_d (DESIGN.md, "The ELBO")
    elog_theta: np.ndarray   # K, sum_d E[log theta_dk], the alpha M-step's statistic
    doc_iter: int            # sum_d inner E-step iterations
    n_docs: int

    def __add__(self, other):
        return EStepTotals(sstats=self.sstats + other.sstats, doc_bound=self.doc_bound + other.doc_bound,
                           elog_theta=self.elog_theta + other.elog_theta,
                           doc_iter=self.doc_iter + other.doc_iter, n_docs=self.n_docs + other.n_docs)


def partition_e_step(X, exp_elog_beta, alpha, gamma, max_iter, tol, word_index=None,
                     overwrite_gamma=False, point_theta=False):
    """The E-step over the documents of X (a partition, or the whole corpus): (gamma, EStepTotals).

    gamma: D x K warm start, or None for alpha + N_d / K; word_index: X's entries_by_word
    (ldaem.estep), or None; point_theta: MAP topic proportions (ldaem.estep.e_step). Unless
    overwrite_gamma (updating gamma in place, which spares a copy), a pure function of its
    arguments, so that Dask may rerun it on another worker.
    """
    result = e_step(X, exp_elog_beta, alpha, gamma, max_iter, tol, word_index=word_index,
                    overwrite_gamma=overwrite_gamma, point_theta=point_theta)
    totals = EStepTotals(
        sstats=result.sstats, doc_bound=float(result.doc_bound.sum()),
        elog_theta=_kernels.dirichlet_expectation_sum(result.gamma),
        doc_iter=int(result.n_iter.sum()), n_docs=result.gamma.shape[0])
    return result.gamma, totals


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Run the block with n_jobs numba threads (None or -1: all of them) in the calling thread."""
    available = numba.config.NUMBA_NUM_THREADS
    wanted = available if n_jobs in (None, -1) else min(n_jobs, available)
    before = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _n_rows(X):
    return X.shape[0]


def _partition_task(n_threads, *args, **kwargs):
    """partition_e_step on a worker, with n_threads numba threads."""
    with numba_threads(n_threads):
        return partition_e_step(*args, **kwargs)


def minibatch_e_step(X, exp_elog_beta, alpha, max_iter, tol):
    """Online EM's E-step of a minibatch X in this process, from the initial gamma: EStepTotals."""
    return partition_e_step(X, exp_elog_beta, alpha, None, max_iter, tol)[1]


def _minibatch_task(n_threads, *args):
    with numba_threads(n_threads):
        return minibatch_e_step(*args)


def _with_retries(run, max_retries):
    """run(), retried up to max_retries times when the cluster loses a task or a connection."""
    from distributed import CancelledError
    from distributed.comm import CommClosedError

    for attempt in range(max_retries + 1):
        try:
            return run()
        except (CancelledError, CommClosedError) as error:
            if attempt == max_retries:
                raise
            log.warning("E-step on the cluster failed (%s); retrying", error)
            time.sleep(0.5 * (attempt + 1))


class InProcessEStep:
    """E-steps over all of X in this process, each warm-started from the previous one's gamma."""

    def __init__(self, X, max_iter, tol, point_theta=False):
        self._X, self._max_iter, self._tol, self._point_theta = X, max_iter, tol, point_theta
        self._gamma = None
        self._word_index = entries_by_word(X)      # the same for every E-step: computed once

    def __call__(self, exp_elog_beta, alpha):
        """The E-step's totals for these topics (V x K) and alpha (K)."""
        self._gamma, totals = partition_e_step(self._X, exp_elog_beta, alpha, self._gamma,
                                               self._max_iter, self._tol, self._word_index,
                                               overwrite_gamma=True, point_theta=self._point_theta)
        return totals

    def gamma(self):
        """A copy of every document's gamma after the last E-step (None before the first): the
        next E-step updates the runner's own in place."""
        return None if self._gamma is None else self._gamma.copy()

    def set_gamma(self, gamma):
        """Warm-start the next E-step from (a copy of) gamma (D x K), e.g. a checkpoint's."""
        self._gamma = None if gamma is None else np.array(gamma, dtype=np.float64, order="C")

    def close(self):
        self._gamma = None


def partition_bounds(n_docs, n_partitions):
    """(start, stop) of n_partitions contiguous row blocks of near-equal size (none empty)."""
    n_partitions = max(1, min(n_partitions, n_docs))
    edges = np.linspace(0, n_docs, n_partitions + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def local_cluster(n_workers):
    """A LocalCluster of n_workers single-threaded worker processes on loopback, without the
    Active Memory Manager, which would drop the copies of gamma that DaskEStep keeps.

    The workers start with SIGINT ignored (a disposition they inherit): Ctrl-C in a terminal
    signals the whole process group, and the fit that owns them stops after the iteration under
    way, which needs its workers alive."""
    import dask
    from distributed import LocalCluster

    main = threading.current_thread() is threading.main_thread()    # where signals can be set
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                host="127.0.0.1", dashboard_address=None)
    finally:
        if main and before is not None:       # None: a handler not set from Python, left as it is
            signal.signal(signal.SIGINT, before)


def tree_sum(client, futures):
    """The sum of futures' values computed on the workers by pairwise additions, as one future.

    The order of the additions depends only on the order of the futures, so the result does not
    depend on which worker computes what.
    """
    level = list(futures)
    while len(level) > 1:
        pairs = [client.submit(operator.add, a, b, pure=False) for a, b in zip(level[::2], level[1::2])]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


class DaskEStep:
    """E-steps over row blocks of the corpus that live on the workers of a Dask cluster.

    partitions: futures of CSR row blocks in corpus order, made by tasks (client.submit), not
    client.scatter: Dask rebuilds a task's result when the worker holding it dies, whereas
    scattered data is lost with its worker. from_matrix makes them from an in-memory matrix: its
    tasks carry their blocks, so the scheduler keeps a copy of the corpus; a corpus too large for
    that would be partitioned by tasks that read their rows from disk.

    Each call scatters the topics to the cluster (alpha, K numbers, travels inside the tasks),
    runs partition_e_step on every block where it lives, and brings back only the totals, summed
    on the workers by tree_sum. Each block's gamma stays on its worker as the next call's warm
    start. Each task runs the E-step with n_threads numba threads: Dask already runs one task per
    worker thread.

    Worker failure: Dask reruns a task whose worker died, and rebuilds a lost block from its
    task. A block's gamma cannot be rebuilt (it depends on every earlier iteration), so after
    each E-step every gamma is copied to a second worker (replicate_gamma, D x K numbers over
    the network per iteration): when a worker dies its blocks' gamma survives on another, and the
    fit goes on exactly as if nothing had happened. A block whose every copy was lost (a single
    worker, replication off, or two losses at once) restarts from alpha + N_d / K: still the
    exact E-step's coordinate ascent, only not warm-started, and logged as a warning. The call is
    retried up to max_retries times. Dask's Active Memory Manager (on by default, policy
    ReduceReplicas) drops the copies within seconds: local_cluster starts clusters without it,
    and on a cluster where it runs a warning says that a lost worker's blocks will restart.
    """

    def __init__(self, client, partitions, max_iter, tol, n_threads=1, max_retries=3, replicate_gamma=True,
                 point_theta=False):
        self._client, self._partitions = client, list(partitions)
        self._max_iter, self._tol, self._max_retries = max_iter, tol, max_retries
        self._point_theta = point_theta
        self._n_threads, self._replicate_gamma = n_threads, replicate_gamma
        self._gamma = [None] * len(self._partitions)
        if replicate_gamma and client.amm.running():
            log.warning("the Dask cluster's Active Memory Manager drops the copies of gamma kept "
                        "against a worker's loss: the blocks of a lost worker will restart from the "
                        "initial gamma (start the scheduler with "
                        "distributed.scheduler.active-memory-manager.start: false to keep them)")
        # each block's word_index, computed once on its worker (a task: rebuilt if lost)
        self._word_index = [client.submit(entries_by_word, part, pure=False) for part in self._partitions]

    @classmethod
    def from_matrix(cls, client, X, n_partitions, max_iter, tol, n_threads=1, max_retries=3,
                    replicate_gamma=True, point_theta=False):
        """Partition the rows of X into n_partitions blocks on the cluster, once."""
        X = as_csr_counts(X)
        partitions = [client.submit(as_csr_counts, X[start:stop], pure=False)
                      for start, stop in partition_bounds(X.shape[0], n_partitions)]
        return cls(client, partitions, max_iter, tol, n_threads, max_retries, replicate_gamma, point_theta)

    def __call__(self, exp_elog_beta, alpha):
        """The E-step's totals over all blocks for these topics (V x K) and alpha (K)."""
        return _with_retries(lambda: self._run(exp_elog_beta, alpha), self._max_retries)

    def _run(self, exp_elog_beta, alpha):
        self._forget_lost_gamma()
        beta = self._client.scatter(np.ascontiguousarray(exp_elog_beta), hash=False)
        outputs = [self._client.submit(_partition_task, self._n_threads, part, beta, alpha, gamma,
                                       self._max_iter, self._tol, index, point_theta=self._point_theta,
                                       pure=False)
                   for part, gamma, index in zip(self._partitions, self._gamma, self._word_index)]
        gamma = [self._client.submit(operator.itemgetter(0), out, pure=False) for out in outputs]
        totals = [self._client.submit(operator.itemgetter(1), out, pure=False) for out in outputs]
        result = tree_sum(self._client, totals).result()
        if self._replicate_gamma and len(self._client.nthreads()) > 1:
            self._client.replicate(gamma, n=2)
        self._gamma = gamma
        return result

    def gamma(self):
        """Every document's gamma after the last E-step, gathered from the workers."""
        if any(g is None for g in self._gamma):
            return None
        return np.vstack(self._client.gather(self._gamma))

    def set_gamma(self, gamma):
        """Warm-start the next E-step from gamma (D x K), split along the partitions' rows."""
        rows = self._client.gather([self._client.submit(_n_rows, part, pure=False)
                                    for part in self._partitions])
        edges = np.cumsum([0] + rows)
        self._gamma = [self._client.scatter(gamma[a:b], hash=False) for a, b in zip(edges[:-1], edges[1:])]

    def _forget_lost_gamma(self):
        """Restart from the initial gamma every block whose gamma no worker holds any more."""
        finished = [g for g in self._gamma if g is not None and g.status == "finished"]
        who_has = self._client.who_has(finished) if finished else {}
        for i, gamma in enumerate(self._gamma):
            if gamma is not None and not who_has.get(gamma.key):
                log.warning("the gamma of partition %d was lost with its worker: restarting it", i)
                self._gamma[i] = None

    def close(self):
        """Release the blocks and gammas held on the cluster."""
        self._partitions, self._gamma, self._word_index = [], [], []


class DaskMinibatchEStep:
    """Online EM's E-step of each minibatch, its rows split into n_partitions blocks that run on
    the workers of a Dask cluster, their totals summed there by tree_sum.

    Each minibatch travels to the workers once, with the topics (scattered); alpha travels
    inside the tasks. Minibatch E-steps start from the initial gamma and keep nothing on the
    workers, so a task lost with its worker is rerun elsewhere with the same result: the fit is
    the one it would have been.
    """

    def __init__(self, client, n_partitions, max_iter, tol, n_threads=1, max_retries=3):
        self._client, self._n_partitions = client, n_partitions
        self._max_iter, self._tol, self._max_retries = max_iter, tol, max_retries
        self._n_threads = n_threads

    def __call__(self, X, exp_elog_beta, alpha):
        """EStepTotals of the minibatch X (CSR counts) for these topics (V x K) and alpha (K)."""
        return _with_retries(lambda: self._run(X, exp_elog_beta, alpha), self._max_retries)

    def _run(self, X, exp_elog_beta, alpha):
        beta = self._client.scatter(np.ascontiguousarray(exp_elog_beta), hash=False)
        totals = [self._client.submit(_minibatch_task, self._n_threads, X[start:stop], beta, alpha,
                                      self._max_iter, self._tol, pure=False)
                  for start, stop in partition_bounds(X.shape[0], self._n_partitions)]
        return tree_sum(self._client, totals).result()
