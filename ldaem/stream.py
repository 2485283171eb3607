"""Streaming a corpus from disk minibatch by minibatch (online EM on corpora that do not fit).

stream_corpus gives a CorpusStream: its vocabulary and number of documents, found by a cheap first
pass, and, each time it is iterated, CSR matrices of at most batch_size documents in file order,
each built from only that many documents read from the file. Memory is bounded by a minibatch (and
a read buffer), never by the corpus. The batches, stacked, are exactly load_corpus's matrix, and a
malformed line fails with the same `PATH:LINE: message` as load_corpus, when its batch is read.

- LDA-C: batch_size lines at a time, parsed by the numba kernel of _parse.py.
- UCI bag-of-words and Matrix Market: the header's D is the number of documents; the entries are
  read in chunks and grouped by document id, which must not go backwards (files are written
  sorted by document; an unsorted one is an error naming the line).
- Raw text (text, dir, jsonl, csv): a first pass counts each term's documents and tokens and
  fixes the vocabulary by TextSettings' rules (as load_corpus does), unless a vocabulary file is
  given; a second pass counts each batch against it.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ldaem import _parse, rawtext
from ldaem.bagofwords import (
    INTEGER, Reading, bad_line, canonical_csr, check_header_words, csr_from_entries, entry_problem,
    index_dtype, ldac_problem, mm_header, read_chunks, read_vocab, uci_header, vocabulary_of)
from ldaem.corpus import (
    RAW_TEXT_FORMATS, TextSettings, checked_format, count_documents, known_columns, pruned_terms,
    raw_documents)
from ldaem.errors import CorpusError, unreadable_is_corpus_error
from ldaem.fileio import open_binary

__all__ = ["CorpusStream", "STREAM_FORMATS", "fit_online_streaming", "stream_corpus"]

STREAM_FORMATS = ("ldac", "uci", "mm") + RAW_TEXT_FORMATS
_ENTRY_CHUNK = 1 << 20          # bytes of UCI / Matrix Market entries parsed at a time
_BLOCK = 1 << 20                # bytes read at a time when counting LDA-C documents


@dataclass
class CorpusStream:
    """A corpus read from disk batch by batch: iterating it (any number of times) reads the file
    again and yields CSR matrices (float64 counts) of at most batch_size documents, in order."""

    path: str
    format: str
    vocab: np.ndarray
    n_documents: int
    batch_size: int
    batches: Callable = field(repr=False)         # () -> iterator of CSR matrices
    text_settings: dict | None = None

    def __iter__(self):
        with unreadable_is_corpus_error(self.path):
            yield from self.batches()


def stream_corpus(path, batch_size, format=None, vocab=None, text_settings=None, encoding="utf-8",
                  *, encoding_errors="strict", text_field="text", id_field=None,
                  doc_separator=None):
    """A CorpusStream of the corpus at path, in batches of batch_size documents.

    The arguments mean what they mean to load_corpus; vocab is also accepted for raw text, where
    it fixes the vocabulary instead of the first pass (terms outside it are dropped).
    """
    path = Path(path)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, not {batch_size!r}")
    format = checked_format(path, format)
    if format not in STREAM_FORMATS:
        raise CorpusError(f"{path}: the {format} format cannot be streamed (streamed: "
                          f"{', '.join(STREAM_FORMATS)}); load it whole instead")
    rawtext.check_encoding(encoding, encoding_errors)
    with unreadable_is_corpus_error(path):
        stream = _stream(path, format, batch_size, vocab, text_settings, encoding, encoding_errors,
                         text_field, id_field, doc_separator)
    if stream.n_documents == 0:
        raise CorpusError(f"{path}: holds no documents")
    return stream


def _stream(path, format, batch_size, vocab, text_settings, encoding, encoding_errors, text_field,
            id_field, doc_separator):
    if format in RAW_TEXT_FORMATS:
        stream = _text_stream(path, format, batch_size, vocab, text_settings or TextSettings(),
                              lambda: raw_documents(path, format, encoding, encoding_errors,
                                                     text_field, id_field, doc_separator),
                              encoding, encoding_errors)
    else:
        terms, source = vocabulary_of(path, format, vocab, None, encoding, encoding_errors)
        reading = Reading(path, len(terms), source, False, encoding)
        stream = _bag_of_words_stream(reading, format, terms, batch_size)
    return stream


def fit_online_streaming(lda, stream, passes):
    """Fit lda (learning_method='online') by `passes` passes of online EM over the stream, one
    partial_fit per streamed batch; returns lda.

    The stream's batch_size must be a multiple of lda.batch_size: then the updates are those of
    lda.fit on the whole matrix (with total_samples = the stream's documents), bit for bit.
    """
    if stream.batch_size % lda.batch_size:
        raise ValueError(f"the stream's batches of {stream.batch_size} documents must be a "
                         f"multiple of the model's batch_size {lda.batch_size}")
    lda.total_samples = stream.n_documents
    first_epoch = lda.n_iter_ if hasattr(lda, "components_") else 0
    for epoch in range(first_epoch, first_epoch + passes):
        for batch in stream:
            if hasattr(lda, "components_"):
                lda.n_iter_ = epoch       # partial_fit logs its updates under epoch n_iter_ + 1
            lda.partial_fit(batch)
            if lda.stopped_:
                return lda
    return lda


# ---- bag-of-words formats ----------------------------------------------------------------------

def _bag_of_words_stream(reading, format, terms, batch_size):
    if format == "ldac":
        n_documents = _count_ldac_documents(reading.path)
        batches = lambda: _ldac_batches(reading, batch_size)                     # noqa: E731
    else:
        with open_binary(reading.path) as f:
            kind, header = _entries_header(format, reading.path, f)
        check_header_words(reading, header)
        n_documents = header.n_docs
        batches = lambda: _entry_batches(reading, format, batch_size)            # noqa: E731
    return CorpusStream(str(reading.path), format, terms, n_documents, batch_size, batches)


def _count_ldac_documents(path):
    """The lines of an LDA-C file up to its last one that is not blank (blank lines elsewhere
    are errors that reading the batches reports)."""
    newlines, documents = 0, 0
    with open_binary(path) as f:
        while block := f.read(_BLOCK):
            content = len(block.rstrip())
            if content:
                documents = newlines + block.count(b"\n", 0, content) + 1
            newlines += block.count(b"\n")
    return documents


def _ldac_batches(reading, batch_size):
    """CSR matrices of batch_size LDA-C lines at a time."""
    with open_binary(reading.path) as f:
        for buf, first_line, offset in _line_groups(f, batch_size):
            yield _parse_ldac_lines(reading, buf, first_line, offset)


def _line_groups(f, n_lines):
    """(uint8 array of up to n_lines whole lines that are not blank, and the blank lines before
    them; number of its first line; its offset in the file) from the binary file f, to its end.
    Blank lines at the end of a group are carried into the next one, so that a blank line
    followed by a document is seen as such, and blank lines at the end of the file are dropped."""
    carried, line, offset = [], 1, 0
    while lines := list(islice(f, n_lines)):
        lines = carried + lines
        content = len(lines)
        while content and not lines[content - 1].strip():
            content -= 1
        carried = lines[content:]
        if content:
            group = b"".join(lines[:content])
            yield np.frombuffer(group, dtype=np.uint8), line, offset
            line += content
            offset += len(group)


def _parse_ldac_lines(reading, buf, first_line, offset):
    """The CSR matrix of whole LDA-C lines in buf (as load_corpus reads them)."""
    n_lines = int(np.count_nonzero(buf == 10)) + 1
    pairs = int(np.count_nonzero(buf == 58))
    index = index_dtype(pairs)
    indptr = np.zeros(n_lines + 1, dtype=index)
    indices = np.empty(pairs, dtype=index)
    counts = np.empty(pairs, dtype=np.float64)
    row, nnz, bad = _parse.parse_ldac(buf, reading.n_terms, indptr, indices, counts, 0, 0)
    if bad >= 0:
        raise bad_line(reading, buf, bad, first_line, offset, lambda line: ldac_problem(
            line, reading.n_terms, reading.source))
    return canonical_csr(sp.csr_matrix((counts[:nnz], indices[:nnz], indptr[:row + 1]),
                                    shape=(row, reading.n_terms)))


def _entries_header(format, path, f):
    """(value kind, header) at the top of a UCI or Matrix Market file; f is left after it."""
    if format == "uci":
        return INTEGER, uci_header(path, f)
    return mm_header(path, f)


def _entry_batches(reading, format, batch_size):
    """CSR matrices of batch_size documents at a time of a UCI or Matrix Market file, whose
    entries are grouped by document: a batch is complete when an entry of a later document is
    read (or the file ends); documents without entries are empty rows, as in load_corpus."""
    with open_binary(reading.path) as f:
        kind, header = _entries_header(format, reading.path, f)
        parsed = _EntryParser(reading, kind, header)
        rows = np.empty(0, dtype=np.int64)
        cols, counts = rows.copy(), np.empty(0)
        start = 0                       # the first document of the batch being gathered
        for chunk, first_line, offset in read_chunks(f, header.nnz_line + 1, f.tell(), _ENTRY_CHUNK):
            more = parsed.entries(chunk, first_line, offset)
            rows, cols, counts = (np.concatenate(pair) for pair in zip((rows, cols, counts), more))
            while rows.size and rows[-1] >= start + batch_size:
                rows, cols, counts, batch = _split_batch(rows, cols, counts, start, batch_size,
                                                         reading.n_terms)
                yield batch
                start += batch_size
        parsed.check_complete()
        while start < header.n_docs:
            size = min(batch_size, header.n_docs - start)
            rows, cols, counts, batch = _split_batch(rows, cols, counts, start, size, reading.n_terms)
            yield batch
            start += size


def _split_batch(rows, cols, counts, start, size, n_terms):
    """(the entries of documents from start + size on, the CSR matrix of documents start to
    start + size) of entries sorted by document."""
    cut = int(np.searchsorted(rows, start + size))
    batch = csr_from_entries(rows[:cut] - start, cols[:cut].copy(), counts[:cut].copy(),
                              (size, n_terms))
    return rows[cut:], cols[cut:], counts[cut:], batch


class _EntryParser:
    """Parses chunks of `document word [count]` lines into 0-based entries, checking what
    load_corpus checks (with its messages) and that the documents never go backwards."""

    def __init__(self, reading, kind, header):
        self.reading, self.kind, self.header = reading, kind, header
        self.n_cols = min(header.n_words, reading.n_terms)
        self.total = 0                   # entries so far
        self.last_row = 0                # the document of the last one

    def entries(self, chunk, first_line, offset):
        """(rows, cols, counts) of the entries of chunk, whole lines starting at first_line."""
        room = self.header.nnz - self.total
        n = min(int(np.count_nonzero(chunk == 10)) + 1, room)
        rows, cols = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        counts = np.empty(n, dtype=np.float64)
        nnz, bad = self._parse(chunk, rows, cols, counts)
        if bad >= 0:
            raise bad_line(self.reading, chunk, bad, first_line, offset, lambda line: entry_problem(
                line, self.kind, self.header, self.reading.n_terms, self.reading.source,
                full=nnz == room))
        rows, cols, counts = rows[:nnz], cols[:nnz], counts[:nnz]
        self._check_order(rows, chunk, first_line, offset)
        self.total += nnz
        self.last_row = int(rows[-1]) if nnz else self.last_row
        return rows, cols, counts

    def _parse(self, chunk, rows, cols, counts):
        return _parse.parse_triples(chunk, self.kind, self.header.n_docs, self.n_cols, rows, cols,
                                    counts, 0)

    def _check_order(self, rows, chunk, first_line, offset):
        """Fail at the first entry whose document comes before the one of the entry before it."""
        before = np.concatenate(([self.last_row], rows[:-1]))
        backwards = np.flatnonzero(rows < before)
        if backwards.size:
            k = int(backwards[0])
            _, bad = self._parse(chunk, np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k))
            raise bad_line(self.reading, chunk, bad, first_line, offset, lambda line: (
                f"document id {rows[k] + 1} comes after document id {before[k] + 1}: streaming "
                f"reads the entries sorted by document (sort the file, or load it whole)"))

    def check_complete(self):
        if self.total != self.header.nnz:
            raise CorpusError(f"{self.reading.path}:{self.header.nnz_line}: the header says "
                              f"{self.header.nnz} entries but the file has {self.total}")


# ---- raw text ----------------------------------------------------------------------------------

def _text_stream(path, format, batch_size, vocab_path, settings, documents, encoding, errors):
    """The CorpusStream of raw text; documents() reads the (name, text) pairs afresh."""
    try:
        analyze = settings.vectorizer().build_analyzer()
    except ValueError as e:
        raise CorpusError(f"{path}: {e}") from None
    if vocab_path is None:
        vocab, n_documents = _text_vocabulary(path, documents(), analyze, settings)
    else:
        vocab, n_documents = read_vocab(vocab_path, encoding, errors), sum(1 for _ in documents())
    columns_of = known_columns({term: i for i, term in enumerate(vocab.tolist())})

    def batches():
        texts = documents()
        while batch := list(islice(texts, batch_size)):
            counts = count_documents((analyze(text) for _, text in batch), columns_of)
            yield counts.matrix(len(vocab))

    return CorpusStream(str(path), format, vocab, n_documents, batch_size, batches,
                        text_settings=asdict(settings))


def _text_vocabulary(path, texts, analyze, settings):
    """(vocabulary, number of documents) of (name, text) pairs: the terms that CountVectorizer's
    rules keep, from each term's document and token counts (not the documents' counts)."""
    document_frequency, term_frequency, n_documents = Counter(), Counter(), 0
    for _, text in texts:
        counts = Counter(analyze(text))
        document_frequency.update(counts.keys())
        term_frequency.update(counts)
        n_documents += 1
    if n_documents == 0:
        raise CorpusError(f"{path}: holds no documents")
    if not document_frequency:
        raise CorpusError(f"{path}: no words to count in its {n_documents} documents (only stop "
                          f"words, numbers and one-letter tokens)")
    terms = sorted(document_frequency)
    df = np.fromiter(map(document_frequency.__getitem__, terms), dtype=np.int64, count=len(terms))
    keep = pruned_terms(path, df, lambda: np.fromiter(
        map(term_frequency.__getitem__, terms), dtype=np.float64, count=len(terms)),
        n_documents, settings)
    return np.array([term for term, kept in zip(terms, keep) if kept], dtype=str), n_documents
