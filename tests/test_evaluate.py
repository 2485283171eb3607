"""Evaluation metrics against brute-force loops over explicit tokens and word pairs, their
properties on planted corpora, and the whole report on a real corpus."""

import json
import math
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp

from ldaem import LDA
from ldaem.evaluate import (DUPLICATE_HELLINGER, NPMI_EPSILON, closest_topics, document_completion,
                            evaluate, exclusivity, format_table, heldout_bound, npmi_coherence,
                            split_tokens, top_words, umass_coherence)
from ldaem.model import TopicModel
from tests import reference
from tests.conftest import generate_lda_corpus

# Four hand-made documents as token lists over six words; word 5 is in no document.
DOCS = [[0, 1, 0, 2, 1, 0], [3, 4, 3, 4, 0], [2, 2, 1, 4], [3, 0, 1, 3, 3, 4, 2]]
BETA = np.array([[0.40, 0.25, 0.15, 0.05, 0.10, 0.05],
                 [0.02, 0.08, 0.10, 0.35, 0.30, 0.15],
                 [0.10, 0.12, 0.30, 0.04, 0.20, 0.24]])
ALPHA = 0.4


def counts_of(docs, n_words):
    """The document-term count matrix of token lists."""
    X = np.zeros((len(docs), n_words))
    for d, tokens in enumerate(docs):
        for w in tokens:
            X[d, w] += 1
    return sp.csr_matrix(X)


def lda_of(beta, alpha, topic_tokens=None):
    """An estimator with hand-made topics, converging each document's E-step tightly."""
    n_topics, n_words = beta.shape
    model = TopicModel(topic_word=beta, alpha=np.full(n_topics, alpha), eta=None,
                       vocab=np.array([f"w{w}" for w in range(n_words)]), elbo_trace=np.array([]),
                       topic_tokens=np.ones(n_topics) if topic_tokens is None else topic_tokens)
    return LDA.from_model(model, max_doc_update_iter=2000, mean_change_tol=1e-12)


def brute_top_words(beta, top_n):
    return [sorted(range(beta.shape[1]), key=lambda w: (-beta[k, w], w))[:top_n]
            for k in range(beta.shape[0])]


def test_heldout_bound_is_the_textbook_elbo_per_token():
    X = counts_of(DOCS, 6)
    lda = lda_of(BETA, ALPHA)
    alpha = np.full(3, ALPHA)
    gamma0 = alpha + np.array([len(doc) for doc in DOCS])[:, None] / 3
    _, _, doc_bound = reference.e_step(X, BETA, alpha, gamma0, max_iter=2000, tol=1e-12)
    n_tokens = sum(len(doc) for doc in DOCS)
    result = heldout_bound(lda, X)
    assert result["tokens"] == n_tokens
    assert result["bound_per_token"] == pytest.approx(doc_bound.sum() / n_tokens, rel=1e-9)
    assert result["perplexity"] == pytest.approx(math.exp(-result["bound_per_token"]), rel=1e-12)
    assert result["perplexity"] == pytest.approx(lda.perplexity(X), rel=1e-12)
    assert result["unseen_word_tokens"] == 0


def test_unseen_words_are_counted():
    beta = BETA.copy()
    beta[:, 2] = 1e-100
    beta /= beta.sum(axis=1, keepdims=True)
    result = heldout_bound(lda_of(beta, ALPHA), counts_of(DOCS, 6))
    assert result["unseen_word_tokens"] == sum(doc.count(2) for doc in DOCS)


def test_split_alternates_the_tokens_in_vocabulary_order():
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(0, 7, size=rng.integers(0, 25))) for _ in range(30)]
    observed, scored = split_tokens(counts_of(docs, 7))
    expanded = [sorted(doc) for doc in docs]
    assert np.array_equal(observed.toarray(), counts_of([t[0::2] for t in expanded], 7).toarray())
    assert np.array_equal(scored.toarray(), counts_of([t[1::2] for t in expanded], 7).toarray())


def test_split_needs_whole_counts():
    with pytest.raises(ValueError, match="whole-number counts"):
        split_tokens(sp.csr_matrix(np.array([[1.5, 2.0]])))


def test_document_completion_scores_the_second_half_given_the_first():
    lda = lda_of(BETA, ALPHA)
    halves = [(sorted(doc)[0::2], sorted(doc)[1::2]) for doc in DOCS]
    theta = lda.transform(counts_of([first for first, _ in halves], 6))
    log_p = [math.log(sum(theta[d, k] * BETA[k, w] for k in range(3)))
             for d, (_, second) in enumerate(halves) for w in second]
    result = document_completion(lda, counts_of(DOCS, 6))
    assert result["scored_tokens"] == len(log_p)
    assert result["observed_tokens"] == sum(len(first) for first, _ in halves)
    assert result["log_likelihood_per_token"] == pytest.approx(sum(log_p) / len(log_p), rel=1e-12)
    assert result["perplexity"] == pytest.approx(math.exp(-sum(log_p) / len(log_p)), rel=1e-12)


