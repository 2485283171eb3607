"""Fuzzing the readers and the command line (issue 7): generated corpora and model files, well
formed and damaged, must give a correct result or a clean error, and nothing else.

- load_corpus returns exactly what the bytes say, by small reference readers written here from
  the formats' definitions (CountVectorizer counts raw text), or raises a CorpusError that names
  the file; a bag-of-words file read in tiny chunks gives the same outcome as read whole.
- load_model returns a model that keeps TopicModel's contract, or raises a ModelFileError that
  names the file.
- `ldaem fit`, `infer` and `topics` exit 0 having written their outputs, or exit 1 (2) with one
  "Error: " line on stderr and the working folder as it was.

The last section pins the smallest inputs that broke these contracts: regression tests for the bugs
fixed since, strict xfail tests for those still open.

Profiles: "ci", the default, runs each property on the examples it names, the same ones every run;
LDAEM_HYPOTHESIS_PROFILE=fuzz (`make fuzz`) runs 20 times as many, new ones each run, and keeps
failing examples in .pytest_cache/hypothesis to replay them first.
"""

import contextlib
import csv
import faulthandler
import functools
import gzip
import inspect
import io
import json
import os
import re
import struct
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner, Result
from hypothesis import currently_in_test_context, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.extra import numpy as hnp
from sklearn.feature_extraction.text import CountVectorizer

from ldaem import bagofwords
from ldaem._parse import MAX_NUMBER
from ldaem.cli import main
from ldaem.corpus import Corpus, TextSettings, load_corpus
from ldaem.datasets import load_bundled
from ldaem.errors import CorpusError, LdaemError, ModelFileError
from ldaem.lda import LDA
from ldaem.model import TopicModel, load_model, save_model

settings.register_profile("ci", max_examples=100, derandomize=True, database=None,
                          deadline=timedelta(seconds=5))
settings.register_profile("fuzz", settings.get_profile("ci"), max_examples=2000, derandomize=False,
                          database=DirectoryBasedExampleDatabase(
                              Path(__file__).resolve().parents[1] / ".pytest_cache" / "hypothesis"))
settings.load_profile(os.environ.get("LDAEM_HYPOTHESIS_PROFILE", "ci"))


