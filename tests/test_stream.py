"""Streaming a corpus minibatch by minibatch (ldaem.stream): the batches stack up to load_corpus's
matrix, online EM over them equals fit on the whole matrix, errors are load_corpus's, and memory
is bounded by a batch."""

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ldaem import LDA
from ldaem.corpus import TextSettings, load_corpus
from ldaem.errors import CorpusError
from ldaem.stream import fit_online_streaming, stream_corpus
from tests.conftest import SHARED_CORPORA

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
AP, AP_VOCAB = CORPORA / "ap" / "ap.dat", CORPORA / "ap" / "vocab.txt"
KOS = SHARED_CORPORA / "kos" / "docword.kos.txt.gz"
FORTUNES = CORPORA / "fortunes" / "fortunes"


@pytest.fixture(scope="module")
def fortunes_text(tmp_path_factory):
    """A text corpus, one fortune per line (gzipped, to read it through gzip)."""
    fortunes = []
    for path in sorted(FORTUNES.iterdir()):
        text = path.read_text(encoding="utf-8", errors="replace")
        fortunes += [" ".join(f.split()) for f in text.split("\n%\n") if f.strip()]
    path = tmp_path_factory.mktemp("text") / "fortunes.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(fortunes) + "\n")
    return path


def stacked(stream):
    batches = list(stream)
    assert all(0 < batch.shape[0] <= stream.batch_size for batch in batches)
    assert all(batch.dtype == np.float64 and batch.has_canonical_format for batch in batches)
    return sp.vstack(batches, format="csr")


def assert_same_matrix(X, Y):
    assert X.shape == Y.shape
    assert (X != Y).nnz == 0


@pytest.mark.parametrize("batch_size", [1, 300, 5000])
def test_ldac_batches_stack_to_the_loaded_matrix(batch_size):
    corpus = load_corpus(AP, vocab=AP_VOCAB)
    stream = stream_corpus(AP, batch_size, vocab=AP_VOCAB)
    assert stream.n_documents == corpus.X.shape[0] == 2246
    np.testing.assert_array_equal(stream.vocab, corpus.vocab)
    assert_same_matrix(stacked(stream), corpus.X)


@pytest.mark.skipif(not KOS.exists(), reason="the shared KOS corpus is not here")
def test_uci_batches_stack_to_the_loaded_matrix():
    corpus = load_corpus(KOS)
    stream = stream_corpus(KOS, 500)
    assert stream.format == "uci" and stream.n_documents == 3430
    np.testing.assert_array_equal(stream.vocab, corpus.vocab)
    assert_same_matrix(stacked(stream), corpus.X)


def test_uci_documents_without_entries_are_empty_rows(tmp_path):
    path = tmp_path / "docword.gaps.txt"
    path.write_text("7\n3\n5\n2 1 4\n2 3 1\n3 2 2\n5 1 1\n5 1 2\n")     # 1, 4, 6, 7 empty; 5 repeats
    (tmp_path / "vocab.gaps.txt").write_text("a\nb\nc\n")
    stream = stream_corpus(path, 2)
    assert [batch.shape[0] for batch in stream] == [2, 2, 2, 1]
    assert_same_matrix(stacked(stream), load_corpus(path).X)


def test_matrix_market_streams(tmp_path):
    path = tmp_path / "c.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n% hi\n3 2 3\n1 1 2.0\n1 2 1\n3 2 4e0\n")
    (tmp_path / "c.mtx.vocab").write_text("x\ny\n")
    assert_same_matrix(stacked(stream_corpus(path, 2)), load_corpus(path).X)


@pytest.mark.parametrize("settings", [TextSettings(), TextSettings(min_df=3, max_df=0.5, max_features=500)])
def test_text_batches_stack_to_the_loaded_matrix(fortunes_text, settings):
    corpus = load_corpus(fortunes_text, format="text", text_settings=settings)
    stream = stream_corpus(fortunes_text, 100, format="text", text_settings=settings)
    assert stream.n_documents == corpus.X.shape[0] > 400
    np.testing.assert_array_equal(stream.vocab, corpus.vocab)
    assert_same_matrix(stacked(stream), corpus.X)