def test_top_words_rank_by_decreasing_probability():
    assert top_words(BETA, 4).tolist() == brute_top_words(BETA, 4)


def document_frequency(docs, *words):
    return sum(all(w in doc for w in words) for doc in docs)


def brute_umass(docs, ranked):
    """Mimno et al. 2011: log((D(w_m, w_l) + 1) / D(w_l)) over pairs l < m of ranks."""
    return sum(math.log((document_frequency(docs, ranked[m], ranked[l]) + 1)
                        / max(document_frequency(docs, ranked[l]), 1))
               for m in range(len(ranked)) for l in range(m))


def brute_npmi(docs, ranked):
    """Mean NPMI over the pairs, document probabilities, -1 for a word in no document."""
    scores = []
    for a, b in combinations(ranked, 2):
        p_a, p_b = document_frequency(docs, a) / len(docs), document_frequency(docs, b) / len(docs)
        p_ab = document_frequency(docs, a, b) / len(docs)
        if p_a == 0 or p_b == 0:
            scores.append(-1.0)
        else:
            joint = math.log(p_ab + NPMI_EPSILON)
            scores.append((joint - math.log(p_a * p_b)) / -joint)
    return sum(scores) / len(scores)


def test_coherence_against_pairwise_loops():
    X, docs = counts_of(DOCS, 6), [set(doc) for doc in DOCS]
    top = top_words(BETA, 4)
    expected_umass = [brute_umass(docs, ranked) for ranked in brute_top_words(BETA, 4)]
    expected_npmi = [brute_npmi(docs, ranked) for ranked in brute_top_words(BETA, 4)]
    assert umass_coherence(top, X) == pytest.approx(expected_umass, rel=1e-12)
    assert npmi_coherence(top, X) == pytest.approx(expected_npmi, rel=1e-12)


def test_a_planted_topic_is_more_coherent_than_random_words():
    rng = np.random.default_rng(1)
    n_words, planted = 60, [0, 1, 2, 3, 4]
    docs = [list(rng.integers(5, n_words, size=8)) + (planted if d % 2 == 0 else [])
            for d in range(200)]
    X = counts_of(docs, n_words)
    beta = np.full((2, n_words), 1e-3)
    beta[0, planted] = [0.3, 0.25, 0.2, 0.15, 0.05]
    beta[1, rng.choice(np.arange(5, n_words), size=5, replace=False)] = [0.3, 0.25, 0.2, 0.15, 0.05]
    top = top_words(beta / beta.sum(axis=1, keepdims=True), 5)
    umass, npmi = umass_coherence(top, X), npmi_coherence(top, X)
    assert umass[0] > umass[1] + 5
    assert npmi[0] == pytest.approx(1.0)        # the planted words are in exactly the same documents
    assert npmi[1] < 0.2
    everywhere = X[::2]                          # the planted words in every document: still 1, not -1
    assert npmi_coherence(top, everywhere)[0] == 1.0


def test_exclusivity_and_closest_topics_against_loops():
    top = top_words(BETA, 3)
    expected = [np.mean([BETA[k, w] / BETA[:, w].sum() for w in top[k]]) for k in range(3)]
    assert exclusivity(BETA, top) == pytest.approx(expected, rel=1e-12)

    def hellinger(p, q):
        return math.sqrt(1 - sum(math.sqrt(a * b) for a, b in zip(p, q)))

    closest, distance = closest_topics(BETA)
    for k in range(3):
        others = {j: hellinger(BETA[k], BETA[j]) for j in range(3) if j != k}
        assert closest[k] == min(others, key=others.get)
        assert distance[k] == pytest.approx(others[closest[k]], rel=1e-12)


def test_identical_topics_are_flagged_as_near_duplicates():
    beta = np.vstack([BETA, BETA[0]])
    report = evaluate(lda_of(beta, ALPHA), counts_of(DOCS, 6), top_n=3)
    flags = [(t["closest_topic"], t["near_duplicate"]) for t in report["topics"]]
    assert flags[0] == (3, True) and flags[3] == (0, True)
    assert not flags[1][1] and not flags[2][1]
    assert report["topics"][0]["hellinger"] < DUPLICATE_HELLINGER


def test_prevalence_from_training_tokens_else_from_the_heldout_documents():
    X = counts_of(DOCS, 6)
    lda = lda_of(BETA, ALPHA, topic_tokens=np.array([1.0, 3.0, 4.0]))
    report = evaluate(lda, X, top_n=3)
    assert [t["prevalence"] for t in report["topics"]] == pytest.approx([0.125, 0.375, 0.5])
    del lda.topic_tokens_
    theta = lda.transform(X)
    weighted = sum(len(doc) * theta[d] for d, doc in enumerate(DOCS))
    report = evaluate(lda, X, top_n=3)
    assert [t["prevalence"] for t in report["topics"]] == pytest.approx(weighted / weighted.sum())
    assert "held-out" in report["topic_definitions"]["prevalence"]