def examples(n):
    """Settings for a property that runs n examples under "ci" (20 times as many under "fuzz")."""
    return settings(max_examples=n * settings.default.max_examples // 100)


# ---- outcomes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refused:
    """An LdaemError's message: the clean way to refuse bad input."""

    message: str


# Bugs this file found and not yet fixed: bug -> a pattern of the failure 'ExceptionClass: message'
# it causes, where a failure is the exception ldaem raises, the AssertionError of a check below, or
# the exception that an 'internal error' line of the command line names. Each is pinned by a strict
# xfail test at the end of the file; a property lets an example that meets one of the bugs it names
# pass, counting it in the statistics. When a bug's test starts passing, delete its entry and name.
KNOWN_BUGS = {
}


def failure(error):
    """'ExceptionClass: message' of a failure: for a check that found an 'internal error' line,
    that of the exception the line names."""
    internal = re.match(r"internal error: (\w+: .*)", str(error), re.DOTALL)
    if isinstance(error, AssertionError) and internal:
        return internal[1]
    return f"{type(error).__name__}: {error}"


CORPUS_BUGS = ()                                   # the corpus readers' (none known)
MODEL_BUGS = ()                                    # load_model's (none known)


def tolerating(*bugs):
    """A property that passes where it meets one of the known bugs named, counting it as an event."""
    assert set(bugs) <= set(KNOWN_BUGS)

    def decorate(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            try:
                return test(*args, **kwargs)
            except Exception as e:
                bug = next((bug for bug in bugs if re.search(KNOWN_BUGS[bug], failure(e), re.DOTALL)), None)
                if bug is None:
                    raise
                count(f"known bug: {bug}")
        return wrapper
    return decorate


def count(outcome):
    """Count outcome in the statistics of the property under way (the pinned tests have none)."""
    if currently_in_test_context():
        event(outcome)


@contextlib.contextmanager
def watchdog(seconds=120):
    """End the run, printing every thread's stack, if the block hangs: a deadline cannot interrupt
    a numba loop."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def run(call, *args, **kwargs):
    """call's result, or Refused for an LdaemError; any other exception goes on up."""
    with watchdog():
        try:
            return call(*args, **kwargs)
        except LdaemError as e:
            count("refused")
            return Refused(str(e))


@contextlib.contextmanager
def folder_with(files):
    """A fresh temporary folder holding files (name: bytes), as the current folder."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        for name, data in files.items():
            Path(name).write_bytes(data)
        yield Path(folder)


def assert_names_the_file(message, files):
    """message is 'PATH: ...' or 'PATH:LINE: ...' for one of files (name: bytes), LINE within it."""
    match = re.match(r"(.+?)(?::(\d+))?: ", message)
    assert match and match[1] in files, message
    if match[2]:                                      # a missing line is named by where it would be
        assert 1 <= int(match[2]) <= files[match[1]].count(b"\n") + 2, message


# ---- generated corpora ---------------------------------------------------------------------------

COUNTS = st.integers(0, 3) | st.integers(0, MAX_NUMBER)
TERMS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"),
                min_size=1, max_size=6)           # nothing str.strip() removes, no byte-order mark
WORDS = st.sampled_from([
    "market", "oil", "percent", "bank", "topic", "the", "and", "of", "a", "x", "42", "3rd", "café", "naïve",
    "STRASSE", "東京", "Ωmega", "don't", "e-mail", "snake_case", "ﬁne", "two\nlines", "tab\there", '"quoted"',
    "comma,separated", "back\\slash"]) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
DOCUMENTS = st.lists(st.lists(WORDS, max_size=6).map(" ".join), min_size=1, max_size=5)


@dataclass(frozen=True)
class Layout:
    """How a bag-of-words file spells the space between fields and between lines."""

    sep: bytes
    eol: bytes
    tail: bytes          # after the last line: nothing, a line end, or blank lines too

    def join(self, lines):
        return self.eol.join(lines) + self.tail


LAYOUTS = st.builds(Layout, sep=st.sampled_from([b" ", b"\t", b"  ", b" \t"]),
                    eol=st.sampled_from([b"\n", b"\r\n"]), tail=st.sampled_from([b"", b"\n", b"\n \n\t\r\n"]))


def write_ldac(entries, shape, layout):
    pairs = [[] for _ in range(shape[0])]
    for doc, term, count in entries:
        pairs[doc].append(b"%d:%d" % (term, count))
    return layout.join(layout.sep.join([b"%d" % len(p), *p]) for p in pairs)


def write_uci(entries, shape, layout):
    return layout.join([b"%d" % n for n in (*shape, len(entries))] + coordinates(entries, layout, b"%d"))


REAL_SPELLINGS = (b"%d", b"%d.", b"%d.0", b"%de0", b"%d0E-1", b"%d.000e+00")


def mm_writer(field):
    def write_mm(entries, shape, layout):
        banner = b"%%MatrixMarket matrix coordinate " + field + b" general"
        sizes = layout.sep.join(b"%d" % n for n in (*shape, len(entries)))
        spelling = {b"integer": [b"%d"], b"real": REAL_SPELLINGS, b"pattern": [None]}[field]
        return layout.join([banner, b"% generated", sizes] + coordinates(entries, layout, *spelling))
    return write_mm


def coordinates(entries, layout, *spellings):
    """`doc word count` lines, 1-based, the k-th count spelled by spellings[k % len] (None: no count)."""
    lines = []
    for k, (doc, term, count) in enumerate(entries):
        spelling = spellings[k % len(spellings)]
        lines.append(layout.sep.join([b"%d" % (doc + 1), b"%d" % (term + 1)]
                                     + ([] if spelling is None else [spelling % count])))
    return lines


def write_text(documents):
    documents = [d.replace("\n", " ") for d in documents]
    return "".join(d + "\n" for d in documents).encode(), documents


def write_jsonl(documents):
    return "".join(json.dumps({"text": d}) + "\n" for d in documents).encode(), documents


def write_csv(documents):
    out = io.StringIO()
    csv.writer(out).writerows([("id", "text"), *enumerate(documents, 1)])
    return out.getvalue().encode(), documents


@dataclass(frozen=True)
class Format:
    file: str                        # a name that tells load_corpus the format
    write: Callable                  # bag of words: (entries, shape, layout) -> bytes;
    #                                  raw text: documents -> (bytes, the documents as written)
    read: Callable                   # the reference reader (below)
    counts: st.SearchStrategy = COUNTS


@dataclass(frozen=True)
class CorpusFile:
    """A corpus file in one of FORMATS, and the vocabulary file of a bag-of-words format."""

    format: str
    data: bytes
    vocab: bytes | None = None

    @property
    def name(self):
        return FORMATS[self.format].file

    def files(self, name=None):
        return {name or self.name: self.data, **({} if self.vocab is None else {"vocab.txt": self.vocab})}

    def options(self):
        return {} if self.vocab is None else {"vocab": "vocab.txt"}


@st.composite
def bag_of_words(draw):
    """(CorpusFile, (X, terms)): a small corpus in a bag-of-words format, and what it holds."""
    name = draw(st.sampled_from(BAG_OF_WORDS))
    n_docs, n_terms = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    entries = draw(st.lists(st.tuples(st.integers(0, n_docs - 1), st.integers(0, n_terms - 1),
                                      FORMATS[name].counts), max_size=8))
    terms = draw(st.lists(TERMS, min_size=n_terms, max_size=n_terms, unique=True))
    data = FORMATS[name].write(entries, (n_docs, n_terms), draw(LAYOUTS))
    vocab = "".join(term + "\n" for term in terms).encode()
    return CorpusFile(name, data, vocab), (summed(entries, (n_docs, n_terms)), terms)


@st.composite
def raw_text(draw):
    """(CorpusFile, (X, terms) or None): a few documents in a raw-text format, and their counts."""
    name = draw(st.sampled_from(RAW_TEXT))
    data, documents = FORMATS[name].write(draw(DOCUMENTS))
    return CorpusFile(name, data), counted(documents)


CORPORA = st.one_of(bag_of_words(), raw_text())


def summed(entries, shape):
    """The CSR matrix of (doc, term, count) entries, repeats summed, zeros dropped."""
    docs, terms, counts = zip(*entries) if entries else ((), (), ())
    X = sp.csr_matrix((np.array(counts, dtype=np.float64), (docs, terms)), shape=shape)
    X.sum_duplicates()
    X.eliminate_zeros()
    return X


def counted(documents):
    """(X, terms) of documents as CountVectorizer counts them with ldaem's default settings, or
    None when it finds no words (ldaem refuses such a corpus)."""
    vectorizer = CountVectorizer(dtype=np.float64, **asdict(TextSettings()))
    try:
        X = sp.csr_matrix(vectorizer.fit_transform(documents))
    except ValueError:
        return None
    X.sort_indices()
    return X, list(vectorizer.get_feature_names_out())


# ---- damage --------------------------------------------------------------------------------------

NASTY = [b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x0c", b":", b"-", b"+", b".", b"e", b"%", b"0", b"7",
         b"-1", b"2.5", b"1e3", b"1e99", b"%d" % MAX_NUMBER, b"%d" % (MAX_NUMBER + 1), b"9" * 20,
         b"9" * 5000, b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", "é".encode(), b'"', b",",
         b"{", b"}", b"[" * 10_000, b"null", b"\\", b"\\ud800", b"%%MatrixMarket", b"array", b"complex",
         b"real", b"pattern", b"symmetric"]
BYTES = st.sampled_from(NASTY) | st.binary(min_size=1, max_size=3)


def anywhere(data):
    return st.integers(0, len(data))


def flip(draw, data, at):
    i = draw(at(data))
    return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]


def insert(draw, data, at):
    i = draw(at(data))
    return data[:i] + draw(BYTES) + data[i:]


def delete(draw, data, at):
    i = draw(at(data))
    return data[:i] + data[i + draw(st.integers(1, 8)):]


def truncate(draw, data, at):
    return data[:draw(at(data))]


def swap_tokens(draw, data, at):
    parts = re.split(rb"(\s+)", data)                # tokens at the even places
    a, b = draw(st.integers(0, len(parts) // 2)), draw(st.integers(0, len(parts) // 2))
    parts[2 * a], parts[2 * b] = parts[2 * b], parts[2 * a]
    return b"".join(parts)


def replace_token(draw, data, at):
    tokens = list(re.finditer(rb"[^\s:]+", data))   # numbers and words, between blanks and colons
    if not tokens:
        return data
    token = tokens[draw(st.integers(0, len(tokens) - 1))]
    return data[:token.start()] + draw(BYTES) + data[token.end():]


DAMAGES = (flip, insert, delete, truncate, swap_tokens, replace_token)


@st.composite
def damaged(draw, data, at=anywhere):
    """data after one to three injuries, at offsets drawn from at(data)."""
    for _ in range(draw(st.integers(1, 3))):
        data = draw(st.sampled_from(DAMAGES))(draw, data, at)
    return data


@st.composite
def damaged_corpora(draw):
    """A CorpusFile with its corpus file or its vocabulary damaged."""
    corpus, _ = draw(CORPORA)
    if corpus.vocab is not None and draw(st.integers(0, 3)) == 0:
        return replace(corpus, vocab=draw(damaged(corpus.vocab)))
    return replace(corpus, data=draw(damaged(corpus.data)))


# ---- reference readers: what the bytes say, by the formats' definitions --------------------------

BLANK = rb"[ \t\r]"                                   # what separates fields (the parsers' blanks)
AFFORDABLE = 10**5          # more documents or entries than this in a header: the example is left out


def number(digits):
    """The value of a run of ASCII digits, or None past MAX_NUMBER."""
    digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 16 and int(digits) <= MAX_NUMBER else None


def whole_decimal(text):
    """The value of a decimal such as 3, 3., 3.0 or 30e-1 that is a whole number <= MAX_NUMBER."""
    match = re.fullmatch(rb"([0-9]*)\.?([0-9]*)(?:[eE][+-]?([0-9]+))?", text)
    if not match or not (match[1] or match[2]) or (match[3] and number(match[3]) is None):
        return None
    value = Decimal(text.decode())
    if value != 0 and not 1 <= value <= MAX_NUMBER or value != value.to_integral_value():
        return None
    return int(value)


def read_vocab(data):
    """The terms of a vocabulary file: one per line, stripped, none blank, repeated or holding a NUL."""
    try:
        lines = data.decode("utf-8").removeprefix("\ufeff").split("\n")
    except UnicodeDecodeError:
        return None
    terms = [line.strip() for line in (lines[:-1] if lines[-1] == "" else lines)]
    valid = terms and all(terms) and len(set(terms)) == len(terms) and not any("\x00" in t for t in terms)
    return terms if valid else None


def read_ldac(data, n_terms):
    """Lines `N id:count ...` with N pairs and ids below n_terms; blank lines only at the end."""
    lines = data.split(b"\n")
    while lines and re.fullmatch(BLANK + rb"*", lines[-1]):
        lines.pop()
    entries = []
    for doc, line in enumerate(lines):
        match = re.fullmatch(BLANK + rb"*([0-9]+)((?:" + BLANK + rb"+[0-9]+:[0-9]+)*)" + BLANK + rb"*", line)
        if not match:
            return None
        pairs = [(number(term), number(count)) for term, count in re.findall(rb"([0-9]+):([0-9]+)", match[2])]
        if number(match[1]) != len(pairs) or any(t is None or c is None or t >= n_terms for t, c in pairs):
            return None
        entries += [(doc, term, count) for term, count in pairs]
    return summed(entries, (len(lines), n_terms))


def read_uci(data, n_terms):
    """Three header lines D, W (= n_terms), NNZ; then NNZ lines `doc word count`."""
    lines = data.split(b"\n")
    header = [line.decode("ascii", "replace").strip() for line in lines[:3]]
    return read_coordinates(lines[3:], header, n_terms, "integer") if len(header) == 3 else None


def read_mm(data, n_terms):
    """The banner `%%MatrixMarket matrix coordinate FIELD general`, comment lines, the sizes
    `D W NNZ` (W = n_terms), then NNZ lines `doc word [count]`."""
    lines = data.split(b"\n")
    banner = lines[0].decode("ascii", "replace").split()
    if (len(banner) != 5 or banner[0] != "%%MatrixMarket"
            or banner[3].lower() not in ("integer", "real", "double", "pattern")
            or [word.lower() for word in (banner[1], banner[2], banner[4])] != ["matrix", "coordinate", "general"]):
        return None
    for k, line in enumerate(lines[1:], 2):
        sizes = line.decode("ascii", "replace").strip()
        if sizes and not sizes.startswith("%"):
            return read_coordinates(lines[k:], sizes.split(), n_terms, banner[3].lower())
    return None


DECIMAL = BLANK + rb"+([0-9.]*(?:[eE][+-]?[0-9]+)?)"
VALUES = {"integer": BLANK + rb"+([0-9]+)", "real": DECIMAL, "double": DECIMAL, "pattern": rb"()"}


def read_coordinates(lines, header, n_terms, field):
    """After the header's texts D, W (= n_terms) and NNZ: NNZ entries `doc word [count]` (1-based,
    within D and W) among blank lines."""
    sizes = [number(text.encode()) if re.fullmatch("[0-9]+", text) else None for text in header]
    if len(sizes) != 3 or None in sizes or sizes[1] != n_terms:
        return None
    if max(sizes) > AFFORDABLE:     # ldaem allocates them before reading: a known bug, 'huge header sizes'
        reject()
    n_docs, _, nnz = sizes
    entries = []
    for line in lines:
        if re.fullmatch(BLANK + rb"*", line):
            continue
        match = re.fullmatch(BLANK + rb"*([0-9]+)" + BLANK + rb"+([0-9]+)" + VALUES[field] + BLANK + rb"*", line)
        if not match:
            return None
        doc, term = number(match[1]), number(match[2])
        count = {"integer": number, "pattern": lambda _: 1}.get(field, whole_decimal)(match[3])
        if None in (doc, term, count) or not (1 <= doc <= n_docs and 1 <= term <= n_terms):
            return None
        entries.append((doc - 1, term - 1, count))
    return summed(entries, (n_docs, n_terms)) if len(entries) == nnz else None


def lines_of(data):
    """The lines of a UTF-8 file, each with its line end (a leading byte-order mark dropped), or
    None if it does not decode."""
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    return re.findall(r".*?\n|.+\Z", text, re.DOTALL)


def read_text(data):
    """One document per line."""
    lines = lines_of(data)
    return None if lines is None else [line.removesuffix("\n") for line in lines]


def read_jsonl(data):
    """One JSON object per line, blank lines skipped; the text is in "text" (null: empty)."""
    lines = lines_of(data)
    if lines is None:
        return None
    documents = []
    for line in filter(str.strip, lines):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return None
        text = record.get("text", 0) if isinstance(record, dict) else 0
        if not isinstance(text, str | None):
            return None
        documents.append(text or "")
    return documents


def read_csv(data):
    """A header row naming a "text" column, then one record per row; empty rows skipped."""
    lines = lines_of(data)
    if lines is None:
        return None
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            return []
        if "text" not in header:
            return None
        column = {name: i for i, name in enumerate(header)}["text"]
        rows = [row for row in reader if row]
    except csv.Error:
        return None
    return None if any(len(row) != len(header) for row in rows) else [row[column] for row in rows]


FORMATS = {
    "ldac": Format("c.ldac", write_ldac, read_ldac),
    "uci": Format("docword.c.txt", write_uci, read_uci),
    "mm integer": Format("c.mtx", mm_writer(b"integer"), read_mm),
    "mm real": Format("c.mtx", mm_writer(b"real"), read_mm),
    "mm pattern": Format("c.mtx", mm_writer(b"pattern"), read_mm, counts=st.just(1)),
    "text": Format("c.txt", write_text, read_text),
    "jsonl": Format("c.jsonl", write_jsonl, read_jsonl),
    "csv": Format("c.csv", write_csv, read_csv),
}
BAG_OF_WORDS = ["ldac", "uci", "mm integer", "mm real", "mm pattern"]
RAW_TEXT = ["text", "jsonl", "csv"]


def reference(corpus):
    """(X, terms) that a CorpusFile holds by the definitions of its formats, or None when it is
    malformed or holds no documents or no words: then ldaem must refuse it. A file whose header
    claims more than AFFORDABLE documents or entries is left out of the test (hypothesis.reject):
    call this before giving the file to ldaem."""
    if corpus.vocab is None:
        documents = FORMATS[corpus.format].read(corpus.data)
        return counted(documents) if documents else None
    terms = read_vocab(corpus.vocab)
    X = None if terms is None else FORMATS[corpus.format].read(corpus.data, len(terms))
    return None if X is None or X.shape[0] == 0 else (X, terms)


# ---- properties of load_corpus -------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Load (or compile) the numba kernels before any example is timed."""
    with folder_with({"v": b"a\nb\n", "c.ldac": b"1 0:1\n", "docword.c.txt": b"1\n2\n1\n1 2 3\n",
                      "c.mtx": b"%%MatrixMarket matrix coordinate real general\n1 2 1\n1 1 2.0\n"}):
        for name in ("c.ldac", "docword.c.txt", "c.mtx"):
            load_corpus(name, vocab="v")
    LDA(2, max_iter=1, random_state=0).fit(sp.csr_matrix(np.ones((2, 3))))


def assert_same_matrix(X, expected):
    assert X.shape == expected.shape and X.has_canonical_format
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(X, part), getattr(expected, part))


