"""Reading every corpus format (DESIGN.md, "Contracts"): real corpora written in each format load
to identical matrices, raw text is counted as CountVectorizer counts it, documents keep their
names, and every kind of bad input stops with a message naming the file and the line."""

import csv
import gzip
import io
import json
import re
from dataclasses import asdict

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from click.testing import CliRunner
from sklearn.feature_extraction.text import CountVectorizer

from ldaem.cli import main
from ldaem.convert import write_corpus
from ldaem.corpus import Corpus, DocumentNumbers, TextSettings, detect_format, load_corpus
from ldaem.datasets import CORPORA
from ldaem.errors import CorpusError
from tests.conftest import SHARED_CORPORA

KOS = SHARED_CORPORA / "kos" / "docword.kos.txt.gz"
FORTUNES = CORPORA / "fortunes" / "fortunes"


def assert_same_counts(corpus, X, vocab):
    """corpus holds exactly the matrix X (in canonical CSR form) over vocab."""
    X = sp.csr_matrix(X)
    X.sum_duplicates()
    assert corpus.X.shape == X.shape
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(corpus.X, part), getattr(X, part))
    np.testing.assert_array_equal(corpus.vocab, vocab)


def assert_same_corpus(corpus, expected):
    assert_same_counts(corpus, expected.X, expected.vocab)


@pytest.fixture(scope="session")
def kos():
    return load_corpus(KOS)


# ---- bag-of-words: real corpora through every format -------------------------------------------

def test_kos_is_read_as_uci_with_the_vocabulary_beside_it(kos):
    assert kos.format == "uci"
    assert kos.X.shape == (3430, 6906) and kos.X.nnz == 353160 and kos.n_tokens == 467714
    assert kos.vocab[0] == "aarp" and list(kos.names[:2]) == ["1", "2"]


@pytest.mark.parametrize("source", ["kos", "reuters"])
@pytest.mark.parametrize("name,format", [
    ("c.ldac", "ldac"), ("c.dat.gz", "ldac"), ("docword.c.txt", "uci"), ("docword.c.txt.gz", "uci"),
    ("c.mtx", "mm"), ("c.mm.gz", "mm"), ("c.npz", "npz")])
def test_every_format_round_trips_through_convert_to_the_identical_matrix(request, tmp_path, source,
                                                                          name, format):
    corpus = request.getfixturevalue(source)
    written = write_corpus(corpus, tmp_path / name)
    assert written[0] == tmp_path / name and all(path.is_file() for path in written)
    back = load_corpus(tmp_path / name)          # format by name, vocabulary from beside it
    assert back.format == format
    assert_same_corpus(back, corpus)


@pytest.mark.parametrize("source,original,name", [
    ("kos", KOS, "docword.kos.txt"), ("reuters", CORPORA / "reuters" / "reuters.ldac", "reuters.ldac")])
def test_writing_a_corpus_in_its_own_format_reproduces_the_file_byte_for_byte(
        request, tmp_path, source, original, name):
    write_corpus(request.getfixturevalue(source), tmp_path / name)
    with gzip.open(original) if original.suffix == ".gz" else open(original, "rb") as f:
        assert (tmp_path / name).read_bytes() == f.read()


def test_other_tools_read_what_convert_writes(tmp_path, reuters):
    write_corpus(reuters, tmp_path / "r.mtx")
    write_corpus(reuters, tmp_path / "r.npz")
    assert (sp.csr_matrix(scipy.io.mmread(tmp_path / "r.mtx")) != reuters.X).nnz == 0
    assert (sp.load_npz(tmp_path / "r.npz") != reuters.X).nnz == 0


def test_matrix_market_written_by_scipy_with_real_values_is_read(tmp_path, reuters):
    scipy.io.mmwrite(tmp_path / "r.mtx", reuters.X.astype(np.float64))
    (tmp_path / "r.mtx.vocab").write_text("\n".join(reuters.vocab) + "\n")
    assert_same_corpus(load_corpus(tmp_path / "r.mtx"), reuters)


