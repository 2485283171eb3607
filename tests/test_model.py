"""The model file (ldaem/model.py) and atomic writes (ldaem/fileio.py)."""

import json
import os
import stat
import struct
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

from ldaem.errors import ModelFileError
from ldaem.fileio import atomic_output
from ldaem.model import FORMAT_VERSION, TopicModel, load_model, save_model

ARRAY_NAMES = {"format_version", "topic_word", "alpha", "eta", "vocab", "elbo_trace", "topic_tokens",
               "settings"}


def small_model(**changes):
    """A 3-topic model over 5 words; the third topic is uniform, to test ties."""
    fields = dict(
        topic_word=np.array([[0.4, 0.3, 0.15, 0.1, 0.05],
                             [0.05, 0.1, 0.2, 0.25, 0.4],
                             [0.2, 0.2, 0.2, 0.2, 0.2]]),
        alpha=np.array([0.1, 0.2, 0.3]),
        eta=None,
        vocab=np.array(["apple", "banana", "cherry", "date", "elder"]),
        elbo_trace=np.array([-100.0, -90.0, -85.5]),
        topic_tokens=np.array([10.0, 30.0, 60.0]),
        settings={"seed": 3, "corpus": "fruit.txt", "text_settings": {"min_df": 1, "stop_words": None}},
    )
    return TopicModel(**{**fields, **changes})


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    save_model(path, small_model())
    return path


def rewrite(path, **arrays):
    """Replace some arrays of a saved model file (np.savez pickles object arrays)."""
    with np.load(path, allow_pickle=False) as npz:
        contents = {name: npz[name] for name in npz.files}
    np.savez(path, **{**contents, **arrays})
    return path


@pytest.mark.parametrize("eta", [None, 0.01])
def test_save_load_round_trip_is_exact(tmp_path, eta):
    model = small_model(eta=eta)
    save_model(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz")
    for name in ("topic_word", "alpha", "vocab", "elbo_trace", "topic_tokens"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name), strict=True)
    assert loaded.eta == eta
    assert loaded.settings == model.settings
    assert loaded.n_topics == 3


def test_saving_an_estimator_instead_of_its_model_says_how(tmp_path):
    from ldaem import LDA
    with pytest.raises(TypeError, match=r"not LDA: for a fitted LDA, save_model\(path, lda.to_model\(vocab\)\)"):
        save_model(tmp_path / "m.npz", LDA(3))
    assert list(tmp_path.iterdir()) == []


def test_model_file_is_plain_arrays_without_pickle(saved):
    with np.load(saved, allow_pickle=False) as npz:
        assert set(npz.files) == ARRAY_NAMES
        arrays = {name: npz[name] for name in npz.files}
    assert all(a.dtype.kind != "O" for a in arrays.values())
    assert int(arrays["format_version"]) == FORMAT_VERSION
    assert np.isnan(arrays["eta"])                                 # not smoothed
    assert json.loads(str(arrays["settings"]))["seed"] == 3


def test_object_array_is_refused_as_pickle(saved):
    rewrite(saved, vocab=np.array(["apple", "banana", "cherry", "date", "elder"], dtype=object))
    with pytest.raises(ModelFileError, match=r"model\.npz: holds pickled objects, which ldaem refuses"):
        load_model(saved)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path):
    path.write_bytes(b"")


def break_deflate_stream(path, member="topic_word.npy"):
    """Make a compressed member's first deflate block header invalid (block type 3)."""
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo(member).header_offset
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", data, start + 26)   # local file header
    data[start + 30 + name_length + extra_length] = 0xFF
    path.write_bytes(bytes(data))


def not_a_zip(path):
    path.write_text("topic\tword\n0\tapple\n")


@pytest.mark.parametrize("damage", [
    truncate,
    empty,
    break_deflate_stream,
    not_a_zip,
])
def test_damaged_file_is_not_readable(tmp_path, damage):
    path = tmp_path / "model.npz"
    save_model(path, small_model(topic_word=np.full((3, 2000), 1 / 2000), vocab=np.arange(2000).astype(str)))
    damage(path)
    with pytest.raises(ModelFileError, match=r"model\.npz: not a readable \.npz model file \(") as error:
        load_model(path)
    assert "pickle" not in str(error.value)


def test_foreign_npz_names_the_missing_arrays(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ModelFileError, match=r"other\.npz: not an ldaem model file \(no format_version, "
                                             r"topic_word, alpha, eta, vocab, elbo_trace, topic_tokens, "
                                             r"settings\)"):
        load_model(tmp_path / "other.npz")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.npz: no such model file$"):
        load_model(tmp_path / "nothing.npz")