def assert_outcome(got, expected, files):
    """got, the outcome of load_corpus, is the expected (X, terms), or else a CorpusError naming one
    of files (and a line within it) when expected is None."""
    if expected is None:
        assert isinstance(got, Refused), f"loaded what should be refused: {got}"
        assert_names_the_file(got.message, files)
    else:
        assert isinstance(got, Corpus), got
        X, terms = expected
        assert_same_matrix(got.X, X)
        assert list(got.vocab) == terms, f"the vocabulary {terms!r} loads as {list(got.vocab)!r}"
        assert len(got.names) == X.shape[0]
        count("loaded")


def assert_same_expectation(one, other):
    assert (one is None) == (other is None)
    if one is not None:
        assert_same_matrix(one[0], other[0])
        assert one[1] == other[1]


def reading_in_chunks_of(size):
    """Make ldaem read bag-of-words files size bytes at a time (not 8 MiB), so that a small file
    crosses many chunk boundaries."""
    if "size" in inspect.signature(bagofwords.read_chunks).parameters:
        return mock.patch.object(bagofwords, "read_chunks",
                                 functools.partial(bagofwords.read_chunks, size=size))
    return mock.patch.object(bagofwords, "_CHUNK", size)


def same_outcome(one, other):
    if isinstance(one, Corpus) and isinstance(other, Corpus):
        return (one.X != other.X).nnz == 0 and list(one.vocab) == list(other.vocab)
    return one == other


