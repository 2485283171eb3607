"""The one E-step entry point: batch EM, online EM, inference and the Dask backend all call it."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ldaem import _kernels


@dataclass(frozen=True)
class EStepResult:
    """What the E-step of a batch yields; every field but gamma and n_iter is additive over batches."""

    gamma: np.ndarray       # D x K variational Dirichlet parameters
    sstats: np.ndarray      # V x K expected topic-word counts sum_d n_dw phi_dwk (word-major)
    doc_bound: np.ndarray   # D: each document's ELBO term L_d
    n_iter: np.ndarray      # D: inner iterations each document took


def initial_gamma(X, alpha):
    """gamma_dk = alpha_k + N_d / K, the usual starting point (DESIGN.md, E-step)."""
    doc_lengths = np.asarray(X.sum(axis=1)).ravel()
    return alpha[None, :] + doc_lengths[:, None] / alpha.shape[0]


def as_csr_counts(X):
    """X as CSR with float64 counts and int32 or int64 indices and indptr (both the same), the
    layout the kernels read, without stored zeros. A CSR matrix in that layout keeps its arrays:
    the corpus loaders' int32 indices are not copied to int64."""
    X = sp.csr_matrix(X)
    if not X.data.all():          # stored zeros: 0 log(0 / 0) would make the bound NaN
        X = X.copy()
        X.eliminate_zeros()
    small = X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    index_type = np.int32 if small else np.int64
    return sp.csr_matrix(
        (X.data.astype(np.float64, copy=False), X.indices.astype(index_type, copy=False),
         X.indptr.astype(index_type, copy=False)), shape=X.shape)


# The E-step keeps the ratios n_dw / s_dw (8 bytes per nonzero) of this many nonzeros at a time,
# not of the whole batch: its peak memory then stays within twice the corpus, topics and gamma.
CHUNK_NONZEROS = 1 << 20


def document_chunks(X, max_nonzeros=CHUNK_NONZEROS):
    """Bounds (int64, from 0 to D) of consecutive chunks of X's documents with at most
    max_nonzeros nonzeros each (a longer document is a chunk of its own)."""
    indptr = X.indptr
    bounds = [0]
    while bounds[-1] < X.shape[0]:
        fits = int(np.searchsorted(indptr, indptr[bounds[-1]] + max_nonzeros, side="right")) - 1
        bounds.append(max(min(fits, X.shape[0]), bounds[-1] + 1))
    return np.asarray(bounds, dtype=np.int64)


class WordIndex(NamedTuple):
    """A batch's entries by word, per chunk of documents (_kernels.word_index): what the E-step's
    pass for the topic-word sufficient statistics reads."""

    chunk_docs: np.ndarray  # chunk bounds, from document_chunks
    word_ptr: np.ndarray    # n_chunks x (V + 1), from each chunk's first nonzero
    entry: np.ndarray       # nnz positions in X.indices, by chunk, word and document
    entry_doc: np.ndarray   # nnz: their documents


def entries_by_word(X, max_nonzeros=CHUNK_NONZEROS):
    """X's WordIndex, for e_step's word_index: a corpus that gets E-step after E-step (batch EM)
    computes it once instead of at every one. int32 arrays when the nonzeros and documents fit in
    them, else int64."""
    X = as_csr_counts(X)
    nnz = X.indices.shape[0]
    index_type = np.int32 if max(nnz, X.shape[0]) < np.iinfo(np.int32).max else np.int64
    chunk_docs = document_chunks(X, max_nonzeros)
    word_ptr = np.zeros((chunk_docs.shape[0] - 1, X.shape[1] + 1), dtype=np.int64)
    entry, entry_doc = np.empty(nnz, dtype=index_type), np.empty(nnz, dtype=index_type)
    _kernels.word_index(X.indptr, X.indices, chunk_docs, word_ptr, entry, entry_doc)
    return WordIndex(chunk_docs, word_ptr, entry, entry_doc)


def _no_word_index(X):
    """The chunks of an E-step without sufficient statistics, and no entries by word."""
    return WordIndex(document_chunks(X), np.zeros((0, 0), dtype=np.int64),
                     np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))


# The float32 E-step raises its topic weights to at least this, so that none underflows to zero
# (maximum-likelihood topics floor unseen words at 1e-100) and every s_w = sum_k t_k w_wk and
# ratio n_dw / s_w stays a normal float32; a weight this small only matters to a word whose weights
# in every topic are as small.
FLOAT32_WEIGHT_FLOOR = 1e-30