def test_whole_numbers_written_as_decimals_are_counts(tmp_path):
    (tmp_path / "v.txt").write_text("a\nb\nc\n")
    (tmp_path / "m.mtx").write_text("%%MatrixMarket matrix coordinate real general\n% comment\n"
                                    "2 3 3\n1 1 3.000000e+00\n2 3 20E-1\n2 2 1.\n")
    assert load_corpus(tmp_path / "m.mtx", vocab=tmp_path / "v.txt").X.toarray().tolist() == [[3, 0, 0], [0, 1, 2]]


def test_pattern_matrix_counts_each_entry_once(tmp_path):
    (tmp_path / "v.txt").write_text("a\nb\nc\n")
    (tmp_path / "m.mtx").write_text("%%MatrixMarket matrix coordinate pattern general\n2 3 2\n2 1\n1 3\n")
    assert load_corpus(tmp_path / "m.mtx", vocab=tmp_path / "v.txt").X.toarray().tolist() == [[0, 0, 1], [1, 0, 0]]


def test_entries_out_of_order_and_repeated_are_sorted_and_summed(tmp_path):
    (tmp_path / "v.txt").write_text("a\nb\nc\n")
    (tmp_path / "docword.x.txt").write_text("3\n3\n4\n3 1 1\n1 3 2\n1 2 1\n1 3 1\n")
    (tmp_path / "x.ldac").write_text("3 2:2 1:1 2:1\n0\n1 0:1\n")
    for name in ("docword.x.txt", "x.ldac"):
        X = load_corpus(tmp_path / name, vocab=tmp_path / "v.txt").X
        assert X.has_canonical_format and X.toarray().tolist() == [[0, 1, 3], [0, 0, 0], [1, 0, 0]]


@pytest.mark.parametrize("name,content", [
    ("x.ldac", "2\t0:1  2:3\r\n0\r\n1 1:2\r\n\r\n"),
    ("docword.x.txt", "3\r\n3\r\n3\r\n1\t1 1\r\n1 3  3\r\n\r\n3 2 2\r\n")])
def test_windows_line_ends_tabs_and_trailing_blank_lines_are_fine(tmp_path, name, content):
    (tmp_path / "v.txt").write_text("a\nb\nc\n")
    (tmp_path / name).write_bytes(content.encode())
    X = load_corpus(tmp_path / name, vocab=tmp_path / "v.txt").X
    assert X.toarray().tolist() == [[1, 0, 3], [0, 0, 0], [0, 2, 0]]


def test_bag_of_words_counted_against_a_model_vocabulary_maps_terms_and_drops_the_rest(tmp_path, reuters):
    order = np.random.default_rng(0).permutation(len(reuters.vocab))
    shuffled = Corpus(X=reuters.X[:, order], vocab=reuters.vocab[order], names=reuters.names, path="",
                      format="ldac")
    write_corpus(shuffled, tmp_path / "shuffled.ldac")
    model_vocab = reuters.vocab[:-100]
    back = load_corpus(tmp_path / "shuffled.ldac", fixed_vocab=model_vocab)
    assert_same_counts(back, reuters.X[:, :-100], model_vocab)
    assert back.oov_tokens == reuters.X[:, -100:].sum()


def test_ldac_ids_are_the_model_vocabulary_without_a_vocabulary_file(tmp_path, reuters):
    back = load_corpus(CORPORA / "reuters" / "reuters.ldac", fixed_vocab=reuters.vocab)
    assert_same_corpus(back, reuters)
    assert back.oov_tokens == 0


# ---- raw text: the fortunes in every raw-text format --------------------------------------------

