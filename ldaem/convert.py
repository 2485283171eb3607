"""Writing a corpus in another format (`ldaem convert`), with its vocabulary beside it:

- ldac: Blei's LDA-C, `N id:count ...` per document, ids 0-based (lda-c; gensim's BleiCorpus);
  vocabulary in OUT.vocab.
- uci: UCI bag-of-words, the header D, W, NNZ then `doc word count`, 1-based (gensim's
  UciCorpus); vocabulary in vocab.NAME.txt beside docword.NAME.txt, else OUT.vocab.
- mm: Matrix Market coordinate, documents as rows (gensim's MmCorpus, scipy.io.mmread);
  vocabulary in OUT.vocab.
- npz: scipy.sparse.save_npz's layout (scipy.sparse.load_npz reads it), with the vocabulary and
  the document names inside as `vocab` and `names`.

Names ending in .gz are written through gzip (the vocabulary too, as gensim does). Every file is
written to a temporary name and renamed only when all of them are complete.
"""

import contextlib
import gzip
from pathlib import Path

import numpy as np

from ldaem.bagofwords import UCI_NAME, vocab_beside
from ldaem.corpus import DocumentNumbers
from ldaem.errors import CorpusError
from ldaem.fileio import atomic_output

WRITE_FORMATS = ("ldac", "uci", "mm", "npz")
_EXTENSIONS = {".ldac": "ldac", ".dat": "ldac", ".mtx": "mm", ".mm": "mm", ".npz": "npz"}
_ROWS_PER_BLOCK = 10_000


def output_format(path):
    """The format a file name asks for: .ldac/.dat, docword.NAME.txt, .mtx/.mm, .npz (+ .gz)."""
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    if UCI_NAME.match(name):
        return "uci"
    found = _EXTENSIONS.get(Path(name).suffix.lower())
    if found is None:
        raise CorpusError(f"{path}: cannot tell the output format from the name; choose one with "
                          f"--to ({', '.join(WRITE_FORMATS)})")
    return found


def write_corpus(corpus, path, to=None):
    """Write corpus (a Corpus) to path in format `to` (default: by the name); returns the paths
    written: the corpus, then its vocabulary file unless it is inside (npz)."""
    path = Path(path)
    to = to or output_format(path)
    if to not in WRITE_FORMATS:
        raise CorpusError(f"{path}: cannot write format {to!r} (known: {', '.join(WRITE_FORMATS)})")
    X = corpus.X
    if to == "npz":
        if path.name.endswith(".gz"):
            raise CorpusError(f"{path}: an .npz is compressed already; drop the .gz")
        with atomic_output(path, "wb") as f:
            _write_npz(f, X, corpus.vocab, corpus.names)
        return [path]
    vocab_path = vocab_beside(path, to)
    with _output(vocab_path) as vocab_file, _output(path) as f:
        vocab_file.write("".join(f"{term}\n" for term in corpus.vocab).encode("utf-8"))
        {"ldac": _write_ldac, "uci": _write_uci, "mm": _write_mm}[to](f, X, vocab_path)
    return [path, vocab_path]


@contextlib.contextmanager
def _output(path):
    """A binary file written atomically, through gzip if its name ends in .gz."""
    with atomic_output(path, "wb") as raw:
        if Path(path).name.endswith(".gz"):
            with gzip.GzipFile(filename=Path(path).name[:-3], mode="wb", fileobj=raw, mtime=0,
                               compresslevel=6) as f:
                yield f
        else:
            yield raw


def _blocks(X):
    """(first row, column ids, counts as integers, row lengths) of blocks of rows of X."""
    for start in range(0, X.shape[0], _ROWS_PER_BLOCK):
        stop = min(start + _ROWS_PER_BLOCK, X.shape[0])
        first, last = X.indptr[start], X.indptr[stop]
        yield (start, X.indices[first:last], X.data[first:last].astype(np.int64),
               np.diff(X.indptr[start:stop + 1]))


def _write_ldac(f, X, vocab_path):
    for _, terms, counts, lengths in _blocks(X):
        terms, counts = terms.tolist(), counts.tolist()
        lines, end = [], 0
        for length in lengths.tolist():
            start, end = end, end + length
            lines.append(" ".join([str(length), *map("{}:{}".format, terms[start:end], counts[start:end])]))
        f.write(("\n".join(lines) + "\n").encode("ascii"))


def _write_entries(f, X):
    """`doc word count` lines, 1-based."""
    for start, terms, counts, lengths in _blocks(X):
        docs = np.repeat(np.arange(start + 1, start + 1 + lengths.size), lengths)
        f.write("".join(map("{} {} {}\n".format, docs.tolist(), (terms + 1).tolist(),
                            counts.tolist())).encode("ascii"))


def _write_uci(f, X, vocab_path):
    f.write(f"{X.shape[0]}\n{X.shape[1]}\n{X.nnz}\n".encode("ascii"))
    _write_entries(f, X)


def _write_mm(f, X, vocab_path):
    f.write(f"%%MatrixMarket matrix coordinate integer general\n"
            f"% documents as rows, terms as columns; the vocabulary is {vocab_path.name}\n"
            f"{X.shape[0]} {X.shape[1]} {X.nnz}\n".encode("utf-8"))
    _write_entries(f, X)


def _write_npz(f, X, vocab, names):
    arrays = dict(format=np.array(b"csr"), shape=np.array(X.shape), data=X.data, indices=X.indices,
                  indptr=X.indptr, vocab=np.asarray(vocab, dtype=str))
    if not isinstance(names, DocumentNumbers):
        arrays["names"] = np.asarray(names, dtype=str)
    np.savez_compressed(f, **arrays)
