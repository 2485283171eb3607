"""Bag-of-words corpora parsed straight into CSR arrays: LDA-C, UCI bag-of-words, Matrix Market
and .npz, each with a vocabulary of one term per line.

The text formats are parsed by the numba kernels of _parse.py, chunk by chunk, into arrays
allocated once at their final size (LDA-C: a first pass counts the pairs; UCI and Matrix Market:
the header says how many entries follow), so no second copy of the corpus is ever held. When a
kernel stops at a line, the functions named *_problem say in words what is wrong with it.
"""

import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ldaem import _parse
from ldaem.errors import CorpusError
from ldaem.fileio import open_binary
from ldaem.rawtext import decode

FORMAT_NAMES = {"ldac": "LDA-C", "uci": "UCI bag-of-words", "mm": "Matrix Market", "npz": ".npz"}
UCI_NAME = re.compile(r"^docword\.(.+)\.txt$")
_CHUNK = 1 << 23
_NATURAL = re.compile(r"[0-9]+\Z")
INTEGER, REAL, PATTERN = 0, 1, 2           # value kinds of parse_triples
_MM_FIELDS = {"integer": INTEGER, "real": REAL, "double": REAL, "pattern": PATTERN}


def load_bag_of_words(path, format, vocab_path=None, fixed_vocab=None, encoding="utf-8", errors="strict"):
    """(X, vocab, names, oov_tokens) of a bag-of-words corpus.

    The vocabulary is read from vocab_path, else from inside an .npz, else from the file beside
    the corpus (vocab_beside); failing those, the model's fixed_vocab is the one the term ids
    index. With fixed_vocab and a vocabulary of its own, the corpus's columns are mapped onto
    fixed_vocab by term, and the tokens of other terms dropped and counted. names: None when the
    documents are named by their number.
    """
    names = None
    if format == "npz":
        X, inside, names = _read_npz(path)
        vocab, source = ((inside, str(path)) if vocab_path is None and inside is not None else
                         vocabulary_of(path, format, vocab_path, fixed_vocab, encoding, errors))
        _check_npz(path, X, vocab, names, source)
    else:
        vocab, source = vocabulary_of(path, format, vocab_path, fixed_vocab, encoding, errors)
        reading = Reading(Path(path), len(vocab), source, vocab is fixed_vocab, encoding)
        X = {"ldac": _read_ldac, "uci": _read_uci, "mm": _read_mm}[format](reading)
    if fixed_vocab is None or vocab is fixed_vocab:
        return X, vocab, names, 0
    X, oov = restrict_to_vocab(X, vocab, fixed_vocab)
    return X, fixed_vocab, names, oov


def vocab_beside(path, format):
    """Where a corpus file's vocabulary is looked for, and written by convert: vocab.NAME.txt
    beside a UCI docword.NAME.txt, else PATH.vocab (gensim's convention: x.ldac.gz ->
    x.ldac.vocab.gz)."""
    path = Path(path)
    gz = path.name.endswith(".gz")
    name = path.name[:-3] if gz else path.name
    uci = UCI_NAME.match(name)
    if format == "uci" and uci:
        return path.with_name(f"vocab.{uci.group(1)}.txt")
    return path.with_name(name + ".vocab" + (".gz" if gz else ""))