@pytest.fixture(scope="session")
def fortunes():
    """[(category, first line, text)] of the bundled fortunes, split here independently of ldaem."""
    documents = []
    for path in sorted(FORTUNES.iterdir()):
        lines = path.read_text(encoding="utf-8").split("\n")
        start = 0
        for i, line in enumerate(lines):
            if line == "%":
                documents.append((path.name, start + 1, "\n".join(lines[start:i])))
                start = i + 1
        if "".join(lines[start:]).strip():          # computers and law do not end with a %
            documents.append((path.name, start + 1, "\n".join(lines[start:])))
    return documents


@pytest.fixture(scope="session")
def fortunes_counts(fortunes):
    """The fortunes counted by CountVectorizer itself, with ldaem's default settings."""
    vectorizer = CountVectorizer(dtype=np.float64, **asdict(TextSettings()))
    X = vectorizer.fit_transform([text for _, _, text in fortunes])
    return sp.csr_matrix(X), vectorizer.get_feature_names_out()


def write_text(path, fortunes):
    path.write_text("".join(text.replace("\n", " ") + "\n" for _, _, text in fortunes), encoding="utf-8")
    return {}, [str(i) for i in range(1, len(fortunes) + 1)]


def write_gzip_text(path, fortunes):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(text.replace("\n", " ") + "\n" for _, _, text in fortunes)
    return {}, [str(i) for i in range(1, len(fortunes) + 1)]


def write_folder(path, fortunes):
    names = []
    for k, (category, line, text) in enumerate(fortunes):
        names.append(f"{category}/{k:05d}-{line}.txt")
        (path / names[-1]).parent.mkdir(parents=True, exist_ok=True)
        (path / names[-1]).write_text(text, encoding="utf-8")
    return {}, names


def write_separated(path, fortunes):
    path.write_text("".join(f"{text}\n%\n" for _, _, text in fortunes), encoding="utf-8")
    starts = np.cumsum([0] + [text.count("\n") + 2 for _, _, text in fortunes[:-1]]) + 1
    return {"doc_separator": "%"}, [str(start) for start in starts]


def write_jsonl(path, fortunes):
    with open(path, "w", encoding="utf-8") as f:
        for category, line, text in fortunes:
            f.write(json.dumps({"id": f"{category}:{line}", "body": text, "n": line}) + "\n")
    return {"text_field": "body", "id_field": "id"}, [f"{c}:{line}" for c, line, _ in fortunes]


def write_csv(path, fortunes, delimiter=","):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["category", "line", "text"])
        writer.writerows(fortunes)
    return {"id_field": "line"}, [str(line) for _, line, _ in fortunes]


def write_tsv(path, fortunes):
    return write_csv(path, fortunes, delimiter="\t")


@pytest.mark.parametrize("writer,name,format", [
    (write_text, "f.txt", "text"), (write_gzip_text, "f.txt.gz", "text"), (write_folder, "f", "dir"),
    (write_separated, "fortunes", "text"), (write_jsonl, "f.jsonl", "jsonl"), (write_csv, "f.csv", "csv"),
    (write_tsv, "f.tsv", "csv")])
def test_every_raw_text_format_counts_the_fortunes_as_countvectorizer_does(
        tmp_path, fortunes, fortunes_counts, writer, name, format):
    path = tmp_path / name
    if format == "dir":
        path.mkdir()
    options, names = writer(path, fortunes)
    corpus = load_corpus(path, **options)
    assert corpus.format == format
    assert list(corpus.names) == names
    assert_same_counts(corpus, *fortunes_counts)


def test_the_bundled_fortunes_read_as_a_folder_of_separated_files(fortunes, fortunes_counts):
    corpus = load_corpus(FORTUNES, doc_separator="%")
    assert corpus.format == "dir"
    assert list(corpus.names) == [f"{category}:{line}" for category, line, _ in fortunes]
    assert_same_counts(corpus, *fortunes_counts)
    assert corpus.text_settings == asdict(TextSettings())