def test_text_with_a_given_vocabulary_drops_other_words(fortunes_text, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("computer\nlove\ndog\n")
    stream = stream_corpus(fortunes_text, 100, format="text", vocab=vocab)
    expected = load_corpus(fortunes_text, format="text", fixed_vocab=["computer", "love", "dog"])
    assert stream.n_documents == expected.X.shape[0]
    assert_same_matrix(stacked(stream), expected.X)


@pytest.mark.parametrize("batch_size", [256, 512])
def test_streamed_online_em_equals_fit_on_the_matrix(batch_size):
    X = load_corpus(AP, vocab=AP_VOCAB).X
    params = dict(n_components=5, learning_method="online", batch_size=256, random_state=3,
                  learning_offset=1.0, learning_decay=0.55, max_doc_update_iter=20)
    expected = LDA(**params, total_samples=X.shape[0], max_iter=2).fit(X)
    streamed = fit_online_streaming(LDA(**params), stream_corpus(AP, batch_size, vocab=AP_VOCAB), 2)
    np.testing.assert_array_equal(streamed.components_, expected.components_)
    np.testing.assert_array_equal(streamed.doc_topic_prior_, expected.doc_topic_prior_)
    np.testing.assert_array_equal(streamed.elbo_trace_, expected.elbo_trace_)
    assert streamed.n_iter_ == expected.n_iter_ == 2
    assert [r.epoch for r in streamed.iterations_] == [r.epoch for r in expected.iterations_]


def test_stream_batches_must_be_a_multiple_of_the_minibatch():
    with pytest.raises(ValueError, match="multiple"):
        fit_online_streaming(LDA(batch_size=256, learning_method="online"),
                             stream_corpus(AP, 300, vocab=AP_VOCAB), 1)


def error_of(read):
    with pytest.raises(CorpusError) as caught:
        read()
    return str(caught.value)


def same_error(path, batch_size, **options):
    """load_corpus's message, after checking that streaming gives it too."""
    loaded = error_of(lambda: load_corpus(path, **options))
    assert error_of(lambda: list(stream_corpus(path, batch_size, **options))) == loaded
    return loaded


def broken_copy(source, destination, lineno, line, opener=open):
    with opener(source, "rb") as f:
        lines = f.read().split(b"\n")
    lines[lineno - 1] = line
    with opener(destination, "wb") as f:
        f.write(b"\n".join(lines))


@pytest.mark.parametrize("line, message", [
    (b"3 1:2 5:1", "says 3 terms but has 2 id:count pairs"),
    (b"1 99999:1", "term id 99999 is beyond the 10473 terms"),
    (b"", "empty line"),
])
def test_a_malformed_ldac_line_fails_as_load_corpus_does(tmp_path, line, message):
    path = tmp_path / "ap.dat"
    broken_copy(AP, path, 1201, line)                 # line 1201: the first of a batch of 300
    loaded = same_error(path, 300, vocab=AP_VOCAB)
    assert loaded.startswith(f"{path}:1201: ") and message in loaded
    broken_copy(AP, path, 1000, line)                 # inside a batch
    assert same_error(path, 300, vocab=AP_VOCAB).startswith(f"{path}:1000: ")


@pytest.mark.skipif(not KOS.exists(), reason="the shared KOS corpus is not here")
def test_a_malformed_uci_line_fails_as_load_corpus_does(tmp_path):
    path = tmp_path / "docword.kos.txt.gz"
    (tmp_path / "vocab.kos.txt").write_bytes((KOS.parent / "vocab.kos.txt").read_bytes())
    broken_copy(KOS, path, 200_000, b"2000 12 x", gzip.open)
    assert same_error(path, 100) == f"{path}:200000: count 'x' is not a number"
    broken_copy(KOS, path, 200_000, b"2000 99999 1", gzip.open)
    assert "word id 99999 is beyond the 6906 words of the header" in same_error(path, 100)


def test_uci_documents_going_backwards_fail_with_their_line(tmp_path):
    path = tmp_path / "docword.x.txt"
    path.write_text("3\n2\n4\n1 1 1\n3 2 1\n\n2 1 1\n3 1 1\n")
    (tmp_path / "vocab.x.txt").write_text("a\nb\n")
    message = error_of(lambda: list(stream_corpus(path, 1)))
    assert message.startswith(f"{path}:7: document id 2 comes after document id 3")


def test_undecodable_text_fails_as_load_corpus_does(fortunes_text, tmp_path):
    path = tmp_path / "broken.txt.gz"
    broken_copy(fortunes_text, path, 300, b"caf\xe9 au lait", gzip.open)
    assert same_error(path, 100, format="text").startswith(f"{path}:300: byte 0xe9")


def test_what_cannot_be_streamed_says_so(tmp_path):
    assert "no such file" in error_of(lambda: stream_corpus(tmp_path / "nope.dat", 10))
    empty = tmp_path / "empty.dat"
    empty.write_text("\n\n")
    (tmp_path / "empty.dat.vocab").write_text("a\n")
    assert error_of(lambda: stream_corpus(empty, 10)) == f"{empty}: holds no documents"


MEMORY_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from ldaem.corpus import load_corpus
    from ldaem.stream import stream_corpus

    def peak_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

    path, vocab, how = sys.argv[1:]
    next(iter(stream_corpus(path, 10, vocab=vocab)))         # numba kernels loaded
    before = peak_kib()
    if how == "stream":
        documents = sum(batch.shape[0] for batch in stream_corpus(path, 1000, vocab=vocab))
    else:
        documents = load_corpus(path, vocab=vocab).X.shape[0]
    print(documents, peak_kib() - before)
""")


def test_streaming_memory_is_bounded_by_the_batch(tmp_path):
    n_docs, n_terms, pairs = 200_000, 5000, 10
    rng = np.random.default_rng(0)
    ids = rng.integers(0, n_terms, size=(n_docs, pairs))
    path = tmp_path / "big.dat"
    with open(path, "w") as f:
        for row in ids:
            f.write(f"{pairs} " + " ".join(f"{i}:{c}" for i, c in zip(row, range(1, pairs + 1))) + "\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"w{i}\n" for i in range(n_terms)))
    X = load_corpus(path, vocab=vocab).X
    matrix_kib = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1024
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path), str(vocab), "stream"],
                            capture_output=True, text=True, check=True)
    documents, growth_kib = map(int, result.stdout.split())
    assert documents == n_docs
    assert growth_kib < 0.3 * matrix_kib, (growth_kib, matrix_kib)