@examples(400)
@given(CORPORA)
def test_a_well_formed_corpus_loads_as_exactly_what_was_written(written):
    corpus, expected = written
    assert_same_expectation(reference(corpus), expected)         # the reference readers agree
    with folder_with(corpus.files()):
        assert_outcome(run(load_corpus, corpus.name, **corpus.options()), expected, corpus.files())


@examples(1500)
@given(damaged_corpora(), st.sampled_from([1, 2, 5, 64]))
@tolerating(*CORPUS_BUGS)
def test_a_damaged_corpus_loads_as_what_its_bytes_say_or_is_refused(corpus, chunk):
    expected = reference(corpus)
    with folder_with(corpus.files()):
        got = run(load_corpus, corpus.name, **corpus.options())
        if corpus.vocab is not None:                  # bag of words: in chunks of a few bytes, the same
            with reading_in_chunks_of(chunk):
                assert same_outcome(run(load_corpus, corpus.name, **corpus.options()), got)
    assert_outcome(got, expected, corpus.files())


def gunzipped(data):
    """(what data decompresses to before any error, whether it decompresses whole)."""
    out = bytearray()
    try:
        with gzip.open(io.BytesIO(data)) as f:
            while byte := f.read(1):
                out += byte
    except (OSError, EOFError, zlib.error):
        return bytes(out), False
    return bytes(out), True