def test_raw_text_against_a_model_vocabulary_drops_and_counts_unseen_words(tmp_path, fortunes):
    settings = TextSettings(min_df=2)
    train = load_corpus(FORTUNES / "science", text_settings=settings, doc_separator="%")
    new = load_corpus(FORTUNES / "computers", text_settings=settings, fixed_vocab=train.vocab,
                      doc_separator="%")
    texts = [text for category, _, text in fortunes if category == "computers"]
    expected = CountVectorizer(vocabulary=train.vocab, dtype=np.float64, **{
        **asdict(settings), "min_df": 1}).transform(texts)
    assert_same_counts(new, expected, train.vocab)
    all_tokens = sum(len(settings.vectorizer().build_analyzer()(text)) for text in texts)
    assert new.oov_tokens == all_tokens - new.n_tokens > 0


@pytest.mark.parametrize("settings", [
    TextSettings(min_df=3, max_df=0.2), TextSettings(min_df=0.001, max_df=400),
    TextSettings(max_features=1000), TextSettings(stop_words=None, min_df=2, max_features=300),
    TextSettings(stop_words=["computer", "program"], lowercase=False)], ids=repr)
def test_text_settings_prune_the_vocabulary_as_countvectorizer_does(fortunes, settings):
    vectorizer = CountVectorizer(dtype=np.float64, **asdict(settings))
    X = vectorizer.fit_transform([text for _, _, text in fortunes])
    corpus = load_corpus(FORTUNES, doc_separator="%", text_settings=settings)
    assert_same_counts(corpus, X, vectorizer.get_feature_names_out())


def test_text_settings_shape_the_vocabulary():
    corpus = load_corpus(FORTUNES, doc_separator="%",
                         text_settings=TextSettings(stop_words=None, min_df=5, max_df=0.5, max_features=500))
    assert len(corpus.vocab) == 500 and "the" not in corpus.vocab    # 'the' is in over half
    assert "and" in load_corpus(FORTUNES, doc_separator="%", text_settings=TextSettings(stop_words=None)).vocab
    document_frequency = np.bincount(corpus.X.indices, minlength=500)
    assert document_frequency.min() >= 5


def test_empty_documents_keep_their_place_and_are_counted(tmp_path):
    (tmp_path / "d.txt").write_text("graphs and trees\n\nthe of and 42 x\ntrees grow\n")
    corpus = load_corpus(tmp_path / "d.txt")
    assert corpus.X.shape[0] == 4 and corpus.n_empty == 2
    assert corpus.describe() == "4 documents, 3 terms, 4 tokens, 2 empty"
    assert list(corpus.names) == ["1", "2", "3", "4"]


def test_document_numbers_behave_as_a_list_of_names():
    names = DocumentNumbers(3)
    assert names == ["1", "2", "3"] and names[-1] == "3" and names[1:] == ["2", "3"] and len(names) == 3
    with pytest.raises(IndexError):
        names[3]


@pytest.mark.parametrize("name,content,expected", [
    ("a.txt", "words\n", "text"), ("a.ldac", "1 0:1\n", "ldac"), ("a.dat.gz", None, "ldac"),
    ("docword.x.txt", "1\n1\n1\n1 1 1\n", "uci"), ("a.mtx", "", "mm"), ("a.jsonl", "", "jsonl"),
    ("a.csv", "", "csv"), ("a.tsv", "", "csv"), ("a.npz", "", "npz"),
    ("noext", "2 0:1 5:3\n", "ldac"), ("noext", "3\n5\n2\n1 1 1\n", "uci"),
    ("noext", "%%MatrixMarket matrix coordinate integer general\n", "mm"),
    ("noext", '{"text": "a"}\n', "jsonl"), ("noext", "\nsome words\n", "text"),
    ("noext", b"caf\xe9 au lait\n", "text")])