def read_vocab(path, encoding="utf-8", errors="strict"):
    """A vocabulary file: one term per line, no blanks, no repeats."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such vocabulary file")
    with open_binary(path) as f:
        text = decode(f.read(), path, encoding, errors)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    terms = [line.strip() for line in lines]
    if not terms:
        raise CorpusError(f"{path}: the vocabulary file is empty")
    if len(dict.fromkeys(terms)) < len(terms) or not all(terms) or "\x00" in text:
        seen = {}
        for lineno, term in enumerate(terms, 1):
            if not term:
                raise CorpusError(f"{path}:{lineno}: empty line in a vocabulary file (one term per line)")
            if "\x00" in term:
                raise CorpusError(f"{path}:{lineno}: a term holds a NUL character")
            if term in seen:
                raise CorpusError(f"{path}:{lineno}: term {term!r} repeats line {seen[term]}")
            seen[term] = lineno
    return np.array(terms, dtype=str)


def restrict_to_vocab(X, vocab, fixed_vocab):
    """(X with its columns mapped onto fixed_vocab by term, tokens of terms outside it); X's
    arrays are reused."""
    if len(vocab) == len(fixed_vocab) and np.array_equal(vocab, fixed_vocab):
        return X, 0
    position = {term: i for i, term in enumerate(np.asarray(fixed_vocab).tolist())}
    column = np.array([position.get(term, -1) for term in np.asarray(vocab).tolist()], dtype=np.int64)
    n_tokens = X.data.sum()
    nnz = _parse.remap_columns(X.indptr, X.indices, X.data, column)
    Y = sp.csr_matrix((X.data[:nnz], X.indices[:nnz], X.indptr), shape=(X.shape[0], len(fixed_vocab)))
    Y.sort_indices()
    return Y, int(n_tokens - Y.data.sum())


def vocabulary_of(path, format, vocab_path, fixed_vocab, encoding, errors):
    """(vocabulary, where it comes from) of a bag-of-words corpus."""
    if vocab_path is None:
        beside = vocab_beside(path, format)
        if beside.is_file():
            vocab_path = beside
        elif fixed_vocab is not None:
            return fixed_vocab, "the model"
        else:
            raise CorpusError(f"{path}: {FORMAT_NAMES[format]} input needs its vocabulary file "
                              f"(--vocab, one term per line)")
    return read_vocab(vocab_path, encoding, errors), str(vocab_path)


def canonical_csr(X):
    """X with sorted column indices, no repeated and no explicit zero entries (in place)."""
    X.sum_duplicates()
    X.eliminate_zeros()
    return X


def index_dtype(n):
    return np.int32 if n < 2**31 else np.int64


@dataclass(frozen=True)
class Reading:
    """A bag-of-words file being read: its vocabulary size, where the vocabulary comes from (for
    messages), whether it is the model's (then the corpus may use fewer words than it has), and
    the encoding (a byte it cannot decode is reported as such)."""

    path: Path
    n_terms: int
    source: str
    vocab_is_model: bool
    encoding: str


# ---- LDA-C -------------------------------------------------------------------------------------

def _read_ldac(reading):
    pairs, newlines = _count_bytes(reading.path, b":", b"\n")
    index = index_dtype(pairs)
    indptr = np.zeros(newlines + 2, dtype=index)
    indices = np.empty(pairs, dtype=index)
    counts = np.empty(pairs, dtype=np.float64)
    row = nnz = 0
    with open_binary(reading.path) as f:
        for chunk, first_line, offset in read_chunks(f):
            row, nnz, bad = _parse.parse_ldac(chunk, reading.n_terms, indptr, indices, counts, row, nnz)
            if bad >= 0:
                raise bad_line(reading, chunk, bad, first_line, offset, lambda line: ldac_problem(
                    line, reading.n_terms, reading.source))
    X = sp.csr_matrix((counts[:nnz], indices[:nnz], indptr[:row + 1]), shape=(row, reading.n_terms))
    return canonical_csr(X)


def natural_value(text):
    """The value of a string of decimal digits, capped at MAX_NUMBER + 1 (int() refuses strings
    of 4,300 digits and more, and nothing that large is a valid count, id or size)."""
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(_parse.MAX_NUMBER)) else _parse.MAX_NUMBER + 1


def _shown(text, limit=40):
    """text for an error message, shortened when it is very long (a number of thousands of digits)."""
    return text if len(text) <= limit else f"{text[:limit // 2]}...({len(text)} characters)"


def ldac_problem(line, n_terms, source):
    """What is wrong with an LDA-C line `N id:count ...`, or None."""
    fields = line.split()
    if not fields:
        return "empty line (an empty document is written 0)"
    if not _NATURAL.match(fields[0]):
        return f"expected the number of distinct terms, found {_shown(fields[0])!r}"
    if natural_value(fields[0]) != len(fields) - 1:
        return f"says {_shown(fields[0])} terms but has {len(fields) - 1} id:count pairs"
    for pair in fields[1:]:
        term, colon, count = pair.partition(":")
        if not (colon and _NATURAL.match(term) and _NATURAL.match(count)):
            return f"{_shown(pair)!r} is not id:count with non-negative integers"
        if natural_value(count) > _parse.MAX_NUMBER:
            return f"count {_shown(count)} is too large"
        if natural_value(term) >= n_terms:
            return f"term id {_shown(term)} is beyond the {n_terms} terms of {source}"
    return None


def _count_problem(text, decimals):
    """What is wrong with text as a count (a natural number; with decimals, a decimal whose value
    is whole, as Matrix Market `real` files may write them), or None."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return f"count {_shown(text)!r} is not a number"
    if not value.is_finite():
        return f"count {_shown(text)!r} is not a number"
    if value < 0:
        return f"count {_shown(text)} is negative"
    if value != value.to_integral_value():
        return f"count {_shown(text)} is not a whole number"
    if value > _parse.MAX_NUMBER:
        return f"count {_shown(text)} is too large"
    if not (decimals or _NATURAL.match(text)):
        return f"count {_shown(text)!r} is not written as a plain integer"
    return None


