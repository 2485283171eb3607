"""Loading corpora (DESIGN.md, "Contracts"): every format becomes a CSR document-term matrix, a
vocabulary and the documents' names, through the one function load_corpus.

Raw text (text, dir, jsonl, csv; rawtext.py) is streamed, one document at a time, through the
analyzer of scikit-learn's CountVectorizer and counted by its rules into compact arrays;
bag-of-words formats (ldac, uci, mm, npz; bagofwords.py) are parsed straight into CSR arrays.
Neither ever holds a second copy of the corpus.
"""

import logging
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import repeat
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ldaem import _parse, rawtext
from ldaem.bagofwords import UCI_NAME, load_bag_of_words, read_vocab, vocab_beside
from ldaem.errors import CorpusError, unreadable_is_corpus_error
from ldaem.fileio import open_binary

log = logging.getLogger(__name__)

RAW_TEXT_FORMATS = ("text", "dir", "jsonl", "csv")
BAG_OF_WORDS_FORMATS = ("ldac", "uci", "mm", "npz")
FORMATS = RAW_TEXT_FORMATS + BAG_OF_WORDS_FORMATS
_EXTENSIONS = {".dat": "ldac", ".ldac": "ldac", ".mtx": "mm", ".mm": "mm", ".jsonl": "jsonl",
               ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".npz": "npz", ".txt": "text"}
_LDAC_LINE = re.compile(r"^\s*\d+(\s+\d+:\d+)*\s*$")
_NATURALS = re.compile(r"^\s*\d+(\s+\d+)*\s*$")

# Words of two or more letters: numbers, underscores and one-letter tokens carry no topic.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"

__all__ = ["Corpus", "DocumentNumbers", "FORMATS", "TextSettings", "detect_format", "load_corpus",
           "read_vocab", "vocab_beside"]


@dataclass(frozen=True)
class TextSettings:
    """How raw text becomes counts (scikit-learn's CountVectorizer); stored in the model so that
    `infer` tokenises new text exactly as `fit` did."""

    lowercase: bool = True
    token_pattern: str = TOKEN_PATTERN
    stop_words: str | list | None = "english"
    min_df: float = 1
    max_df: float = 1.0
    max_features: int | None = None

    def vectorizer(self):
        from sklearn.feature_extraction.text import CountVectorizer
        return CountVectorizer(dtype=np.float64, **asdict(self))


