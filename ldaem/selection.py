"""Choosing the number of topics: fit each K on the same training documents and judge each on the
same held-out ones (issue 6, `ldaem select`)."""

import numpy as np

from ldaem.estep import as_csr_counts
from ldaem.evaluate import document_completion, heldout_bound, npmi_coherence, top_words, umass_coherence


class TooFewDocuments(ValueError):
    """The held-out split leaves nothing to score."""


def split_documents(X, heldout_fraction, seed):
    """(train, heldout): a random heldout_fraction of the documents (at least one) kept out.

    Tokens of held-out documents whose word no training document uses are dropped: maximum
    likelihood topics give them probability ~0, which would swamp every held-out figure.
    """
    X = as_csr_counts(X)
    n_docs = X.shape[0]
    n_heldout = min(n_docs - 1, max(1, round(heldout_fraction * n_docs)))
    order = np.random.default_rng(seed).permutation(n_docs)
    train, heldout = X[np.sort(order[n_heldout:])], X[np.sort(order[:n_heldout])].copy()
    seen = np.zeros(X.shape[1], dtype=bool)
    seen[train.indices] = True
    heldout.data[~seen[heldout.indices]] = 0
    heldout.eliminate_zeros()
    return train, heldout


def compare_topic_counts(X, topic_counts, heldout_fraction=0.1, seed=0, top_n=10, make_lda=None,
                         on_fit=None):
    """One row per K: the held-out bound, document completion and coherence of a model with K topics.

    make_lda(K) builds the estimator (default ldaem.LDA(K, random_state=seed)); on_fit(K, lda) is
    called after each fit (for progress). Rows: {"topics", "iterations", "training_bound",
    "heldout_bound", "heldout_perplexity", "completion", "umass", "npmi"}, per token in nats.
    """
    from ldaem.lda import LDA

    make_lda = make_lda or (lambda k: LDA(k, random_state=seed))
    if X.shape[0] < 2:
        raise TooFewDocuments(f"comparing numbers of topics needs at least 2 documents, not {X.shape[0]}")
    train, heldout = split_documents(X, heldout_fraction, seed)
    if not (np.asarray(heldout.sum(axis=1)).ravel() >= 2).any():
        raise TooFewDocuments(f"none of the {heldout.shape[0]} held-out of its {X.shape[0]} documents has "
                              f"two tokens of words that the others use, which document completion "
                              f"needs: too few documents to compare numbers of topics (or hold out a "
                              f"larger share)")
    rows = []
    for k in topic_counts:
        lda = make_lda(k).fit(train)
        if on_fit is not None:
            on_fit(k, lda)
        bound = heldout_bound(lda, heldout)
        top = top_words(lda.topic_word_, top_n)
        rows.append({
            "topics": k, "iterations": lda.n_iter_,
            "training_bound": lda.iterations_[-1].elbo_per_token,
            "heldout_bound": bound["bound_per_token"], "heldout_perplexity": bound["perplexity"],
            "completion": document_completion(lda, heldout)["log_likelihood_per_token"],
            "umass": float(umass_coherence(top, train).mean()),
            "npmi": float(npmi_coherence(top, heldout).mean()),
        })
    return rows