# ---- UCI bag-of-words and Matrix Market --------------------------------------------------------

@dataclass(frozen=True)
class _Header:
    """The sizes a coordinate file announces, and the lines that announce them."""

    n_docs: int
    n_words: int
    nnz: int
    docs_line: int
    words_line: int
    nnz_line: int


def _read_uci(reading):
    with open_binary(reading.path) as f:
        header = uci_header(reading.path, f)
        return _read_entries(reading, f, header, INTEGER)


def uci_header(path, f):
    """D, W and NNZ, one per line, at the top of a UCI docword file."""
    values = []
    for lineno, meaning in enumerate(("documents D", "words W", "entries NNZ"), 1):
        raw = f.readline()
        if not raw and lineno == 1:
            raise CorpusError(f"{path}: holds no documents (an empty file)")
        text = raw.decode("ascii", "replace").strip()
        if not _NATURAL.match(text):
            raise CorpusError(f"{path}:{lineno}: expected the number of {meaning} (the UCI header "
                              f"is D, W and NNZ, one per line), found {_shown(text)!r}")
        values.append(_header_size(path, lineno, text))
    return _Header(*values, docs_line=1, words_line=2, nnz_line=3)


def _read_mm(reading):
    with open_binary(reading.path) as f:
        kind, header = mm_header(reading.path, f)
        return _read_entries(reading, f, header, kind)


def mm_header(path, f):
    """(value kind, sizes) of a Matrix Market file: its banner, comments, and the line `M N NNZ`."""
    banner = f.readline().decode("ascii", "replace").split()
    if len(banner) != 5 or banner[0] != "%%MatrixMarket" or banner[1].lower() != "matrix":
        raise CorpusError(f"{path}:1: not a Matrix Market file (expected "
                          f"'%%MatrixMarket matrix coordinate integer general')")
    layout, field, symmetry = (word.lower() for word in banner[2:])
    if layout != "coordinate":
        raise CorpusError(f"{path}:1: a dense ({layout}) Matrix Market file; a corpus is written "
                          f"in the sparse coordinate layout")
    if field not in _MM_FIELDS:
        raise CorpusError(f"{path}:1: {field} values; counts must be integer, real or pattern")
    if symmetry != "general":
        raise CorpusError(f"{path}:1: a {symmetry} matrix; a document-term matrix is general")
    lineno = 1
    for raw in f:
        lineno += 1
        text = raw.decode("ascii", "replace").strip()
        if text and not text.startswith("%"):
            sizes = text.split()
            if len(sizes) != 3 or not all(_NATURAL.match(size) for size in sizes):
                raise CorpusError(f"{path}:{lineno}: expected the sizes 'documents words entries', "
                                  f"found {_shown(text)!r}")
            sizes = [_header_size(path, lineno, size) for size in sizes]
            return _MM_FIELDS[field], _Header(*sizes, lineno, lineno, lineno)
    raise CorpusError(f"{path}: holds no documents (no size line after the banner)")


