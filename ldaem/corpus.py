"""Loading corpora (DESIGN.md, "Contracts"): every format becomes a CSR document-term matrix
and a vocabulary, through the one function load_corpus."""

import re
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ldaem.errors import CorpusError
from ldaem.fileio import open_binary

FORMATS = ("text", "ldac")
_LDAC_SUFFIXES = (".dat", ".ldac")
_LDAC_LINE = re.compile(r"^\s*\d+(\s+\d+:\d+)*\s*$")

# Words of two or more letters: numbers, underscores and one-letter tokens carry no topic.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"


@dataclass(frozen=True)
class TextSettings:
    """How raw text becomes counts (scikit-learn's CountVectorizer); stored in the model so that
    `infer` tokenises new text exactly as `fit` did."""

    lowercase: bool = True
    token_pattern: str = TOKEN_PATTERN
    stop_words: str | None = "english"
    min_df: float = 1
    max_df: float = 1.0
    max_features: int | None = None

    def vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import CountVectorizer
        settings = asdict(self)
        if vocabulary is not None:
            settings.update(min_df=1, max_df=1.0, max_features=None)
        return CountVectorizer(vocabulary=vocabulary, dtype=np.float64, **settings)


@dataclass
class Corpus:
    """A document-term matrix with its vocabulary and document names."""

    X: sp.csr_matrix
    vocab: np.ndarray
    names: list
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
    """The corpus format of path: by its extension, else by whether its first line is LDA-C."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(_LDAC_SUFFIXES):
        return "ldac"
    if name.endswith(".txt"):
        return "text"
    for _, line in _decoded_lines(path, "utf-8"):
        if line.strip():
            return "ldac" if _LDAC_LINE.match(line) else "text"
    return "text"


def load_corpus(path, format=None, vocab=None, text_settings=None, fixed_vocab=None,
                encoding="utf-8"):
    """Read a corpus into a Corpus.

    format: one of FORMATS, or None to detect it. vocab: the vocabulary file of a bag-of-words
    format. text_settings: TextSettings for raw text. fixed_vocab: the vocabulary of a fitted model;
    when given, the documents are counted against it and terms outside it are dropped and counted.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, expected a corpus file")
    format = format or detect_format(path)
    if format == "ldac":
        corpus = _load_ldac(path, vocab, fixed_vocab, encoding)
    elif format == "text":
        corpus = _load_text(path, text_settings or TextSettings(), fixed_vocab, encoding)
    else:
        raise CorpusError(f"{path}: unknown corpus format {format!r} (known: {', '.join(FORMATS)})")
    if corpus.X.shape[0] == 0:
        raise CorpusError(f"{path}: holds no documents")
    return corpus