def test_format_is_chosen_by_extension_then_content(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is None:
        path.write_bytes(gzip.compress(b"1 0:1\n"))
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert detect_format(path) == expected


def test_a_folder_is_the_dir_format_and_skips_hidden_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "z.txt").write_text("zebra stripes")
    (tmp_path / "b" / "a.txt.gz").write_bytes(gzip.compress(b"apple pie"))
    (tmp_path / ".git" / "x").write_text("hidden words")
    (tmp_path / ".notes").write_text("hidden words")
    (tmp_path / "c.txt").write_text("cherry pie")
    corpus = load_corpus(tmp_path)
    assert list(corpus.names) == ["b/a.txt.gz", "b/z.txt", "c.txt"]
    assert list(corpus.vocab) == ["apple", "cherry", "pie", "stripes", "zebra"]
    (tmp_path / "b" / "d.txt.gz").write_bytes(gzip.compress(b"damson jam")[:15])      # cut short
    with pytest.raises(CorpusError, match=re.escape(f"{tmp_path / 'b' / 'd.txt.gz'}: cannot be read as a "
                                                    "corpus (EOFError: ")):
        load_corpus(tmp_path)


def test_encoding_options_are_the_way_out_of_undecodable_bytes(tmp_path):
    (tmp_path / "d.txt").write_bytes("caf\u00e9 cr\u00e8me\nthe caf\u00e9 noir\n".encode("latin-1"))
    assert "café" in load_corpus(tmp_path / "d.txt", encoding="latin-1").vocab
    replaced = load_corpus(tmp_path / "d.txt", encoding_errors="replace")
    assert "caf" in replaced.vocab and "noir" in replaced.vocab


def test_a_byte_order_mark_is_not_part_of_the_first_term(tmp_path):
    (tmp_path / "v.txt").write_bytes("\ufeffapple\nbanana\n".encode("utf-8"))
    (tmp_path / "d.ldac").write_text("1 0:2\n")
    assert load_corpus(tmp_path / "d.ldac", vocab=tmp_path / "v.txt").vocab[0] == "apple"


# ---- bad input: one message naming the file and the line ----------------------------------------

VOCAB = "apple\nbanana\ncherry\ndate\nelder\n"
UCI_HEAD = "2\n5\n3\n"
MM_HEAD = "%%MatrixMarket matrix coordinate integer general\n% a comment\n2 5 3\n"


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