def _header_size(path, lineno, text):
    value = natural_value(text)
    if value > _parse.MAX_NUMBER:
        raise CorpusError(f"{path}:{lineno}: the size {_shown(text)} is too large")
    return value


def _read_entries(reading, f, header, kind):
    """The CSR matrix of the `document word [count]` lines that follow a header in f."""
    path, n_terms = reading.path, reading.n_terms
    check_header_words(reading, header)
    index = index_dtype(max(header.nnz, header.n_docs + 1))
    rows = np.empty(header.nnz, dtype=index)
    cols = np.empty(header.nnz, dtype=index)
    counts = np.empty(header.nnz, dtype=np.float64)
    nnz = 0
    n_cols = min(header.n_words, n_terms)
    for chunk, first_line, offset in read_chunks(f, header.nnz_line + 1, f.tell()):
        nnz, bad = _parse.parse_triples(chunk, kind, header.n_docs, n_cols, rows, cols, counts, nnz)
        if bad >= 0:
            raise bad_line(reading, chunk, bad, first_line, offset, lambda line: entry_problem(
                line, kind, header, n_terms, reading.source, full=nnz == header.nnz))
    if nnz != header.nnz:
        raise CorpusError(f"{path}:{header.nnz_line}: the header says {header.nnz} entries but "
                          f"the file has {nnz}")
    return csr_from_entries(rows, cols, counts, (header.n_docs, n_terms))


def check_header_words(reading, header):
    """Fail unless the header's word count W is the vocabulary's size (or the vocabulary is the
    model's, which the corpus may use only part of)."""
    if header.n_words != reading.n_terms and not reading.vocab_is_model:
        raise CorpusError(f"{reading.path}:{header.words_line}: the header says {header.n_words} "
                          f"words but {reading.source} has {reading.n_terms} terms")


def entry_problem(line, kind, header, n_terms, source, full):
    """What is wrong with a line `document word [count]` of a UCI or Matrix Market file, or None."""
    fields = line.split()
    expected = "document word" if kind == PATTERN else "document word count"
    if len(fields) != len(expected.split()):
        return f"expected {len(expected.split())} numbers '{expected}', found {line.strip()!r}"
    for what, text in zip(("document", "word"), fields):
        if not _NATURAL.match(text):
            return f"{what} id {_shown(text)!r} is not a positive integer"
        if natural_value(text) == 0:
            return f"{what} id 0: ids are 1-based"
    doc, word = natural_value(fields[0]), natural_value(fields[1])
    if doc > header.n_docs:
        return f"document id {_shown(fields[0])} is beyond the {header.n_docs} documents of the header (line {header.docs_line})"
    if word > header.n_words:
        return f"word id {_shown(fields[1])} is beyond the {header.n_words} words of the header (line {header.words_line})"
    if word > n_terms:
        return f"word id {_shown(fields[1])} is beyond the {n_terms} terms of {source}"
    if kind != PATTERN:
        problem = _count_problem(fields[2], decimals=kind == REAL)
        if problem:
            return problem
    if full:
        return f"one entry more than the {header.nnz} of the header (line {header.nnz_line})"
    return None