def read_vocab(path, encoding="utf-8"):
    """A vocabulary file: one term per line, no blanks, no repeats."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such vocabulary file")
    terms, seen = [], {}
    for lineno, line in _decoded_lines(path, encoding):
        term = line.strip()
        if not term:
            raise CorpusError(f"{path}:{lineno}: empty line in a vocabulary file (one term per line)")
        if term in seen:
            raise CorpusError(f"{path}:{lineno}: term {term!r} repeats line {seen[term]}")
        seen[term] = lineno
        terms.append(term)
    if not terms:
        raise CorpusError(f"{path}: the vocabulary file is empty")
    return np.array(terms, dtype=str)


def _decoded_lines(path, encoding):
    """(line number, text without its line break) of each line, decoded with a clear error."""
    offset = 0
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise CorpusError(
                    f"{path}:{lineno}: byte 0x{raw[e.start]:02x} at offset {offset + e.start} is not "
                    f"valid {encoding} (choose another with --encoding)") from None
            except LookupError:
                raise CorpusError(f"{path}: unknown encoding {encoding!r}") from None
            offset += len(raw)
            yield lineno, line.rstrip("\r\n")


def _non_blank_lines(path, encoding):
    """Lines of a bag-of-words file; blank lines are allowed only at the end of the file."""
    blank_at = None
    for lineno, line in _decoded_lines(path, encoding):
        if not line.strip():
            blank_at = blank_at or lineno
            continue
        if blank_at is not None:
            raise CorpusError(f"{path}:{blank_at}: empty line (an empty document is written 0)")
        yield lineno, line


def _load_ldac(path, vocab_path, fixed_vocab, encoding):
    if vocab_path is None and fixed_vocab is None:
        raise CorpusError(f"{path}: LDA-C input needs its vocabulary file (--vocab, one term per line)")
    vocab = read_vocab(vocab_path, encoding) if vocab_path is not None else fixed_vocab
    indptr, indices, counts = array("q", [0]), array("q"), array("d")
    for lineno, line in _non_blank_lines(path, encoding):
        fields = line.split()
        where = f"{path}:{lineno}"
        if not fields[0].isdigit():
            raise CorpusError(f"{where}: expected the number of distinct terms, found {fields[0]!r}")
        if int(fields[0]) != len(fields) - 1:
            raise CorpusError(f"{where}: says {fields[0]} terms but has {len(fields) - 1} id:count pairs")
        for pair in fields[1:]:
            term, _, count = pair.partition(":")
            if not (term.isdigit() and count.isdigit()):
                raise CorpusError(f"{where}: {pair!r} is not id:count with non-negative integers")
            term = int(term)
            if term >= len(vocab):
                source = vocab_path if vocab_path is not None else "the model"
                raise CorpusError(f"{where}: term id {term} is beyond the {len(vocab)} terms of {source}")
            indices.append(term)
            counts.append(float(count))
        indptr.append(len(indices))
    X = sp.csr_matrix((np.frombuffer(counts), np.frombuffer(indices, dtype=np.int64),
                       np.frombuffer(indptr, dtype=np.int64)), shape=(len(indptr) - 1, len(vocab)))
    X.sum_duplicates()
    X.eliminate_zeros()
    corpus = Corpus(X=X, vocab=vocab, names=[str(i) for i in range(1, X.shape[0] + 1)],
                    path=str(path), format="ldac")
    if fixed_vocab is not None and vocab_path is not None:
        corpus = _restrict_to_vocab(corpus, fixed_vocab)
    return corpus


def _restrict_to_vocab(corpus, fixed_vocab):
    """Re-index corpus onto fixed_vocab by term; tokens of other terms are dropped and counted."""
    position = {term: i for i, term in enumerate(fixed_vocab)}
    mapping = np.array([position.get(term, -1) for term in corpus.vocab], dtype=np.int64)
    columns = mapping[corpus.X.indices]
    kept = columns >= 0
    rows = np.repeat(np.arange(corpus.X.shape[0]), np.diff(corpus.X.indptr))
    X = sp.csr_matrix((corpus.X.data[kept], (rows[kept], columns[kept])),
                      shape=(corpus.X.shape[0], len(fixed_vocab)))
    return Corpus(X=X, vocab=np.asarray(fixed_vocab), names=corpus.names, path=corpus.path,
                  format=corpus.format, oov_tokens=int(corpus.X.data[~kept].sum()))


def _load_text(path, settings, fixed_vocab, encoding):
    names = []

    def documents():
        for lineno, line in _decoded_lines(path, encoding):
            names.append(str(lineno))
            yield line

    if fixed_vocab is None:
        vectorizer = settings.vectorizer()
        try:
            X = vectorizer.fit_transform(documents())
        except ValueError as e:
            if not names:
                raise CorpusError(f"{path}: holds no documents") from None
            raise CorpusError(f"{path}: {e}") from None
        vocab = vectorizer.get_feature_names_out().astype(str)
        return Corpus(X=sp.csr_matrix(X), vocab=vocab, names=names, path=str(path), format="text",
                      text_settings=asdict(settings))
    analyze = settings.vectorizer().build_analyzer()
    position = {term: i for i, term in enumerate(fixed_vocab)}
    indptr, indices, oov = array("q", [0]), array("q"), 0
    for doc in documents():
        for token in analyze(doc):
            column = position.get(token)
            if column is None:
                oov += 1
            else:
                indices.append(column)
        indptr.append(len(indices))
    indices = np.frombuffer(indices, dtype=np.int64)
    X = sp.csr_matrix((np.ones(indices.size), indices, np.frombuffer(indptr, dtype=np.int64)),
                      shape=(len(names), len(fixed_vocab)))
    X.sum_duplicates()
    return Corpus(X=X, vocab=np.asarray(fixed_vocab), names=names, path=str(path), format="text",
                  oov_tokens=oov, text_settings=asdict(settings))