def topic_weights(exp_elog_beta, dtype="float64"):
    """The E-step's V x K topic weights (beta, or exp(E[log beta])) in its working precision:
    float64 as they are, or float32, floored at FLOAT32_WEIGHT_FLOOR. The E-step computes in the
    precision of the weights it is given (its products, ratios and exp(E[log theta]); gamma, the
    sufficient statistics and the ELBO stay float64)."""
    if dtype == "float32":
        return np.maximum(exp_elog_beta, FLOAT32_WEIGHT_FLOOR).astype(np.float32, order="C")
    return np.ascontiguousarray(exp_elog_beta, dtype=np.float64)


def _kernel_weights(exp_elog_beta):
    """The weights as the kernel takes them: float32 ones as they are (topic_weights), others float64."""
    dtype = np.float32 if exp_elog_beta.dtype == np.float32 else np.float64
    return np.ascontiguousarray(exp_elog_beta, dtype=dtype)


def e_step(X, exp_elog_beta, alpha, gamma=None, max_iter=100, tol=1e-3, want_sstats=True,
           word_index=None, overwrite_gamma=False, point_theta=False):
    """Mean-field E-step over the documents of X (D x V counts) for fixed topics.

    exp_elog_beta: V x K word-major topic-word weights (beta, or exp(E[log beta]) when smoothed),
    float64, or float32 from topic_weights for a single-precision E-step;
    alpha: K; gamma: D x K warm start (default alpha + N_d / K); word_index: X's WordIndex, from
    entries_by_word(X), or None to compute it; overwrite_gamma: update the gamma given in place (it
    must be a C-contiguous float64 array) rather than a copy; point_theta: EM for each document's
    MAP theta_d = gamma_d / sum_k gamma_dk instead (docs/map.md), doc_bound its log p(w_d |
    theta_d) + sum_k alpha_k log theta_dk. Converges each document until the mean absolute
    change of gamma_d is below tol, or max_iter inner iterations.
    """
    X = as_csr_counts(X)
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    n_words, n_topics = exp_elog_beta.shape
    if alpha.shape != (n_topics,) or X.shape[1] > n_words:
        raise ValueError(f"e_step: {X.shape[1]} words and alpha {alpha.shape} against "
                         f"{n_words} x {n_topics} topic weights")
    if gamma is None:
        gamma = initial_gamma(X, alpha)
    elif not overwrite_gamma:
        gamma = np.array(gamma, dtype=np.float64, order="C")
    if gamma.shape != (X.shape[0], n_topics):
        raise ValueError(f"e_step: gamma {gamma.shape} for {X.shape[0]} documents and {n_topics} topics")
    if not want_sstats:
        word_index = _no_word_index(X)
    elif word_index is None:
        word_index = entries_by_word(X)
    sstats, doc_bound, n_iter = _kernels.e_step(
        X.indptr, X.indices, X.data, _kernel_weights(exp_elog_beta),
        alpha, gamma, int(max_iter), float(tol), bool(want_sstats), *word_index, bool(point_theta))
    return EStepResult(gamma=gamma, sstats=sstats, doc_bound=doc_bound, n_iter=n_iter)


# topic_expectations sums over this many blocks of words, whatever the number of threads, so that
# its sums are the same on any machine.
_TOPIC_CHUNKS = 256


@dataclass(frozen=True)
class TopicSums:
    """Sums over the words and topics of smoothed topics lambda (V x K) that the ELBO's topic
    terms and eta's M-step take (DESIGN.md, "The ELBO" and "M-step")."""

    elog_beta: float        # sum_kw E[log beta_kw]
    lam_elog_beta: float    # sum_kw lambda_kw E[log beta_kw]
    log_gamma: float        # sum_kw log Gamma(lambda_kw) - sum_k log Gamma(sum_w lambda_kw)


def topic_expectations(lam):
    """(exp(E[log beta]), TopicSums) of smoothed topics lam (V x K word-major Dirichlet
    parameters): the E-step's weights and the sums of the topic terms, in one compiled call."""
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    exp_elog_beta = np.empty_like(lam)
    sums = _kernels.topic_expectations(lam, exp_elog_beta, min(_TOPIC_CHUNKS, lam.shape[0]))
    return exp_elog_beta, TopicSums(*(float(v) for v in sums))