class DocumentNumbers(Sequence):
    """The names '1', '2', ..., 'n' of n documents numbered in order, made on demand: a corpus of
    a million documents does not keep a million strings."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [str(k + 1) for k in range(self.n)[i]]
        return str(range(self.n)[i] + 1)

    def __eq__(self, other):
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __repr__(self):
        return f"DocumentNumbers({self.n})"


@dataclass
class Corpus:
    """A document-term matrix with its vocabulary and document names."""

    X: sp.csr_matrix
    vocab: np.ndarray
    names: Sequence
    path: str
    format: str
    oov_tokens: int = 0            # tokens dropped because the vocabulary does not have them
    text_settings: dict | None = field(default=None)

    @property
    def n_tokens(self):
        return int(self.X.data.sum())

    @property
    def n_empty(self):
        return int((np.diff(self.X.indptr) == 0).sum())

    def describe(self):
        return (f"{self.X.shape[0]} documents, {self.X.shape[1]} terms, {self.n_tokens} tokens"
                + (f", {self.n_empty} empty" if self.n_empty else ""))


def detect_format(path):
    """The corpus format of path: 'dir' for a folder, else by its extension (after .gz), else by
    its first lines."""
    path = Path(path)
    if path.is_dir():
        return "dir"
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if UCI_NAME.match(name):
        return "uci"
    return _EXTENSIONS.get(Path(name).suffix.lower()) or _sniff(path)


def _sniff(path):
    with open_binary(path) as f:
        head = f.read(1 << 16)
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    lines = [line for line in head.decode("utf-8", "replace").splitlines() if line.strip()][:4]
    first = lines[0] if lines else ""
    if first.startswith("%%MatrixMarket"):
        return "mm"
    if (len(lines) == 4 and all(line.strip().isdigit() for line in lines[:3])
            and _NATURALS.match(lines[3]) and len(lines[3].split()) == 3):
        return "uci"
    if _LDAC_LINE.match(first):
        return "ldac"
    if first.lstrip().startswith("{"):
        return "jsonl"
    return "text"


def load_corpus(path, format=None, vocab=None, text_settings=None, fixed_vocab=None,
                encoding="utf-8", *, encoding_errors="strict", text_field="text", id_field=None,
                doc_separator=None):
    """Read a corpus into a Corpus.

    format: one of FORMATS, or None to detect it (detect_format). vocab: the vocabulary file of a
    bag-of-words format (default: the one beside it, see vocab_beside). text_settings:
    TextSettings for raw text. fixed_vocab: the vocabulary of a fitted model; when given, the
    documents are counted against it and terms outside it are dropped and counted (oov_tokens).
    encoding, encoding_errors ('strict', 'replace' or 'ignore'): how text is decoded.
    text_field, id_field: the field (jsonl) or column (csv) holding each document's text and
    name. doc_separator: text and dir formats, documents are separated by lines holding only it.
    """
    path = Path(path)
    format = checked_format(path, format)
    rawtext.check_encoding(encoding, encoding_errors)
    if fixed_vocab is not None:
        fixed_vocab = np.asarray(fixed_vocab, dtype=str)
    with unreadable_is_corpus_error(path):
        corpus = _loaded(path, format, vocab, text_settings, fixed_vocab, encoding, encoding_errors,
                         text_field, id_field, doc_separator)
    log.info("%s: read as %s: %s, %d nonzero counts%s", path, format, corpus.describe(), corpus.X.nnz,
             f"; {corpus.oov_tokens} tokens of terms outside the vocabulary dropped" if corpus.oov_tokens else "")
    return corpus


def _loaded(path, format, vocab, text_settings, fixed_vocab, encoding, encoding_errors, text_field,
            id_field, doc_separator):
    if format in BAG_OF_WORDS_FORMATS:
        X, vocab, names, oov = load_bag_of_words(path, format, vocab, fixed_vocab, encoding,
                                                 encoding_errors)
        corpus = Corpus(X=X, vocab=vocab, names=names or DocumentNumbers(X.shape[0]),
                        path=str(path), format=format, oov_tokens=oov)
    else:
        documents = raw_documents(path, format, encoding, encoding_errors, text_field, id_field,
                                   doc_separator)
        corpus = _count_words(path, format, documents, text_settings or TextSettings(), fixed_vocab)
    if corpus.X.shape[0] == 0:
        raise CorpusError(f"{path}: holds no documents")
    return corpus


def checked_format(path, format=None):
    """The format of the corpus at path (format, or detected), failing clearly when path does
    not exist or is a file where the format reads a folder, or the reverse."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise CorpusError(f"{path}: unknown corpus format {format!r} (known: {', '.join(FORMATS)})")
    if path.is_dir() and format != "dir":
        raise CorpusError(f"{path}: is a folder; the {format} format reads a file (--format dir reads a folder)")
    if format == "dir" and not path.is_dir():
        raise CorpusError(f"{path}: is not a folder (the dir format reads a folder of text files)")
    return format


def known_columns(column):
    """A function giving the columns (column[term]) of the tokens in column, in order, dropping
    the others."""
    return lambda tokens: filter((-1).__ne__, map(column.get, tokens, repeat(-1)))


def raw_documents(path, format, encoding, errors, text_field, id_field, separator):
    """(name, text) pairs of a raw-text corpus, read as they are consumed."""
    if format == "text":
        return rawtext.line_documents(path, encoding, errors, separator)
    if format == "dir":
        return rawtext.folder_documents(path, encoding, errors, separator)
    if format == "jsonl":
        return rawtext.jsonl_documents(path, encoding, errors, text_field, id_field)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return rawtext.csv_documents(path, encoding, errors, text_field, id_field,
                                 delimiter="\t" if name.endswith(".tsv") else ",")


class _Texts:
    """The tokens of each text of (name, text) pairs, one document at a time; keeps their names
    unless they are just their numbers."""

    def __init__(self, documents, analyze):
        self.documents, self.analyze, self.count, self.kept_names = documents, analyze, 0, []

    def __iter__(self):
        for name, text in self.documents:
            self.count += 1
            if name is not None:
                self.kept_names.append(name)
            yield self.analyze(text)

    @property
    def names(self):
        return self.kept_names if self.kept_names else DocumentNumbers(self.count)


def _count_words(path, format, documents, settings, fixed_vocab):
    """The Corpus of raw-text documents, tokenised by CountVectorizer's analyzer with settings and
    counted by CountVectorizer's rules (fit_transform: learn the vocabulary, then prune it by
    min_df, max_df and max_features; or transform against fixed_vocab, counting the tokens
    outside it), straight into compact arrays rather than through its intermediate lists."""
    try:
        analyze = settings.vectorizer().build_analyzer()
    except ValueError as e:
        raise CorpusError(f"{path}: {e}") from None
    texts = _Texts(documents, analyze)
    if fixed_vocab is None:
        vocabulary = defaultdict()
        vocabulary.default_factory = vocabulary.__len__      # a new term gets the next column
        counts = count_documents(texts, lambda tokens: map(vocabulary.__getitem__, tokens))
        vocabulary.default_factory = None                    # no reference cycle keeps it alive
    else:
        column = {term: i for i, term in enumerate(fixed_vocab.tolist())}
        counts = count_documents(texts, known_columns(column))
    if texts.count == 0:
        raise CorpusError(f"{path}: holds no documents")
    oov, vocab = counts.n_tokens - int(counts.counts.sum()), fixed_vocab
    if fixed_vocab is None:
        if not vocabulary:
            raise CorpusError(f"{path}: no words to count in its {texts.count} documents (only stop "
                              f"words, numbers and one-letter tokens)")
        vocab, column = _pruned_vocabulary(path, counts, vocabulary, settings)
        counts.remap(column)
    return Corpus(X=counts.matrix(len(vocab)), vocab=vocab, names=texts.names, path=str(path),
                  format=format, oov_tokens=oov, text_settings=asdict(settings))