def test_newer_format_version_is_refused(saved):
    rewrite(saved, format_version=np.array(FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match=rf"model format version {FORMAT_VERSION + 1}, "
                                             rf"this ldaem reads {FORMAT_VERSION}"):
        load_model(saved)


def test_non_numeric_format_version_is_a_model_file_error(saved):
    rewrite(saved, format_version=np.array("one"))
    with pytest.raises(ModelFileError, match="format_version must be a single number"):
        load_model(saved)


@pytest.mark.parametrize("arrays,message", [
    pytest.param({"topic_word": np.full(5, 0.2)}, r"topic_word must be a K x V array, has shape \(5,\)",
                 id="topic_word-1d"),
    pytest.param({"alpha": np.array([0.1, 0.2])}, r"alpha has shape \(2,\), expected \(3,\)", id="alpha-short"),
    pytest.param({"alpha": np.full((3, 1), 0.1)}, r"alpha must be a 1-D array of numbers, is float64 \(3, 1\)", id="alpha-2d"),
    pytest.param({"vocab": np.array(["apple", "banana", "cherry", "date"])},
                 "vocabulary has 4 terms, topics have 5 columns", id="vocab-short"),
    pytest.param({"topic_tokens": np.ones(4)}, r"topic_tokens has shape \(4,\)", id="topic_tokens-long"),
])
def test_inconsistent_shapes_are_refused(saved, arrays, message):
    rewrite(saved, **arrays)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved)


def with_entry(array, index, value):
    array = array.copy()
    array[index] = value
    return array


TOPIC_WORD = small_model().topic_word
ALPHA = small_model().alpha


@pytest.mark.parametrize("arrays,message", [
    pytest.param({"topic_word": with_entry(TOPIC_WORD, (0, 0), np.nan)}, "topic_word must be finite and positive",
                 id="topic_word-nan"),
    pytest.param({"topic_word": with_entry(TOPIC_WORD, (1, 2), np.inf)}, "topic_word must be finite and positive",
                 id="topic_word-inf"),
    pytest.param({"topic_word": with_entry(TOPIC_WORD, (2, 4), -0.2)}, "topic_word must be finite and positive",
                 id="topic_word-negative"),
    pytest.param({"alpha": with_entry(ALPHA, 1, np.inf)}, "alpha must be finite and positive", id="alpha-inf"),
    pytest.param({"alpha": with_entry(ALPHA, 0, -0.1)}, "alpha must be finite and positive", id="alpha-negative"),
    pytest.param({"alpha": with_entry(ALPHA, 2, 0.0)}, "alpha must be finite and positive", id="alpha-zero"),
    pytest.param({"eta": np.array(-0.5)}, r"eta must be finite and positive, is -0\.5", id="eta-negative"),
    pytest.param({"eta": np.array(0.0)}, r"eta must be finite and positive, is 0\.0", id="eta-zero"),
    pytest.param({"eta": np.array(np.inf)}, "eta must be", id="eta-inf"),
    pytest.param({"topic_word": TOPIC_WORD * [[1.0], [2.0], [1.0]]}, "topic-word rows do not sum to one",
                 id="rows-not-normalised"),
    pytest.param({"settings": np.array("{seed: 3")}, "settings are not valid JSON", id="settings-not-json"),
])
def test_invalid_parameters_are_refused(saved, arrays, message):
    rewrite(saved, **arrays)
    with pytest.raises(ModelFileError, match=rf"model\.npz: {message}"):
        load_model(saved)


def test_smoothed_topics_need_not_sum_to_one(tmp_path):
    lam = np.array([[2.0, 6.0, 2.0], [5.0, 1.0, 4.0]])
    save_model(tmp_path / "m.npz", small_model(topic_word=lam, alpha=np.array([0.5, 0.5]), eta=0.5,
                                              vocab=np.array(["x", "y", "z"]), topic_tokens=np.ones(2)))
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.eta == 0.5
    np.testing.assert_allclose(loaded.topic_word_distribution(), lam / lam.sum(axis=1, keepdims=True))


def test_top_words_are_ordered_by_probability_with_ties_in_vocabulary_order():
    top = small_model().top_words(3)
    assert [[w for w, _ in topic] for topic in top] == [["apple", "banana", "cherry"],
                                                        ["elder", "date", "cherry"],
                                                        ["apple", "banana", "cherry"]]
    assert [[p for _, p in topic] for topic in top] == [pytest.approx([0.4, 0.3, 0.15]),
                                                        pytest.approx([0.4, 0.25, 0.2]),
                                                        pytest.approx([0.2, 0.2, 0.2])]


