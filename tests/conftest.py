from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from ldaem.datasets import load_bundled

SHARED_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


@pytest.fixture(scope="session")
def reuters():
    return load_bundled("reuters")


@pytest.fixture(scope="session")
def ap():
    return load_bundled("ap")


def generate_lda_corpus(n_topics, n_words, n_docs, doc_length, alpha, seed):
    """Documents drawn from the LDA generative process with well-separated topics.

    Each topic puts 90% of its mass on its own block of words. Returns (X csr, beta K x V, theta).
    """
    rng = np.random.default_rng(seed)
    block = n_words // n_topics
    beta = np.full((n_topics, n_words), 0.1 / (n_words - block))
    for k in range(n_topics):
        own = slice(k * block, (k + 1) * block)
        beta[k, own] = 0.9 * rng.dirichlet(np.ones(block))
    beta /= beta.sum(axis=1, keepdims=True)
    theta = rng.dirichlet(np.full(n_topics, alpha), size=n_docs)
    counts = np.stack([rng.multinomial(doc_length, theta[d] @ beta) for d in range(n_docs)])
    return sp.csr_matrix(counts.astype(float)), beta, theta


def matched_similarity(similarity):
    """similarity[i, j] of true topic i and found topic j, for the one-to-one matching of the
    largest total (Hungarian algorithm): one value per true topic."""
    rows, cols = linear_sum_assignment(-similarity)
    return similarity[rows, cols]