class _Counts:
    """Each document's term counts, as CSR arrays grown one document at a time (4 bytes per
    column index and per count, 8 per document)."""

    def __init__(self):
        self._indptr, self._indices, self._counts = array("q", [0]), array("i"), array("i")
        self.n_tokens = 0
        self.nnz = None

    def add(self, columns):
        counter = Counter(columns)
        self._indices.extend(counter.keys())
        self._counts.extend(counter.values())
        self._indptr.append(len(self._indices))

    @property
    def indptr(self):
        return np.frombuffer(self._indptr, dtype=np.int64)

    @property
    def indices(self):
        return np.frombuffer(self._indices, dtype=np.int32)[:self.nnz]

    @property
    def counts(self):
        return np.frombuffer(self._counts, dtype=np.int32)[:self.nnz]

    def remap(self, column):
        """Columns j become column[j]; entries whose new column is -1 are dropped (in place)."""
        self.nnz = _parse.remap_columns(self.indptr, self.indices, self.counts, column)

    def matrix(self, n_columns):
        """The CSR matrix (float64 counts, sorted indices); the arrays are released."""
        data = self.counts.astype(np.float64)
        self._counts = None
        indices = self.indices.copy()
        self._indices = None
        X = sp.csr_matrix((data, indices, self.indptr), shape=(len(self._indptr) - 1, n_columns))
        X.sort_indices()
        return X


def count_documents(documents, columns_of):
    """_Counts of documents (lists of tokens): a document's columns are columns_of(its tokens)."""
    counts = _Counts()
    for tokens in documents:
        counts.n_tokens += len(tokens)
        counts.add(columns_of(tokens))
    return counts


def _pruned_vocabulary(path, counts, vocabulary, settings):
    """(vocabulary, column of each counted term or -1) after CountVectorizer's rules (see
    pruned_terms)."""
    n_docs = len(counts.indptr) - 1
    terms = sorted(vocabulary)
    counted_as = np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.int64, count=len(terms))
    document_frequency = np.bincount(counts.indices, minlength=len(terms))[counted_as]
    term_frequency = lambda: np.bincount(counts.indices, weights=counts.counts,  # noqa: E731
                                         minlength=len(terms))[counted_as]
    keep = pruned_terms(path, document_frequency, term_frequency, n_docs, settings)
    column = np.full(len(terms), -1, dtype=np.int32)
    column[counted_as[keep]] = np.arange(np.count_nonzero(keep), dtype=np.int32)
    return np.array([term for term, kept in zip(terms, keep) if kept], dtype=str), column


def pruned_terms(path, document_frequency, term_frequency, n_docs, settings):
    """Which terms (in sorted order) CountVectorizer's rules keep, as a boolean mask: those in
    fewer than min_df or more than max_df of the n_docs documents dropped, then only the
    max_features most frequent kept (ties broken as CountVectorizer breaks them).
    document_frequency: each term's number of documents; term_frequency: its number of tokens,
    or a function returning them (called only when max_features prunes)."""
    high = settings.max_df if isinstance(settings.max_df, Integral) else settings.max_df * n_docs
    low = settings.min_df if isinstance(settings.min_df, Integral) else settings.min_df * n_docs
    if high < low:
        raise CorpusError(f"{path}: --max-df {settings.max_df} allows fewer documents than "
                          f"--min-df {settings.min_df} asks for ({n_docs} documents)")
    keep = (document_frequency <= high) & (document_frequency >= low)
    if settings.max_features is not None and keep.sum() > settings.max_features:
        tf = term_frequency() if callable(term_frequency) else term_frequency
        top = (-tf[keep]).argsort()[:settings.max_features]
        keep = np.zeros(len(document_frequency), dtype=bool)
        keep[np.flatnonzero((document_frequency <= high) & (document_frequency >= low))[top]] = True
    if not keep.any():
        raise CorpusError(f"{path}: no terms are left in its {n_docs} documents after "
                          f"--min-df {settings.min_df} and --max-df {settings.max_df} "
                          f"(lower --min-df or raise --max-df)")
    return keep