def csr_from_entries(rows, cols, counts, shape):
    """CSR from 0-based (row, column, count) entries; without a copy when the rows are in order."""
    if rows.size and (rows[1:] < rows[:-1]).any():
        return canonical_csr(sp.coo_matrix((counts, (rows, cols)), shape=shape).tocsr())
    indptr = np.searchsorted(rows, np.arange(shape[0] + 1, dtype=rows.dtype))    # no copy of rows
    del rows
    return canonical_csr(sp.csr_matrix((counts, cols, indptr), shape=shape))


# ---- .npz ----------------------------------------------------------------------------------------

def _read_npz(path):
    """(X, vocab or None, names or None) of an .npz written by scipy.sparse.save_npz or convert."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not {"data", "indices", "indptr", "shape"} <= set(npz.files) and "row" not in npz.files:
                raise CorpusError(f"{path}: not a sparse document-term matrix (an .npz as "
                                  f"scipy.sparse.save_npz writes it)")
            vocab = npz["vocab"].astype(str) if "vocab" in npz.files else None
            names = npz["names"].astype(str).tolist() if "names" in npz.files else None
        X = sp.csr_matrix(sp.load_npz(path))
        X.check_format(full_check=True)
    except CorpusError:
        raise
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise CorpusError(f"{path}: not a readable sparse-matrix .npz ({e})") from None
    return X, vocab, names


def _check_npz(path, X, vocab, names, source):
    if X.shape[1] != len(vocab):
        raise CorpusError(f"{path}: the matrix has {X.shape[1]} columns but {source} has {len(vocab)} terms")
    if names is not None and len(names) != X.shape[0]:
        raise CorpusError(f"{path}: {len(names)} names for {X.shape[0]} documents")
    bad = ~(np.isfinite(X.data) & (X.data >= 0) & (X.data == np.round(X.data)))
    if bad.any():
        entry = int(np.argmax(bad))
        doc = int(np.searchsorted(X.indptr, entry, side="right")) - 1
        raise CorpusError(f"{path}: document {doc + 1}, term {X.indices[entry]}: count "
                          f"{float(X.data[entry])!r} is not a non-negative whole number")
    canonical_csr(X)


# ---- reading in chunks -------------------------------------------------------------------------

def _count_bytes(path, *needles):
    """How often each byte string occurs in the (decompressed) file."""
    totals = [0] * len(needles)
    with open_binary(path) as f:
        while block := f.read(_CHUNK):
            for k, needle in enumerate(needles):
                totals[k] += block.count(needle)
    return totals


def read_chunks(f, first_line=1, offset=0, size=_CHUNK):
    """(uint8 array of whole lines, number of its first line, its offset in the file) from the
    binary file f, to its end, read size bytes at a time. Blank lines at the end of a chunk are
    carried into the next one, so that a kernel that finds a blank line followed by nothing but
    blank lines is at the end of the file."""
    rest, line = b"", first_line
    while block := f.read(size):
        block = rest + block if rest else block
        content = len(block[:block.rfind(b"\n") + 1].rstrip())
        if content == 0:
            rest = block
            continue
        end = block.find(b"\n", content) + 1
        yield np.frombuffer(block, dtype=np.uint8, count=end), line, offset
        line += block.count(b"\n", 0, end)
        offset += end
        rest = block[end:]
    if rest:
        yield np.frombuffer(rest, dtype=np.uint8), line, offset


def bad_line(reading, chunk, start, first_line, offset, problem):
    """The CorpusError for the line at chunk[start:]: PATH:LINE: what is wrong with it, or which
    byte is not valid in the encoding."""
    lineno = first_line + int(np.count_nonzero(chunk[:start] == 10))
    newline = np.flatnonzero(chunk[start:] == 10)
    raw = chunk[start:start + int(newline[0]) if newline.size else chunk.size].tobytes()
    line = decode(raw, reading.path, reading.encoding, lineno=lineno, offset=offset + start,
                  replaceable=False).rstrip("\r")
    return CorpusError(f"{reading.path}:{lineno}: {problem(line) or f'cannot read {line!r}'}")