BAD_INPUT = [
    # LDA-C
    ("d.ldac", "2 0:1 1:2\n3 4:x\n", {}, "d.ldac:2: says 3 terms but has 1 id:count pairs"),
    ("d.ldac", "2 0:1 1:2\n1 4:x\n", {}, "d.ldac:2: '4:x' is not id:count with non-negative integers"),
    ("d.ldac", "1 0:1\n1 4:-2\n", {}, "d.ldac:2: '4:-2' is not id:count with non-negative integers"),
    ("d.ldac", "1 0:1\n1 4:2.5\n", {}, "d.ldac:2: '4:2.5' is not id:count with non-negative integers"),
    ("d.ldac", "1 0:1\n1 4:1\n1 5:1\n", {}, "d.ldac:3: term id 5 is beyond the 5 terms of v.txt"),
    ("d.ldac", "2 0:1\n", {}, "d.ldac:1: says 2 terms but has 1 id:count pairs"),
    ("d.ldac", "1 0:1\n\n1 2:1\n", {}, "d.ldac:2: empty line (an empty document is written 0)"),
    ("d.ldac", "x 1:1\n", {}, "d.ldac:1: expected the number of distinct terms, found 'x'"),
    ("d.ldac", "\u00b2 1:1\n", {}, "d.ldac:1: expected the number of distinct terms, found '\u00b2'"),
    ("d.ldac", b"1 0:1\n1 1:1 \xe9\n", {},
     "d.ldac:2: byte 0xe9 at offset 12 is not valid utf-8 (choose another with --encoding)"),
    ("d.ldac", "1 0:1\n", {"vocab": None}, "d.ldac: LDA-C input needs its vocabulary file (--vocab, one term per line)"),
    # UCI
    ("docword.d.txt", UCI_HEAD + "1 1 1\n3 2 1\n2 1 1\n", {},
     "docword.d.txt:5: document id 3 is beyond the 2 documents of the header (line 1)"),
    ("docword.d.txt", "2\n6\n3\n1 1 1\n", {}, "docword.d.txt:2: the header says 6 words but vocab.d.txt has 5 terms"),
    ("docword.d.txt", UCI_HEAD + "1 1 1\n2 2 1\n", {}, "docword.d.txt:3: the header says 3 entries but the file has 2"),
    ("docword.d.txt", UCI_HEAD + "1 1 1\n2 2 1\n2 3 1\n2 4 1\n", {},
     "docword.d.txt:7: one entry more than the 3 of the header (line 3)"),
    ("docword.d.txt", UCI_HEAD + "1 1 1\n2 2 -1\n", {}, "docword.d.txt:5: count -1 is negative"),
    ("docword.d.txt", UCI_HEAD + "1 1 1.5\n", {}, "docword.d.txt:4: count 1.5 is not a whole number"),
    ("docword.d.txt", UCI_HEAD + "1 1 x\n", {}, "docword.d.txt:4: count 'x' is not a number"),
    ("docword.d.txt", UCI_HEAD + "1 0 1\n", {}, "docword.d.txt:4: word id 0: ids are 1-based"),
    ("docword.d.txt", UCI_HEAD + "1 6 1\n", {}, "docword.d.txt:4: word id 6 is beyond the 5 words of the header (line 2)"),
    ("docword.d.txt", UCI_HEAD + "1 1 1 1\n", {},
     "docword.d.txt:4: expected 3 numbers 'document word count', found '1 1 1 1'"),
    ("docword.d.txt", "2\n5\n", {}, "docword.d.txt:3: expected the number of entries NNZ (the UCI header "
                                    "is D, W and NNZ, one per line), found ''"),
    ("docword.d.txt", "", {}, "docword.d.txt: holds no documents (an empty file)"),
    # Matrix Market
    ("d.mtx", "%%MatrixMarket matrix array integer general\n2 5\n", {},
     "d.mtx:1: a dense (array) Matrix Market file; a corpus is written in the sparse coordinate layout"),
    ("d.mtx", "%%MatrixMarket matrix coordinate integer symmetric\n2 5 0\n", {},
     "d.mtx:1: a symmetric matrix; a document-term matrix is general"),
    ("d.mtx", "%%MatrixMarket matrix coordinate complex general\n2 5 0\n", {},
     "d.mtx:1: complex values; counts must be integer, real or pattern"),
    ("d.mtx", "1 1 1\n", {}, "d.mtx:1: not a Matrix Market file (expected '%%MatrixMarket matrix coordinate "
                             "integer general')"),
    ("d.mtx", MM_HEAD.replace("2 5 3", "2 5"), {}, "d.mtx:3: expected the sizes 'documents words entries', found '2 5'"),
    ("d.mtx", MM_HEAD + "1 1 1\n1 2 2.0\n", {}, "d.mtx:5: count '2.0' is not written as a plain integer"),
    ("d.mtx", MM_HEAD + "1 1 1\n1 2 2\n3 1 1\n", {},
     "d.mtx:6: document id 3 is beyond the 2 documents of the header (line 3)"),
    # JSON Lines and CSV
    ("d.jsonl", '{"text": "a b"}\n{"text": "c d"\n', {}, "d.jsonl:2: not valid JSON (Expecting ',' delimiter, column 15)"),
    ("d.jsonl", '{"text": "a b"}\n["c d"]\n', {}, "d.jsonl:2: expected a JSON object, found list"),
    ("d.jsonl", '{"body": "a b"}\n', {}, "d.jsonl:1: no field 'text' (the record has 'body'; choose one with --text-field)"),
    ("d.jsonl", '{"text": 42}\n', {}, "d.jsonl:1: field 'text' holds a int, not text"),
    ("d.jsonl", '{"text": "a b", "id": 1}\n\n{"text": "c"}\n', {"id_field": "id"},
     "d.jsonl:3: no field 'id' to name the document (choose one with --id-field)"),
    ("d.csv", "id,body\n1,a b\n", {}, "d.csv:1: no column 'text' in the header ('id', 'body'; choose one with --text-field)"),
    ("d.csv", 'id,text\n1,"a\nb"\n2,c,d\n', {}, "d.csv:4: 3 fields, but the header has 2"),
    ("d.csv", "text\nwords\n", {"id_field": "id"}, "d.csv:1: no column 'id' in the header ('text'; choose one with --id-field)"),
    # undecodable bytes in raw text
    ("d.txt", b"first line here\nthe caf\xe9 au lait\n", {},
     "d.txt:2: byte 0xe9 at offset 23 is not valid utf-8 (choose another with --encoding, or --encoding-errors replace)"),
    ("d.jsonl", b'{"text": "a"}\n{"text": "caf\xe9"}\n', {},
     "d.jsonl:2: byte 0xe9 at offset 27 is not valid utf-8 (choose another with --encoding, or --encoding-errors replace)"),
    ("d.csv", b"text\nok\ncaf\xe9\n", {},
     "d.csv:3: byte 0xe9 at offset 11 is not valid utf-8 (choose another with --encoding, or --encoding-errors replace)"),
    # vocabulary files
    ("d.ldac", "1 0:1\n", {"vocab": "w.txt", "w.txt": "apple\nbanana\napple\n"}, "w.txt:3: term 'apple' repeats line 1"),
    ("d.ldac", "1 0:1\n", {"vocab": "w.txt", "w.txt": "apple\n\nbanana\n"},
     "w.txt:2: empty line in a vocabulary file (one term per line)"),
    ("d.ldac", "1 0:1\n", {"vocab": "w.txt", "w.txt": b"apple\nbanan\xe9\n"},
     "w.txt:2: byte 0xe9 at offset 11 is not valid utf-8 (choose another with --encoding, or --encoding-errors replace)"),
    # .npz
    ("d.npz", npz_bytes(weights=np.ones(3)), {},
     "d.npz: not a sparse document-term matrix (an .npz as scipy.sparse.save_npz writes it)"),
    ("d.npz", npz_bytes(format=np.array(b"csr"), shape=np.array([2, 5]), data=np.array([1.0, -2.0]),
                        indices=np.array([0, 4]), indptr=np.array([0, 1, 2]), vocab=np.array(list("abcde"))), {},
     "d.npz: document 2, term 4: count -2.0 is not a non-negative whole number"),
    # empty corpora and emptied vocabularies
    ("d.txt", "", {}, "d.txt: holds no documents"),
    ("d.jsonl", "\n\n", {}, "d.jsonl: holds no documents"),
    ("d.txt", "the of and\nit is 42 x y\n", {},
     "d.txt: no words to count in its 2 documents (only stop words, numbers and one-letter tokens)"),
    ("d.txt", "apples pears\nplums figs\n", {"text_settings": TextSettings(min_df=2)},
     "d.txt: no terms are left in its 2 documents after --min-df 2 and --max-df 1.0 (lower --min-df or raise --max-df)"),
    ("d.txt", "apples pears\nplums figs\n", {"text_settings": TextSettings(min_df=2, max_df=1)},
     "d.txt: --max-df 1 allows fewer documents than --min-df 2 asks for (2 documents)"),
    ("docword.d.txt", "0\n5\n0\n", {}, "docword.d.txt: holds no documents"),
    # the wrong kind of path
    ("d.txt", "words\n", {"format": "dir"}, "d.txt: is not a folder (the dir format reads a folder of text files)"),
    ("d.txt", "words\n", {"format": "xml"}, "d.txt: unknown corpus format 'xml' (known: text, dir, jsonl, csv, "
                                            "ldac, uci, mm, npz)"),
    ("d.txt", "words\n", {"encoding": "klingon"}, "unknown encoding 'klingon' (--encoding)"),
]