@examples(200)
@given(CORPORA.map(lambda written: written[0]), st.data())
@tolerating(*CORPUS_BUGS)
def test_a_gzipped_corpus_loads_as_what_it_decompresses_to_or_is_refused(corpus, data):
    compressed = gzip.compress(corpus.data, mtime=0)
    compressed = data.draw(st.just(compressed) | damaged(compressed))
    inflated, whole = gunzipped(compressed)
    expected = reference(replace(corpus, data=inflated)) if whole else None
    name = corpus.name + ".gz"
    with folder_with(corpus.files(name) | {name: compressed}):
        got = run(load_corpus, name, **corpus.options())
    assert_outcome(got, expected, corpus.files(name) | {name: inflated})           # lines as decompressed


# ---- model files ---------------------------------------------------------------------------------

MODEL = "model.npz"


class Blob(bytes):
    """Bytes that a failing example shows by their size."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """The bytes of a real small model file: 3 topics of the bundled reuters corpus."""
    corpus = load_bundled("reuters")
    lda = LDA(3, random_state=0, max_iter=2).fit(corpus.X)
    path = tmp_path_factory.mktemp("model") / MODEL
    save_model(path, lda.to_model(corpus.vocab))
    return Blob(path.read_bytes())


@pytest.fixture(scope="session")
def model_arrays(model_file):
    """The arrays of model_file, by name."""
    with np.load(io.BytesIO(model_file)) as arrays:
        return {name: arrays[name] for name in arrays.files}


def assert_keeps_the_contract(model):
    """model is what TopicModel documents: real K x V topics (rows on the simplex unless smoothed),
    K positive alphas, eta None or positive, V terms, K finite token counts, a 1-D ELBO trace and
    settings as a dict. A failure names the part: 'loaded a model whose PART ...'."""
    def check(part, holds):
        assert holds, f"loaded a model whose {part} breaks the contract: {getattr(model, part)!r:.200}"

    def real(values, shape):
        return isinstance(values, np.ndarray) and values.shape == shape and values.dtype.kind in "fiu"

    topic_word = model.topic_word
    check("topic_word", isinstance(topic_word, np.ndarray) and topic_word.ndim == 2)
    K, V = topic_word.shape
    check("topic_word", real(topic_word, (K, V)) and np.isfinite(topic_word).all() and (topic_word > 0).all()
          and (model.eta is not None or np.allclose(topic_word.sum(axis=1), 1.0, atol=1e-6)))
    check("alpha", real(model.alpha, (K,)) and np.isfinite(model.alpha).all() and (model.alpha > 0).all())
    check("eta", model.eta is None or (np.isfinite(model.eta) and model.eta > 0))
    check("vocab", isinstance(model.vocab, np.ndarray) and model.vocab.shape == (V,))
    check("topic_tokens", real(model.topic_tokens, (K,)) and np.isfinite(model.topic_tokens).all()
          and (model.topic_tokens >= 0).all())
    check("elbo_trace", isinstance(model.elbo_trace, np.ndarray) and model.elbo_trace.ndim == 1
          and model.elbo_trace.dtype.kind in "fiu")
    check("settings", isinstance(model.settings, dict))


def assert_model_outcome(got):
    if isinstance(got, Refused):
        assert got.message.startswith(f"{MODEL}: "), got.message
    else:
        assert isinstance(got, TopicModel), got
        assert_keeps_the_contract(got)
        count("loaded")


def load_model_from(blob):
    with folder_with({MODEL: blob}):
        return run(load_model, MODEL)


def archive_layout(blob):
    """Offsets of the bytes that describe a zip archive: the members' local headers, the central
    directory and the end record (np.savez writes no archive comment)."""
    central = struct.unpack_from("<I", blob, len(blob) - 6)[0]
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        headers = [range(info.header_offset, info.header_offset + 30 + len(info.filename))
                   for info in archive.infolist()]
    return [offset for span in [*headers, range(central, len(blob))] for offset in span]


def members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def archive(members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.getvalue()


def npz(arrays, **changes):
    """An .npz file of arrays, with changes (name: array) made."""
    out = io.BytesIO()
    np.savez(out, **(arrays | changes))      # pickles object arrays
    return out.getvalue()


@examples(250)
@given(st.data())
@tolerating(*MODEL_BUGS)
def test_a_model_file_with_damaged_bytes_loads_as_a_valid_model_or_is_refused(model_file, data):
    layout = archive_layout(model_file)
    blob = data.draw(damaged(model_file, at=lambda blob: st.sampled_from(layout) | anywhere(blob)))
    assert_model_outcome(load_model_from(blob))


@examples(250)
@given(st.data())
@tolerating(*MODEL_BUGS)
def test_a_model_file_with_a_damaged_array_loads_as_a_valid_model_or_is_refused(model_file, data):
    contents = members(model_file)
    name = data.draw(st.sampled_from(sorted(contents)))
    npy_header = lambda npy: st.integers(0, min(len(npy), 128)) | anywhere(npy)
    contents[name] = data.draw(damaged(contents[name], at=npy_header))
    assert_model_outcome(load_model_from(archive(contents)))


def json_containers(values):
    return st.lists(values, max_size=3) | st.dictionaries(st.text(max_size=5), values, max_size=3)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    json_containers, max_leaves=6)
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-320, 1e300])


def replacements(array):
    """Arrays to put in a model file instead of array: of any small shape and type, array cast or
    reshaped, array with a special value, JSON text, objects (which np.savez pickles)."""
    casts = [cast for cast in (_cast(array, dtype) for dtype in ("float32", "float16", "int64", "uint8", "bool",
                                                                "complex128", "U3", "S3", "O"))
             if cast is not None]
    reshaped = [array.reshape(-1), array[None]] + ([array.T, array[..., :1], array[..., :0]] if array.ndim else [])
    return st.one_of(
        hnp.arrays(hnp.scalar_dtypes() | hnp.unicode_string_dtypes() | hnp.byte_string_dtypes(),
                   hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
        st.sampled_from(casts + reshaped),
        st.tuples(st.integers(0, max(array.size - 1, 0)), SPECIAL).map(lambda spot: _with(array, *spot)),
        JSON.map(lambda value: np.array(json.dumps(value))))


def _cast(array, dtype):
    """array as dtype (values out of range as they come), or None if numpy cannot cast it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return array.astype(dtype)
    except (ValueError, TypeError):
        return None