def test_top_words_of_smoothed_topics_are_normalised():
    model = small_model(topic_word=np.array([[2.0, 6.0, 2.0]]), alpha=np.ones(1), eta=0.5,
                        vocab=np.array(["x", "y", "z"]), topic_tokens=np.ones(1))
    assert model.top_words(2) == [[("y", pytest.approx(0.6)), ("x", pytest.approx(0.2))]]


def test_top_words_asking_for_more_than_the_vocabulary_gives_all_of_it():
    top = small_model().top_words(99)
    assert [len(topic) for topic in top] == [5, 5, 5]
    for topic in top:
        probabilities = [p for _, p in topic]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0)


def test_topic_shares_are_the_fractions_of_training_tokens():
    np.testing.assert_allclose(small_model().topic_shares(), [0.1, 0.3, 0.6])


class Boom(Exception):
    pass


@pytest.mark.parametrize("mode,old,partial", [("w", "old text\n", "new te"), ("wb", b"old bytes", b"new b")],
                         ids=["text", "binary"])
def test_atomic_output_keeps_the_old_file_when_the_block_fails(tmp_path, mode, old, partial):
    path = tmp_path / "out.tsv"
    (path.write_bytes if "b" in mode else path.write_text)(old)
    with pytest.raises(Boom):
        with atomic_output(path, mode) as f:
            f.write(partial)
            f.flush()
            raise Boom
    assert (path.read_bytes() if "b" in mode else path.read_text()) == old
    assert os.listdir(tmp_path) == ["out.tsv"]


def test_atomic_output_creates_nothing_when_the_block_fails(tmp_path):
    with pytest.raises(Boom):
        with atomic_output(tmp_path / "out.tsv") as f:
            f.write("half")
            raise Boom
    assert os.listdir(tmp_path) == []


def test_atomic_output_replaces_the_file_when_the_block_succeeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                            # a bare name: the temporary file goes in "."
    (tmp_path / "out.tsv").write_text("old\n")
    with atomic_output("out.tsv") as f:
        f.write("a\tb\r\nc\n")
    assert (tmp_path / "out.tsv").read_bytes() == b"a\tb\r\nc\n"          # newline="" : written as is
    assert os.listdir(tmp_path) == ["out.tsv"]


def test_atomic_output_file_has_the_permissions_of_a_plain_open(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.tsv") as f:
            f.write("x\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.tsv").stat().st_mode & 0o777 == 0o644


def test_atomic_output_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "target.tsv").write_text("old\n")
    (tmp_path / "link.tsv").symlink_to("target.tsv")
    with atomic_output(tmp_path / "link.tsv") as f:
        f.write("new\n")
    assert (tmp_path / "link.tsv").is_symlink()
    assert (tmp_path / "target.tsv").read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["link.tsv", "target.tsv"]


def test_atomic_output_writes_into_a_named_pipe_rather_than_replacing_it(tmp_path):
    """As into /dev/null or /dev/stdout: nothing can be renamed onto a device or a pipe."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    with atomic_output(pipe) as f:
        f.write("through\n")
    reader.join(timeout=10)
    assert received == ["through\n"]
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_atomic_output_to_standard_output_redirected_to_a_file_appends_to_it(tmp_path):
    """`ldaem infer -o /dev/stdout >> log.txt`: /dev/stdout leads to log.txt, which must not be replaced."""
    log = tmp_path / "log.txt"
    log.write_text("kept\n")
    script = ("import sys; from ldaem.fileio import atomic_output\n"
              "with atomic_output('/dev/stdout', 'wb') as f: f.write(b'PK zip-like bytes\\n')")
    with open(log, "ab") as stdout:
        subprocess.run([sys.executable, "-c", script], stdout=stdout, check=True)
    assert log.read_text() == "kept\nPK zip-like bytes\n"


def test_atomic_output_through_a_loop_of_links_names_the_path(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="cannot write there") as error:
        with atomic_output(tmp_path / "a") as f:
            f.write("never")
    assert error.value.filename == str(tmp_path / "a") and (tmp_path / "a").is_symlink()


def test_atomic_output_onto_a_folder_names_it_before_writing(tmp_path):
    (tmp_path / "out.tsv").mkdir()
    with pytest.raises(IsADirectoryError, match="cannot write there") as error:
        with atomic_output(tmp_path / "out.tsv") as f:
            f.write("never")
    assert error.value.filename == str(tmp_path / "out.tsv")
    assert os.listdir(tmp_path) == ["out.tsv"]