@pytest.mark.parametrize("name,content,options,message", BAD_INPUT,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_INPUT)])
def test_bad_input_is_one_message_naming_file_and_line(tmp_path, monkeypatch, name, content, options, message):
    monkeypatch.chdir(tmp_path)
    options = dict(options)
    files = {name: content, "v.txt": VOCAB, "vocab.d.txt": VOCAB, "d.mtx.vocab": VOCAB}
    files.update({key: options.pop(key) for key in list(options) if "." in key})
    for file, text in files.items():
        (tmp_path / file).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    options.setdefault("vocab", "v.txt" if name.endswith(".ldac") else None)
    with pytest.raises(CorpusError, match=f"^{re.escape(message)}$"):
        load_corpus(name, **options)


def test_errors_deep_in_a_large_file_name_the_right_line(tmp_path, kos):
    write_corpus(kos, tmp_path / "k.ldac")
    lines = (tmp_path / "k.ldac").read_bytes().split(b"\n")
    lines[3000] = lines[3000].replace(b":", b":-", 1)
    (tmp_path / "k.ldac").write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusError, match=r"k\.ldac:3001: '\d+:-\d+' is not id:count"):
        load_corpus(tmp_path / "k.ldac")


# ---- the command line: convert, and names in infer's output -------------------------------------