def test_document_completion_prefers_the_true_model():
    X, beta, _ = generate_lda_corpus(4, n_words=40, n_docs=150, doc_length=60, alpha=0.3, seed=2)
    random_beta = np.random.default_rng(3).dirichlet(np.ones(40), size=4)
    truth = document_completion(lda_of(beta, 0.3), X)["log_likelihood_per_token"]
    random = document_completion(lda_of(random_beta, 0.3), X)["log_likelihood_per_token"]
    assert truth > random + 0.3


def test_top_n_below_two_is_refused():
    with pytest.raises(ValueError, match="top_n >= 2"):
        evaluate(lda_of(BETA, ALPHA), counts_of(DOCS, 6), top_n=1)


def test_evaluates_a_model_of_reuters_on_its_unseen_stories(reuters):
    corpus = reuters
    train, heldout = corpus.X[:300], corpus.X[300:]
    lda = LDA(8, random_state=0, max_iter=20).fit(train)
    report = evaluate(lda, heldout, X_train=train, top_n=10, vocab=corpus.vocab)
    json.loads(json.dumps(report, allow_nan=False))
    numbers = [report["heldout_bound"]["bound_per_token"], report["document_completion"]["perplexity"],
               report["coherence"]["umass"]["mean"], report["coherence"]["npmi"]["mean"]]
    numbers += [t[name] for t in report["topics"]
                for name in ("prevalence", "exclusivity", "umass", "npmi", "hellinger")]
    assert np.all(np.isfinite(numbers))
    assert report["heldout_bound"]["documents"] == heldout.shape[0]
    assert sum(t["prevalence"] for t in report["topics"]) == pytest.approx(1.0)
    assert all(-1 <= t["npmi"] <= 1 for t in report["topics"])
    assert all(len(t["top_words"]) == 10 and isinstance(t["top_words"][0], str) for t in report["topics"])
    rows = format_table(report).splitlines()
    assert "nats per token; perplexity = exp(-bound)" in "\n".join(rows)
    for t in report["topics"]:
        assert sum(line.split()[:1] == [str(t["topic"])] and t["top_words"][0] in line for line in rows) == 1
    with pytest.raises(ValueError, match=f"a vocabulary of 10 terms for topics over {train.shape[1]}"):
        evaluate(lda, heldout, vocab=corpus.vocab[:10])


def test_umass_needs_the_training_corpus_and_npmi_may_use_another():
    X, other = counts_of(DOCS, 6), counts_of(DOCS[:2] + [[5, 5, 1]], 6)
    report = evaluate(lda_of(BETA, ALPHA), X, top_n=3, reference=other)
    assert report["coherence"]["umass"]["mean"] is None
    assert all(t["umass"] is None for t in report["topics"])
    assert report["coherence"]["npmi"]["corpus"] == "reference"
    expected = npmi_coherence(top_words(BETA, 3), other)
    assert [t["npmi"] for t in report["topics"]] == pytest.approx(expected, rel=1e-12)
    summary = format_table(report).splitlines()[2]
    assert summary.startswith("UMass coherence") and summary.split()[2] == "-"


def test_a_single_topic_has_no_closest_topic():
    report = evaluate(lda_of(BETA[:1], ALPHA), counts_of(DOCS, 6), top_n=3)
    (topic,) = report["topics"]
    assert (topic["closest_topic"], topic["hellinger"], topic["near_duplicate"]) == (None, None, False)
    json.dumps(report, allow_nan=False)
    assert "  -" in format_table(report)


def test_corpora_must_have_the_models_terms():
    with pytest.raises(ValueError, match="the training corpus has 5 terms, the model 6"):
        evaluate(lda_of(BETA, ALPHA), counts_of(DOCS, 6), X_train=sp.csr_matrix((2, 5)))


def test_split_documents_keeps_out_a_share_and_drops_words_unseen_in_training():
    from ldaem.selection import split_documents
    X = sp.csr_matrix(np.array([[1, 2, 0, 0], [0, 1, 1, 0], [3, 0, 0, 0], [0, 0, 0, 5], [1, 1, 1, 0]], float))
    train, heldout = split_documents(X, 0.4, seed=0)
    assert train.shape == (3, 4) and heldout.shape == (2, 4)
    seen = np.asarray(train.sum(axis=0)).ravel() > 0
    assert np.all(np.asarray(heldout.sum(axis=0)).ravel()[~seen] == 0)
    assert train.sum() + heldout.sum() <= X.sum()
