"""Evaluation of a fitted topic model (DESIGN.md, "Evaluation"): each metric has one definition.

Likelihoods are in nats per token and perplexity is exp(-that); coherence is computed over the
top-N words of each topic from document co-occurrence counts. `evaluate` gathers everything in a
JSON-serialisable report and `format_table` prints it.
"""

import numpy as np
import scipy.sparse as sp

from ldaem.estep import as_csr_counts
from ldaem.model import check_vocabulary_size
from ldaem.mstep import MIN_TOPIC_WORD

NPMI_EPSILON = 1e-12

HELDOUT_DEFINITION = (
    "sum over held-out documents of their ELBO terms L_d with the topics fixed, divided by their "
    "tokens: nats per token; perplexity = exp(-bound). unseen_word_tokens: tokens of words no topic "
    "uses (p(w|k) at the M-step's floor of 1e-100 for every k: about -230 nats each)")
COMPLETION_DEFINITION = (
    "Wallach et al. 2009: each document's tokens (words in vocabulary order, each repeated by its "
    "count) alternate between an observed half (1st, 3rd, ...) and a scored half (2nd, 4th, ...); "
    "theta = normalised gamma inferred from the observed half; score = sum over scored tokens of "
    "log sum_k theta_k beta_kw, divided by the scored tokens: nats per token; perplexity = exp(-score)")
UMASS_DEFINITION = (
    "UMass (Mimno et al. 2011) on the training corpus: top words w_1..w_N by decreasing p(w|k), "
    "sum over m > l of log((D(w_m, w_l) + 1) / D(w_l)), D = number of documents containing the "
    "word(s); a word in no document counts D(w_l) = 1. Higher is better")
NPMI_DEFINITION = (
    "NPMI (Bouma 2009; Lau et al. 2014) on the {corpus} corpus: mean over pairs of top words of "
    "log((P(w_i, w_j) + eps) / (P(w_i) P(w_j))) / -log(P(w_i, w_j) + eps), P = share of documents "
    f"containing the word(s), eps = {NPMI_EPSILON:g}; a pair with a word in no document scores -1. "
    "In [-1, 1]")
PREVALENCE_DEFINITION = {
    "training": "share of the expected training tokens assigned to the topic (topic_tokens_)",
    "held-out": ("sum_d N_d theta_dk / sum_d N_d over the held-out documents "
                 "(the model has no topic_tokens_)"),
}
EXCLUSIVITY_DEFINITION = (
    "mean over the topic's top words of p(w|k) / sum_j p(w|j) (Bischof & Airoldi 2012): "
    "1 when no other topic uses them")
CLOSEST_DEFINITION = (
    "closest other topic by Hellinger distance sqrt(1 - sum_w sqrt(p(w|k) p(w|j))), in [0, 1]; "
    "near duplicate when below {threshold}")

# Two topics closer than this share most of their mass: a Hellinger distance of 0.3 is a
# Bhattacharyya coefficient sum_w sqrt(p q) of 0.91, as for two topics that agree on 90% of their mass.
DUPLICATE_HELLINGER = 0.3

# Nonzeros scored at a time by document completion, to bound the memory of the K-vectors gathered.
_CHUNK = 1 << 16


def _tokens(X):
    return float(X.data.sum())


def unseen_word_tokens(topic_word, X):
    """Tokens of X whose word no topic uses: p(w|k) at the M-step's floor (MIN_TOPIC_WORD) for every k.

    Maximum-likelihood topics give the words of no training document that floor, so each such
    held-out token costs about log(1e-100) = -230 nats: this count explains a very low bound.
    """
    unused = np.all(topic_word <= 2 * MIN_TOPIC_WORD, axis=0)
    X = as_csr_counts(X)
    return float(X.data[unused[X.indices]].sum())


def heldout_bound(lda, X):
    """The held-out per-word bound: sum_d L_d / tokens with the topics fixed (DESIGN.md, ELBO).

    L_d is each document's ELBO term from lda.infer; perplexity = exp(-bound) (Blei et al. 2003, sec. 7.1).
    """
    X = as_csr_counts(X)
    n_tokens = _tokens(X)
    if n_tokens <= 0:
        raise ValueError("the held-out documents have no tokens")
    bound = float(lda.infer(X)[1].sum()) / n_tokens
    return {"documents": X.shape[0], "tokens": n_tokens, "bound_per_token": bound,
            "perplexity": float(np.exp(-bound)),
            "unseen_word_tokens": unseen_word_tokens(lda.topic_word_, X),
            "definition": HELDOUT_DEFINITION}