def ldaem(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def test_convert_command_writes_the_corpus_and_its_vocabulary(tmp_path):
    result = ldaem("convert", FORTUNES, tmp_path / "docword.fortunes.txt.gz", "--doc-separator", "%", "--min-df", 2)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {tmp_path / 'docword.fortunes.txt.gz'} and {tmp_path / 'vocab.fortunes.txt'}")
    back = load_corpus(tmp_path / "docword.fortunes.txt.gz")
    assert_same_corpus(back, load_corpus(FORTUNES, doc_separator="%", text_settings=TextSettings(min_df=2)))


def test_convert_writes_nothing_when_the_input_is_bad(tmp_path):
    (tmp_path / "v.txt").write_text(VOCAB)
    (tmp_path / "d.ldac").write_text("1 0:1\n1 9:1\n")
    result = ldaem("convert", tmp_path / "d.ldac", tmp_path / "out.mtx", "--vocab", tmp_path / "v.txt")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: {tmp_path / 'd.ldac'}:2: term id 9 is beyond the 5 terms of {tmp_path / 'v.txt'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.ldac", "v.txt"]


def test_convert_needs_a_format_it_can_tell(tmp_path):
    result = ldaem("convert", CORPORA / "reuters" / "reuters.ldac", tmp_path / "out.bin",
                   "--vocab", CORPORA / "reuters" / "reuters.tokens")
    assert result.exit_code == 1
    assert "cannot tell the output format from the name; choose one with --to" in result.stderr


def test_infer_names_each_row_by_the_id_field_and_counts_unseen_words(tmp_path, fortunes):
    science = [(f"science:{line}", text) for category, line, text in fortunes if category == "science"][:200]
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"doi": name, "text": text}) + "\n"
                                                for name, text in science[:5]))
    fitted = ldaem("fit", FORTUNES, "--doc-separator", "%", "-k", 3, "--max-iter", 2, "--seed", 1,
                   "-q", "-o", tmp_path / "m.npz")
    assert fitted.exit_code == 0, fitted.output
    result = ldaem("infer", tmp_path / "new.jsonl", "--id-field", "doi", "-m", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert rows == ["document"] + [name for name, _ in science[:5]]
    assert "; dropped 0 tokens outside the model's vocabulary and 0 tokens of words unseen in training" in result.stderr