def _with(array, index, value):
    array = array.astype(np.float64) if array.dtype.kind in "fiub" else array.copy()
    if array.dtype.kind == "f" and array.size:
        array.flat[index] = value
    return array


@examples(300)
@given(st.data())
@tolerating(*MODEL_BUGS)
def test_a_model_file_with_a_replaced_array_loads_as_a_valid_model_or_is_refused(model_arrays, data):
    name = data.draw(st.sampled_from(sorted(model_arrays)))
    replacement = data.draw(replacements(model_arrays[name]))
    assert_model_outcome(load_model_from(npz(model_arrays, **{name: replacement})))


# ---- the command line ----------------------------------------------------------------------------

def ldaem(files, *args):
    """(result, files after) of `ldaem ARGS` run in a fresh folder holding files (name: bytes)."""
    with folder_with(files) as folder:
        result = run(CliRunner().invoke, main, [str(a) for a in args], catch_exceptions=False)
        return result, {path.name: path.read_bytes() for path in folder.iterdir()}


def assert_clean_exit(result, before, after, outputs):
    """Exit 0 having written outputs; else exit 1 (2 for usage) with one 'Error: ' line on stderr,
    nothing on stdout and no file written. Returns whether it succeeded."""
    assert isinstance(result, Result), result
    if result.exit_code == 0:
        assert set(after) == set(before) | set(outputs), sorted(after)
        assert result.stderr == ""                                      # --quiet
        count("succeeded")
        return True
    lines = result.stderr.splitlines()
    assert result.exit_code in (1, 2) and lines and lines[-1].startswith("Error: "), (result.exit_code, lines)
    internal = re.match(r"Error: (internal error: .*) \(rerun with --debug", lines[-1])
    assert not internal, internal and internal[1]                    # an exception ldaem did not expect
    if result.exit_code == 1:                                         # (usage errors show the usage first)
        named = re.match(r"Error: (.+?)(?::\d+)?: ", lines[-1])
        assert len(lines) == 1 and named and Path(named[1]).name in before, lines
    assert result.stdout == ""
    assert after == before, sorted(after)
    count(f"exit {result.exit_code}")
    return False