def split_tokens(X):
    """Split each document's tokens in two halves, alternately, without expanding the token list.

    The tokens of a document are taken in column (vocabulary) order, each word repeated by its
    count; even positions (0, 2, ...) go to the observed half, odd ones to the scored half. A word
    with count n starting at position c gets ceil((c + n) / 2) - ceil(c / 2) observed tokens.
    Counts must be whole numbers. Returns (observed, scored), two CSR matrices that add up to X.
    """
    X = as_csr_counts(X).copy()
    X.sort_indices()
    counts = X.data
    if np.any(counts != np.round(counts)):
        raise ValueError("document completion needs whole-number counts")
    counts = counts.astype(np.int64)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    ends = np.cumsum(counts)
    starts = ends - counts - np.concatenate([[0], ends])[X.indptr[:-1]][rows]
    observed = (starts + counts + 1) // 2 - (starts + 1) // 2
    halves = []
    for data in (observed, counts - observed):
        half = sp.csr_matrix((data.astype(np.float64), X.indices.copy(), X.indptr.copy()), shape=X.shape)
        half.eliminate_zeros()
        halves.append(half)
    return tuple(halves)


def log_predictive(doc_topic, topic_word, X):
    """sum over the tokens of X of log sum_k theta_dk beta_kw (doc_topic D x K, topic_word K x V)."""
    X = as_csr_counts(X)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    total = 0.0
    for start in range(0, X.nnz, _CHUNK):
        part = slice(start, start + _CHUNK)
        probabilities = np.einsum("ik,ki->i", doc_topic[rows[part]], topic_word[:, X.indices[part]])
        total += float(X.data[part] @ np.log(probabilities))
    return total


def document_completion(lda, X):
    """Document completion (Wallach, Murray, Salakhutdinov & Mimno, ICML 2009, sec. 4).

    Each document is split by split_tokens; theta (normalised gamma) is inferred from the observed
    half with the topics fixed and the scored half is scored with the plug-in predictive
    sum_k theta_k beta_kw (beta: lda.topic_word_, the mean of q(beta) when smoothed), in nats per
    scored token. This point-estimate form is the one of Hoffman et al. (JMLR 2013, sec. 4.1).
    """
    observed, scored = split_tokens(X)
    n_scored = _tokens(scored)
    if n_scored <= 0:
        raise ValueError("no held-out document has two tokens to split")
    doc_topic = lda.infer(observed)[0]
    score = log_predictive(doc_topic, lda.topic_word_, scored) / n_scored
    return {"documents": int(np.count_nonzero(np.diff(scored.indptr))),
            "observed_tokens": _tokens(observed), "scored_tokens": n_scored,
            "log_likelihood_per_token": score, "perplexity": float(np.exp(-score)),
            "definition": COMPLETION_DEFINITION}


def top_words(topic_word, top_n):
    """K x N indices of each topic's top_n most probable words, by decreasing p(w|k) (ties: lower index)."""
    top_n = min(top_n, topic_word.shape[1])
    return np.argsort(-topic_word, axis=1, kind="stable")[:, :top_n]


def document_cooccurrence(X, top):
    """K x N x N document counts: [k, i, j] = documents containing both top[k, i] and top[k, j].

    The diagonal [k, i, i] is the document frequency of top[k, i]. Computed as one sparse binary
    product restricted to the columns of the distinct top words.
    """
    words, positions = np.unique(top, return_inverse=True)
    positions = positions.reshape(top.shape)
    present = (as_csr_counts(X)[:, words] > 0).astype(np.float64)
    counts = (present.T @ present).toarray()
    return counts[positions[:, :, None], positions[:, None, :]]


def umass_coherence(top, X):
    """UMass coherence of each topic (Mimno, Wallach, Talley, Leenders & McCallum, EMNLP 2011, eq. 1).

    top: K x N word indices ranked by decreasing p(w|k) (top_words). For each topic,
    sum over m = 2..N and l = 1..m-1 of log((D(w_m, w_l) + 1) / D(w_l)): the denominator is the
    document frequency of the higher-ranked word. A word in no document of X counts D = 1.
    """
    counts = document_cooccurrence(X, top)
    lower, upper = np.tril_indices(top.shape[1], -1)         # lower = m > upper = l
    joint = counts[:, lower, upper]
    frequency = np.maximum(np.diagonal(counts, axis1=1, axis2=2)[:, upper], 1.0)
    return np.log((joint + 1.0) / frequency).sum(axis=1)