CLI_CORPORA = st.one_of(CORPORA.map(lambda written: written[0]), damaged_corpora())


@examples(120)
@given(CLI_CORPORA)
@tolerating(*CORPUS_BUGS)
def test_fit_writes_a_model_or_fails_cleanly(corpus):
    expected = reference(corpus)
    files = corpus.files()
    args = ["fit", corpus.name, *("--vocab", "vocab.txt") * (corpus.vocab is not None),
            "-k", 2, "--max-iter", 2, "-q", "--seed", 0]
    result, after = ldaem(files, *args)
    succeeded = assert_clean_exit(result, files, after, {MODEL, "model.elbo.tsv"})
    if expected is None:
        assert not succeeded, "fitted a corpus that its format does not allow"
    elif expected[0].nnz:                             # (without tokens, fitting or refusing are both right)
        assert succeeded, "refused a well-formed corpus"
    if succeeded:
        with folder_with(after):
            model = load_model(MODEL)
        assert_keeps_the_contract(model)
        assert after["model.elbo.tsv"].count(b"\n") == 1 + model.elbo_trace.size     # a header, a row each


@examples(120)
@given(CLI_CORPORA, st.data())
@tolerating(*CORPUS_BUGS, *MODEL_BUGS)
def test_infer_writes_proportions_or_fails_cleanly(model_file, corpus, data):
    reference(corpus)                                # leaves out files that claim huge sizes
    near_the_start = lambda blob: st.integers(0, 200) | anywhere(blob)      # noqa: E731
    model = data.draw(st.just(model_file) | damaged(model_file, at=near_the_start))
    assert_model_outcome(load_model_from(model))     # (a model the library should refuse is its bug)
    files = corpus.files() | {MODEL: model}
    args = ["infer", corpus.name, *("--vocab", "vocab.txt") * (corpus.vocab is not None),
            "-m", MODEL, "-o", "theta.tsv", "-q"]
    result, after = ldaem(files, *args)
    if assert_clean_exit(result, files, after, {"theta.tsv"}):
        header, *rows = list(csv.reader(io.StringIO(after["theta.tsv"].decode()), delimiter="\t"))
        assert header == ["document"] + [f"topic_{k}" for k in range(3)]
        theta = np.array([[float(p) for p in row[1:]] for row in rows])
        assert rows and np.isfinite(theta).all()
        np.testing.assert_allclose(theta.sum(axis=1), 1.0, atol=1e-5)


@examples(100)
@given(st.data())
@tolerating(*MODEL_BUGS)
def test_topics_shows_a_model_or_fails_cleanly(model_file, model_arrays, data):
    name = data.draw(st.sampled_from(sorted(model_arrays)))
    model = data.draw(damaged(model_file) | replacements(model_arrays[name]).map(
        lambda array: npz(model_arrays, **{name: array})))
    loaded = load_model_from(model)
    assert_model_outcome(loaded)                     # (a model the library should refuse is its bug)
    result, after = ldaem({MODEL: model}, "topics", MODEL, "-n", 3)
    if assert_clean_exit(result, {MODEL: model}, after, set()):
        assert len(result.stdout.splitlines()) == loaded.n_topics


# ---- what the fuzzing found, pinned ------------------------------------------------------------
# The smallest inputs that broke the contract. Those fixed since are regression tests; the others
# are expected to fail (strict): when a fix makes one pass, delete its marker and KNOWN_BUGS entry.

def bug(name, reason, raises):
    """Expect the test to fail, by one of the exceptions raises, because of the known bug name."""
    assert name in KNOWN_BUGS
    return pytest.mark.xfail(strict=True, raises=raises, reason=f"{name}: {reason}")


def assert_refused(files, name, message, **options):
    """load_corpus(name) in a folder holding files raises a CorpusError whose message starts so."""
    with folder_with(files), pytest.raises(CorpusError, match=f"^{re.escape(message)}"):
        load_corpus(name, **options)


def assert_model_refused(blob):
    with folder_with({MODEL: blob}), pytest.raises(ModelFileError, match=f"^{MODEL}: "):
        load_model(MODEL)


GZIPPED = gzip.compress(b"1 0:1\n", mtime=0)
MANY_DIGITS = b"9" * 5000          # past Python's 4300-digit limit for int(str)