def npmi_coherence(top, X, epsilon=NPMI_EPSILON):
    """NPMI coherence of each topic: the mean normalised PMI of its pairs of top words.

    NPMI (Bouma 2009) with document-level probabilities and epsilon smoothing, as Lau, Newman &
    Baldwin (EACL 2014) and Röder, Both & Hinneburg (WSDM 2015):
    log((P(w_i, w_j) + eps) / (P(w_i) P(w_j))) / -log(P(w_i, w_j) + eps), where P is the share of
    documents of X containing the word(s). A pair with a word in no document scores -1, the
    value NPMI takes for words that never co-occur; a pair in every document 1, its limit for
    words that always do (the formula's 0/0 there gives -1 with epsilon).
    """
    n_docs = X.shape[0]
    if n_docs == 0:
        raise ValueError("NPMI needs a reference corpus with documents")
    probability = document_cooccurrence(X, top) / n_docs
    first, second = np.triu_indices(top.shape[1], 1)
    joint = np.log(probability[:, first, second] + epsilon)
    marginal = np.diagonal(probability, axis1=1, axis2=2)
    seen = (marginal[:, first] > 0) & (marginal[:, second] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        npmi = (joint - np.log(marginal[:, first]) - np.log(marginal[:, second])) / -joint
    always = probability[:, first, second] >= 1.0
    return np.where(always, 1.0, np.where(seen, npmi, -1.0)).mean(axis=1)


def exclusivity(topic_word, top):
    """Mean over each topic's top words of p(w|k) / sum_j p(w|j) (Bischof & Airoldi, ICML 2012)."""
    share = topic_word / topic_word.sum(axis=0, keepdims=True)
    return np.take_along_axis(share, top, axis=1).mean(axis=1)


def closest_topics(topic_word):
    """For each topic, the closest other topic and their Hellinger distance.

    H(p, q) = sqrt(1 - sum_w sqrt(p_w q_w)), in [0, 1]. Returns (index K, distance K); with a
    single topic, index -1 and distance nan.
    """
    if topic_word.shape[0] == 1:
        return np.array([-1]), np.array([np.nan])
    roots = np.sqrt(topic_word)
    distance = np.sqrt(np.maximum(1.0 - roots @ roots.T, 0.0))
    np.fill_diagonal(distance, np.inf)
    closest = np.argmin(distance, axis=1)
    return closest, distance[np.arange(topic_word.shape[0]), closest]


def topic_prevalence(lda, X):
    """Each topic's share of the tokens, and where it comes from ('training' or 'held-out').

    The model's expected training tokens per topic (topic_tokens_) when it has them, else
    sum_d N_d theta_dk / sum_d N_d over the documents of X.
    """
    topic_tokens = getattr(lda, "topic_tokens_", None)
    if topic_tokens is not None and np.sum(topic_tokens) > 0:
        return np.asarray(topic_tokens) / np.sum(topic_tokens), "training"
    X = as_csr_counts(X)
    weighted = np.asarray(X.sum(axis=1)).ravel() @ lda.transform(X)
    return weighted / weighted.sum(), "held-out"


def _nullable(values, k):
    return None if values is None else float(values[k])


def _checked_counts(X, n_words, name):
    """X as CSR counts, refused unless it has the model's n_words columns."""
    X = as_csr_counts(X)
    if X.shape[1] != n_words:
        raise ValueError(f"{name} has {X.shape[1]} terms, the model {n_words}")
    return X


def _topic_rows(topic_word, top, prevalence, umass, npmi, names):
    """One dict per topic: prevalence, exclusivity, coherence, closest topic, top words."""
    exclusive = exclusivity(topic_word, top)
    closest, distance = closest_topics(topic_word)
    has_other = closest >= 0
    return [{"topic": k, "prevalence": float(prevalence[k]), "exclusivity": float(exclusive[k]),
             "umass": _nullable(umass, k), "npmi": float(npmi[k]),
             "closest_topic": int(closest[k]) if has_other[k] else None,
             "hellinger": float(distance[k]) if has_other[k] else None,
             "near_duplicate": bool(has_other[k] and distance[k] < DUPLICATE_HELLINGER),
             "top_words": names[k]}
            for k in range(topic_word.shape[0])]


def evaluate(lda, X_heldout, X_train=None, top_n=10, reference=None, vocab=None):
    """Every metric of this module for a fitted LDA, as a JSON-serialisable dict.

    X_heldout: documents the model was not fitted on (the held-out bound, document completion and,
    unless reference is given, the NPMI reference corpus); X_train: the training documents, for
    UMass (None: no UMass); vocab: V terms, to name the top words (else their indices).
    """
    if top_n < 2:
        raise ValueError(f"coherence needs top_n >= 2 words per topic, got {top_n}")
    topic_word = lda.topic_word_
    n_words = topic_word.shape[1]
    if vocab is not None:
        check_vocabulary_size(vocab, n_words)
    X_heldout = _checked_counts(X_heldout, n_words, "the held-out corpus")
    top = top_words(topic_word, top_n)
    umass = None if X_train is None else umass_coherence(
        top, _checked_counts(X_train, n_words, "the training corpus"))
    reference_name = "held-out" if reference is None else "reference"
    npmi = npmi_coherence(top, X_heldout if reference is None else
                          _checked_counts(reference, n_words, "the reference corpus"))
    names = [[str(vocab[w]) if vocab is not None else int(w) for w in row] for row in top]
    prevalence, prevalence_source = topic_prevalence(lda, X_heldout)
    return {
        "model": {"topics": topic_word.shape[0], "terms": topic_word.shape[1]},
        "heldout_bound": heldout_bound(lda, X_heldout),
        "document_completion": document_completion(lda, X_heldout),
        "coherence": {
            "top_n": int(top.shape[1]),
            "umass": {"mean": None if umass is None else float(umass.mean()), "corpus": "training",
                      "definition": UMASS_DEFINITION},
            "npmi": {"mean": float(npmi.mean()), "corpus": reference_name,
                     "definition": NPMI_DEFINITION.format(corpus=reference_name)},
        },
        "topics": _topic_rows(topic_word, top, prevalence, umass, npmi, names),
        "topic_definitions": {
            "prevalence": PREVALENCE_DEFINITION[prevalence_source],
            "exclusivity": EXCLUSIVITY_DEFINITION,
            "closest_topic": CLOSEST_DEFINITION.format(threshold=DUPLICATE_HELLINGER),
        },
    }


def _number(value, spec):
    return "-" if value is None else format(value, spec)


def _summary_lines(report):
    bound, completion, coherence = (report["heldout_bound"], report["document_completion"],
                                    report["coherence"])
    umass, npmi = coherence["umass"], coherence["npmi"]
    return [
        f"held-out bound       {bound['bound_per_token']:10.4f} nats/token  perplexity "
        f"{bound['perplexity']:10.1f}  ({bound['documents']} documents, {bound['tokens']:.0f} tokens, "
        f"{bound['unseen_word_tokens']:.0f} of words no topic uses)",
        f"document completion  {completion['log_likelihood_per_token']:10.4f} nats/token  perplexity "
        f"{completion['perplexity']:10.1f}  ({completion['scored_tokens']:.0f} tokens scored)",
        f"UMass coherence      {_number(umass['mean'], '10.4f'):>10}  mean over topics, top "
        f"{coherence['top_n']} words, {umass['corpus']} corpus",
        f"NPMI coherence       {npmi['mean']:10.4f}  mean over topics, top "
        f"{coherence['top_n']} words, {npmi['corpus']} corpus",
    ]


def _topic_lines(report, n_words=6):
    lines = [f"{'topic':>5} {'share':>6} {'excl':>5} {'umass':>8} {'npmi':>6} {'closest':>7} "
             f"{'hellinger':>9}  top words"]
    for t in report["topics"]:
        flag = "*" if t["near_duplicate"] else " "
        words = " ".join(str(w) for w in t["top_words"][:n_words])
        lines.append(f"{t['topic']:>5} {t['prevalence']:6.3f} {t['exclusivity']:5.2f} "
                     f"{_number(t['umass'], '8.2f'):>8} {t['npmi']:6.3f} "
                     f"{_number(t['closest_topic'], 'd'):>7} {_number(t['hellinger'], '8.3f'):>8}{flag}"
                     f"  {words}")
    return lines


def _definition_lines(report):
    definitions = {"held-out bound": report["heldout_bound"]["definition"],
                   "document completion": report["document_completion"]["definition"],
                   "umass": report["coherence"]["umass"]["definition"],
                   "npmi": report["coherence"]["npmi"]["definition"],
                   **{name.replace("_", " "): text for name, text in report["topic_definitions"].items()}}
    return [f"  {name}: {text}" for name, text in definitions.items()]


def format_table(report):
    """The report of evaluate as a plain-text table: summary, one row per topic, then definitions.

    A '*' after the Hellinger distance marks a near-duplicate topic.
    """
    return "\n".join(_summary_lines(report) + [""] + _topic_lines(report)
                     + ["", "definitions:"] + _definition_lines(report)) + "\n"