@pytest.mark.parametrize("name,data", [
    pytest.param("c.ldac.gz", GZIPPED[:-4], id="gzip-truncated"),
    pytest.param("c.ldac.gz", GZIPPED[:-8] + bytes([GZIPPED[-8] ^ 1]) + GZIPPED[-7:], id="gzip-crc"),
    pytest.param("c.ldac.gz", GZIPPED[:10] + bytes([GZIPPED[10] | 6]) + GZIPPED[11:], id="gzip-deflate-block"),
    pytest.param("docword.c.txt", b"1\n1\n1000000000000000\n1 1 1\n", id="uci-entries-past-memory"),
    pytest.param("docword.c.txt", b"10000000000000\n1\n1\n1 1 1\n", id="uci-documents-past-memory"),
    pytest.param("docword.c.txt", b"100000000000000000000\n1\n1\n1 1 1\n", id="uci-documents-past-int64"),
    pytest.param("c.jsonl", b'{"text": "words", "n": ' + MANY_DIGITS + b"}\n", id="jsonl-digits"),
    pytest.param("c.jsonl", b"[" * 100_000 + b"\n", id="jsonl-nesting")])
def test_a_corpus_that_breaks_a_reader_is_a_corpus_error(name, data):
    options = {} if name.endswith(".jsonl") else {"vocab": "v.txt"}
    assert_refused({name: data, "v.txt": b"a\n"}, name, f"{name}:", **options)


@pytest.mark.parametrize("name,data,message", [
    pytest.param("c.ldac", b"1 0:1\n1 0:" + MANY_DIGITS + b"\n", "c.ldac:2: count 999", id="ldac-count"),
    pytest.param("c.ldac", b"1 0:1\n" + MANY_DIGITS + b" 0:1\n", "c.ldac:2: says 999", id="ldac-terms"),
    pytest.param("c.ldac", b"1 " + MANY_DIGITS + b":1\n", "c.ldac:1: term id 999", id="ldac-id"),
    pytest.param("docword.c.txt", MANY_DIGITS + b"\n1\n1\n1 1 1\n", "docword.c.txt:1: the size 999",
                 id="uci-header"),
    pytest.param("docword.c.txt", b"1\n1\n1\n1 1 " + MANY_DIGITS + b"\n", "docword.c.txt:4: count 999",
                 id="uci-count"),
    pytest.param("docword.c.txt", b"1\n1\n1\n" + MANY_DIGITS + b" 1 1\n", "docword.c.txt:4: document id 999",
                 id="uci-document"),
    pytest.param("c.mtx", b"%%MatrixMarket matrix coordinate integer general\n1 1 " + MANY_DIGITS + b"\n",
                 "c.mtx:2: the size 999", id="mm-sizes")])
def test_a_number_of_thousands_of_digits_is_named_with_its_line(name, data, message):
    assert_refused({name: data, "v.txt": b"a\n"}, name, message, vocab="v.txt")


def test_a_nul_in_a_vocabulary_term_is_refused():         # numpy's strings would drop it
    assert_refused({"c.ldac": b"2 0:1 1:2\n", "v.txt": b"a\na\x00\n"}, "c.ldac", "v.txt:2: ", vocab="v.txt")


def with_central_field(blob, member, offset, value):
    """blob with the 2-byte field at offset in member's central directory entry set to value."""
    entry = blob.index(member.encode(), struct.unpack_from("<I", blob, len(blob) - 6)[0]) - 46
    data = bytearray(blob)
    struct.pack_into("<H", data, entry + offset, value)
    return bytes(data)


def with_npy_header(blob, member, old, new):
    """blob with old replaced by new (as long) in the .npy header of member."""
    assert len(old) == len(new)
    return archive(members(blob) | {member: members(blob)[member].replace(old, new, 1)})


@pytest.mark.parametrize("damage", [
    pytest.param(lambda blob: with_central_field(blob, "alpha.npy", 10, 99), id="compression-method"),
    pytest.param(lambda blob: with_central_field(blob, "alpha.npy", 8, 0x20), id="patched-data-flag"),
    pytest.param(lambda blob: with_central_field(blob, "alpha.npy", 8, 1), id="encrypted"),
    pytest.param(lambda blob: with_npy_header(blob, "alpha.npy", b"(3,)", b"\x003,)"), id="nul"),
    pytest.param(lambda blob: with_npy_header(blob, "alpha.npy", b"(3,)", b"(((,"), id="unbalanced"),
    pytest.param(lambda blob: with_npy_header(blob, "alpha.npy", b"'fortran_order'", b"123456789012345"),
                 id="number-key")])
def test_a_damaged_archive_or_npy_header_is_a_model_file_error(model_file, damage):
    assert_model_refused(damage(model_file))


@pytest.mark.parametrize("name,change", [
    ("topic_word", lambda a: a.astype("U8")), ("topic_word", lambda a: a.astype(complex)),
    ("alpha", lambda a: a.astype(bool)), ("alpha", lambda a: a.astype("datetime64[Y]")),
    ("elbo_trace", lambda a: np.ones((2, 2))), ("topic_tokens", lambda a: np.array(["a", "b", "c"])),
    ("settings", lambda a: np.array("[]"))])
def test_model_arrays_that_break_the_contract_are_refused(model_arrays, name, change):
    assert_model_refused(npz(model_arrays, **{name: change(model_arrays[name])}))


def test_a_model_member_that_is_not_an_array_is_a_model_file_error(model_file):
    assert_model_refused(archive(members(model_file) | {"alpha.npy": b"not an array"}))


def test_fitting_a_corpus_without_tokens_fits_or_fails_cleanly():
    files = {"c.ldac": b"0\n0\n", "v.txt": b"a\n"}
    result, after = ldaem(files, "fit", "c.ldac", "--vocab", "v.txt", "-k", 2, "--max-iter", 2, "-q")
    assert_clean_exit(result, files, after, {MODEL, "model.elbo.tsv"})
