"""The `ldaem` command end to end, on real files: fit, topics, infer, and their errors."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from ldaem.cli import main
from ldaem.corpus import load_corpus
from ldaem.datasets import CORPORA, bundled_paths
from ldaem.lda import LDA
from ldaem.model import load_model

REUTERS, REUTERS_VOCAB = bundled_paths("reuters")
N_TOPICS = 5
ELBO_COLUMNS = ["iteration", "elbo", "elbo_per_token", "relative_change", "alpha", "seconds", "doc_iterations",
                "heldout_per_token"]


def ldaem(*args):
    """Run the CLI in-process; stdout and stderr are kept apart (click >= 8.2)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def fit_reuters(output, *options):
    """A short fit of Reuters: 5 EM iterations, or one pass of online EM."""
    short = ("--passes", 1) if "online" in options else ("--max-iter", 5)
    return ldaem("fit", REUTERS, "--vocab", REUTERS_VOCAB, "-k", N_TOPICS, *short, "-o", output, *options)


def read_tsv(text):
    return list(csv.reader(io.StringIO(text), delimiter="\t"))


def npz_arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One reuters fit shared by the tests that only read its model."""
    model = tmp_path_factory.mktemp("fitted") / "model.npz"
    result = fit_reuters(model, "--seed", 7)
    assert result.exit_code == 0, result.stderr
    return SimpleNamespace(model=model, result=result)


def test_fit_writes_the_model_and_a_nondecreasing_elbo_log(fitted):
    assert fitted.result.stdout == ""
    model = load_model(fitted.model)
    assert model.topic_word.shape == (N_TOPICS, 4258)
    assert model.settings["seed"] == 7 and model.settings["n_documents"] == 395

    header, *rows = read_tsv(fitted.model.with_name("model.elbo.tsv").read_text())
    assert header == ELBO_COLUMNS
    assert [int(r[0]) for r in rows] == list(range(1, model.elbo_trace.size + 1))
    assert 2 <= len(rows) <= 5
    elbo = np.array([float(r[1]) for r in rows])
    np.testing.assert_array_equal(elbo, model.elbo_trace)
    assert np.all(np.diff(elbo) >= 0)

    progress = fitted.result.stderr.splitlines()
    assert progress[0].startswith(f"loaded {REUTERS}: 395 documents, 4258 terms, 84010 tokens")
    assert len([line for line in progress if line.startswith("iter ")]) == len(rows)
    assert progress[-1].startswith(f"wrote {fitted.model} and {fitted.model.with_name('model.elbo.tsv')}: "
                                   f"{len(rows)} iterations")


def test_fit_with_map_inference_writes_its_model_and_a_nondecreasing_log_posterior(tmp_path):
    model_path = tmp_path / "map.npz"
    result = fit_reuters(model_path, "--seed", 7, "--inference", "map", "--alpha", 0.2, "--max-iter", 8)
    assert result.exit_code == 0, result.stderr
    model = load_model(model_path)
    assert model.settings["inference"] == "map" and model.eta is None
    np.testing.assert_array_equal(model.alpha, 0.2)
    header, *rows = read_tsv(tmp_path.joinpath("map.elbo.tsv").read_text())
    assert header == ELBO_COLUMNS
    assert np.all(np.diff([float(r[1]) for r in rows]) >= 0)
    assert all(" log posterior " in line for line in result.stderr.splitlines() if line.startswith("iter "))
    inferred = ldaem("infer", REUTERS, "--vocab", REUTERS_VOCAB, "-m", model_path, "-o", tmp_path / "theta.tsv")
    assert inferred.exit_code == 0, inferred.stderr


@pytest.mark.parametrize("options", [("--method", "online"), ("--alpha", "estimate"), ("--alpha", "asymmetric"),
                                     ("--eta", "estimate")])
def test_map_inference_refuses_what_it_cannot_do_before_reading(tmp_path, options):
    result = fit_reuters(tmp_path / "m.npz", "--inference", "map", *options)
    assert result.exit_code == 2
    assert "--inference map works with --method batch, a fixed --alpha and a fixed --eta" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_map_inference_refuses_an_alpha_init(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--inference", "map", "--alpha-init", 0.3)
    assert result.exit_code == 2
    assert "--alpha-init starts an estimated alpha; --inference map holds it fixed: give --alpha" in result.stderr


@pytest.mark.parametrize("n_words", [1, 4])
def test_topics_text_has_one_line_per_topic_with_its_share_and_words(fitted, n_words):
    result = ldaem("topics", fitted.model, "-n", n_words)
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    expected = load_model(fitted.model).top_words(n_words)
    assert len(lines) == N_TOPICS
    shares = 0.0
    for k, line in enumerate(lines):
        match = re.fullmatch(rf"{k}  ([ \d]{{3}}\.\d)%  (\S+(?: \S+)*)", line)
        assert match, line
        shares += float(match[1])
        assert match[2].split(" ") == [w for w, _ in expected[k]]
    assert shares == pytest.approx(100, abs=0.05 * N_TOPICS)


def test_topics_json_lists_words_with_decreasing_probabilities(fitted):
    result = ldaem("topics", fitted.model, "-n", 6, "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    topics = json.loads(result.stdout)
    assert [t["topic"] for t in topics] == list(range(N_TOPICS))
    assert sum(t["share"] for t in topics) == pytest.approx(1.0)
    for topic in topics:
        probabilities = [w["probability"] for w in topic["words"]]
        assert len(probabilities) == 6
        assert probabilities == sorted(probabilities, reverse=True)


def test_topics_csv_has_a_row_per_topic_and_rank(fitted):
    result = ldaem("topics", fitted.model, "-n", 3, "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["topic", "rank", "word", "probability"]
    assert [(int(r["topic"]), int(r["rank"])) for r in rows] == [(k, r) for k in range(N_TOPICS) for r in (1, 2, 3)]
    expected = load_model(fitted.model).top_words(3)
    assert [r["word"] for r in rows] == [w for topic in expected for w, _ in topic]


def write_reuters_subset(path, lines):
    all_lines = REUTERS.read_text().splitlines()
    path.write_text("".join(all_lines[i] + "\n" for i in lines))
    return path


def test_infer_writes_one_row_per_document_in_input_order(fitted, tmp_path):
    forward = ldaem("infer", write_reuters_subset(tmp_path / "docs.dat", range(20)), "-m", fitted.model)
    backward = ldaem("infer", write_reuters_subset(tmp_path / "rev.dat", range(19, -1, -1)), "-m", fitted.model)
    assert forward.exit_code == backward.exit_code == 0
    header, *rows = read_tsv(forward.stdout)
    assert header == ["document"] + [f"topic_{k}" for k in range(N_TOPICS)]
    assert [r[0] for r in rows] == [str(i) for i in range(1, 21)]
    theta = np.array([[float(x) for x in r[1:]] for r in rows])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, atol=1e-5)
    theta_backward = np.array([[float(x) for x in r[1:]] for r in read_tsv(backward.stdout)[1:]])
    np.testing.assert_allclose(theta_backward[::-1], theta, rtol=1e-5)

    corpus = load_corpus(REUTERS, "ldac", REUTERS_VOCAB)
    library = LDA.from_model(load_model(fitted.model)).transform(corpus.X[:20])
    np.testing.assert_allclose(theta, library, rtol=1e-5, atol=1e-12)
    assert forward.stderr.splitlines()[0] == ("20 documents, 4258 terms, "
                                              f"{int(corpus.X[:20].sum())} tokens; "
                                              "dropped 0 tokens outside the model's vocabulary and 0 tokens of words unseen in training")


def test_infer_to_a_file_writes_what_it_would_print(fitted, tmp_path):
    docs = write_reuters_subset(tmp_path / "docs.dat", range(5))
    printed = ldaem("infer", docs, "-m", fitted.model, "-q")
    written = ldaem("infer", docs, "-m", fitted.model, "-q", "-o", tmp_path / "theta.tsv")
    assert written.exit_code == 0 and written.stdout == "" and written.stderr == ""
    assert (tmp_path / "theta.tsv").read_text() == printed.stdout
    assert len(read_tsv(printed.stdout)) == 6


def test_plain_text_end_to_end(tmp_path):
    titles = (CORPORA / "reuters" / "reuters.titles").read_text().splitlines()[:40]
    (tmp_path / "news.txt").write_text("".join(t.split(" ", 1)[1] + "\n" for t in titles))
    fitted = ldaem("fit", tmp_path / "news.txt", "-k", 3, "--max-iter", 5, "--seed", 1, "-o", tmp_path / "news.npz")
    assert fitted.exit_code == 0, fitted.stderr
    model = load_model(tmp_path / "news.npz")
    assert model.settings["corpus_format"] == "text" and "charles" in model.vocab
    alpha = np.array([0.2, 0.5, 1.3])                # uneven, so that the prior's proportions tell
    np.savez(tmp_path / "news.npz", **{**npz_arrays(tmp_path / "news.npz"), "alpha": alpha})

    known = titles[0].split(" ", 1)[1]            # "UK: Prince Charles spearheads British royal ..."
    (tmp_path / "new.txt").write_text(f"{known}\n\nzzzqx Charles blorfing royal\n")
    result = ldaem("infer", tmp_path / "new.txt", "-m", tmp_path / "news.npz")
    assert result.exit_code == 0
    header, *rows = read_tsv(result.stdout)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    theta = np.array([[float(x) for x in r[1:]] for r in rows])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(theta[1], alpha / alpha.sum(), rtol=1e-5)
    assert not np.allclose(theta[0], theta[1], rtol=1e-3)
    assert "3 documents" in result.stderr and ", 1 empty;" in result.stderr
    assert "; dropped 2 tokens outside the model's vocabulary and 0 tokens of words unseen in training" in result.stderr


def test_same_seed_gives_identical_models_and_threads_do_not_matter(fitted, tmp_path):
    one = fit_reuters(tmp_path / "one.npz", "--seed", 7, "--threads", 1, "-q")
    again = fit_reuters(tmp_path / "again.npz", "--seed", 7, "--threads", 1, "-q")
    two = fit_reuters(tmp_path / "two.npz", "--seed", 7, "--threads", 2, "-q")
    assert one.exit_code == again.exit_code == two.exit_code == 0
    assert one.stderr == ""                                              # --quiet
    first, second, threaded = (npz_arrays(tmp_path / f"{n}.npz") for n in ("one", "again", "two"))
    assert first.keys() == second.keys() == threaded.keys()
    for name in first:
        np.testing.assert_array_equal(second[name], first[name], strict=True)
        if name != "settings":                                           # settings record n_jobs
            np.testing.assert_array_equal(threaded[name], first[name], strict=True)
    shared = npz_arrays(fitted.model)                                    # seed 7, all threads
    np.testing.assert_array_equal(shared["topic_word"], first["topic_word"], strict=True)
    other_seed = fit_reuters(tmp_path / "other.npz", "--seed", 8, "-q")
    assert other_seed.exit_code == 0
    assert not np.allclose(npz_arrays(tmp_path / "other.npz")["topic_word"], first["topic_word"])


def console_script(*args, cwd):
    script = Path(sys.executable).parent / "ldaem"
    return subprocess.run([str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_installed_console_script_fits_and_shows_topics(tmp_path):
    shown = console_script("--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("Usage: ldaem [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  (\w+) ", shown.stdout.split("Commands:")[1], re.MULTILINE)
    assert {"fit", "infer", "topics"} <= set(listed)

    fitted = console_script("fit", REUTERS, "--vocab", REUTERS_VOCAB, "-k", 3, "--max-iter", 2, "--seed", 1,
                            cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    assert fitted.stdout == "" and "iter    1" in fitted.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.elbo.tsv", "model.npz"]
    shown = console_script("topics", "--format", "json", "-n", 4, cwd=tmp_path)
    assert shown.returncode == 0 and shown.stderr == ""
    assert [len(t["words"]) for t in json.loads(shown.stdout)] == [4, 4, 4]


@pytest.mark.parametrize("name", ["", *sorted(main.commands)])
def test_every_help_ends_with_an_example_block(name):
    result = ldaem(*([name] if name else []), "--help")
    assert result.exit_code == 0
    description = result.stdout.split("\nOptions:\n")[0].rstrip()
    *_, last_paragraph = description.split("\n\n")
    heading, *examples = last_paragraph.splitlines()
    assert heading == "  Example:"
    assert examples and all(line.startswith(f"      ldaem {name}".rstrip() + " ") for line in examples)


# Bad input: a one-line message, the right exit status, and nothing written.

def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def assert_refused(tmp_path, args, exit_code, message):
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = ldaem(*args)
    assert result.exit_code == exit_code
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert result.stdout == ""
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before      # no output, no temporary file


@pytest.fixture
def workdir(tmp_path, monkeypatch, fitted):
    """tmp_path as the current folder, holding a 5-word LDA-C corpus and a fitted model.npz."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vocab.txt").write_text("apple\nbanana\ncherry\ndate\nelder\n")
    shutil.copy(fitted.model, tmp_path / "model.npz")
    return tmp_path


@pytest.mark.parametrize("line,message", [
    pytest.param("3 4:x", "says 3 terms but has 1 id:count pairs", id="count-and-pair"),
    pytest.param("2 0:1", "says 2 terms but has 1 id:count pairs", id="count-disagrees"),
    pytest.param("1 4:x", "'4:x' is not id:count with non-negative integers", id="pair-not-numeric"),
    pytest.param("1 4:-2", "'4:-2' is not id:count with non-negative integers", id="negative-count"),
    pytest.param("1 5:1", "term id 5 is beyond the 5 terms of vocab.txt", id="id-beyond-vocab"),
    pytest.param("x 1:1", "expected the number of distinct terms, found 'x'", id="count-not-numeric"),
    pytest.param("\u00b2 1:1", "expected the number of distinct terms, found '\u00b2'", id="superscript-count"),
])
def test_malformed_ldac_line_is_named_by_file_and_line(workdir, line, message):
    (workdir / "docs.dat").write_text(f"2 0:1 1:2\n{line}\n")
    assert_refused(workdir, ["fit", "docs.dat", "--vocab", "vocab.txt", "-k", 2], 1, f"docs.dat:2: {message}")


@pytest.mark.parametrize("files,args,exit_code,message", [
    pytest.param({}, ["fit", "missing.txt"], 1, "missing.txt: no such file", id="missing-corpus"),
    pytest.param({"docs.dat": "1 0:1\n"}, ["fit", "docs.dat"], 1,
                 "docs.dat: LDA-C input needs its vocabulary file (--vocab, one term per line)", id="ldac-no-vocab"),
    pytest.param({"docs.dat": "1 0:1\n\n1 2:1\n"}, ["fit", "docs.dat", "--vocab", "vocab.txt"], 1,
                 "docs.dat:2: empty line (an empty document is written 0)", id="ldac-blank-line"),
    pytest.param({"docs.dat": b"1 0:1\n1 1:1 \xe9\n"}, ["fit", "docs.dat", "--vocab", "vocab.txt"], 1,
                 "docs.dat:2: byte 0xe9 at offset 12 is not valid utf-8 (choose another with --encoding)",
                 id="ldac-latin1"),
    pytest.param({"docs.txt": b"first line here\nthe caf\xe9 au lait\n"}, ["fit", "docs.txt"], 1,
                 "docs.txt:2: byte 0xe9 at offset 23 is not valid utf-8 (choose another with --encoding, "
                 "or --encoding-errors replace)", id="text-latin1"),
    pytest.param({"empty.txt": ""}, ["fit", "empty.txt"], 1, "empty.txt: holds no documents", id="empty-text"),
    pytest.param({"docs.txt": "some words\n"}, ["fit", "docs.txt", "--alpha", "banana"], 2,
                 "Invalid value for --alpha: 'banana' is not 'estimate', 'asymmetric' or a positive number",
                 id="alpha-banana"),
    pytest.param({"docs.txt": "some words\n"}, ["fit", "docs.txt", "--alpha", "-1"], 2,
                 "Invalid value for --alpha: '-1' is not 'estimate', 'asymmetric' or a positive number",
                 id="alpha-negative"),
    pytest.param({"docs.txt": "some words\n"}, ["fit", "docs.txt", "--alpha", "inf"], 2,
                 "Invalid value for --alpha: 'inf' is not 'estimate', 'asymmetric' or a positive number",
                 id="alpha-inf"),
    pytest.param({"docs.txt": "some words\n"}, ["fit", "docs.txt", "--stop-words", "nowhere.txt"], 2,
                 "Invalid value for --stop-words: 'nowhere.txt' is not 'english', 'none' or a file",
                 id="stop-words-missing"),
    pytest.param({"docs.txt": "some words\n"}, ["fit", "docs.txt", "--min-df", "banana"], 2,
                 "Invalid value for '--min-df': 'banana' is not a document count or fraction",
                 id="min-df-banana"),
    pytest.param({"fake.npz": b""}, ["topics", "fake.npz"], 1,
                 "fake.npz: not a readable .npz model file (not a zip archive)", id="model-empty-file"),
    pytest.param({"weights.npz": npz_bytes(weights=np.ones(3))}, ["topics", "weights.npz"], 1,
                 "weights.npz: not an ldaem model file (no format_version, topic_word, alpha, eta, vocab, "
                 "elbo_trace, topic_tokens, settings)", id="model-foreign-npz"),
    pytest.param({"docs.txt": "some words\n"}, ["infer", "docs.txt", "-m", "nomodel.npz", "-o", "theta.tsv"], 1,
                 "nomodel.npz: no such model file", id="infer-missing-model"),
    pytest.param({"docs.dat": "1 0:1\n1 99999:1\n"}, ["infer", "docs.dat", "-o", "theta.tsv"], 1,
                 "docs.dat:2: term id 99999 is beyond the 4258 terms of the model", id="infer-term-id"),
])
def test_bad_input_gets_one_line_and_no_output(workdir, files, args, exit_code, message):
    for name, content in files.items():
        (workdir / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_refused(workdir, args, exit_code, message)


def test_model_file_that_is_not_an_npz_is_called_unreadable(workdir):
    (workdir / "notes.npz").write_text("not a model\n")
    result = ldaem("topics", "notes.npz")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: notes.npz: not a readable .npz model file")


def test_zero_tolerance_runs_every_iteration(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--seed", 1, "--tol", 0, "--max-iter", 4)
    assert result.exit_code == 0, result.stderr
    assert load_model(tmp_path / "m.npz").elbo_trace.size == 4


def test_encoding_applies_to_a_file_without_extension(tmp_path):
    (tmp_path / "docs").write_bytes("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\ncaf\u00e9 noir\n".encode("latin-1"))
    result = ldaem("fit", tmp_path / "docs", "--encoding", "latin-1", "-k", 2, "--max-iter", 2,
                   "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.stderr
    assert "café" in load_model(tmp_path / "m.npz").vocab


def test_evaluate_reports_held_out_figures_as_a_table_and_as_json(tmp_path):
    lines = REUTERS.read_text().splitlines()
    (tmp_path / "train.ldac").write_text("\n".join(lines[:300]) + "\n")
    (tmp_path / "test.ldac").write_text("\n".join(lines[300:]) + "\n")
    fitted = ldaem("fit", tmp_path / "train.ldac", "--vocab", REUTERS_VOCAB, "-k", 4, "--max-iter", 10,
                   "--seed", 2, "-q", "-o", tmp_path / "m.npz")
    assert fitted.exit_code == 0, fitted.stderr
    args = ["evaluate", tmp_path / "m.npz", tmp_path / "test.ldac", "--train", tmp_path / "train.ldac"]
    report = json.loads(ldaem(*args, "--format", "json").stdout)
    X_test = load_corpus(tmp_path / "test.ldac", vocab=REUTERS_VOCAB).X
    held = report["heldout_documents"]
    assert held["documents"] == 95
    assert held["tokens"] + held["dropped_unseen_in_training"] == X_test.sum()
    assert held["dropped_unseen_in_training"] > 0          # words only the last 95 documents use
    bound = report["heldout_bound"]
    assert -10 < bound["bound_per_token"] < -6
    assert bound["perplexity"] == pytest.approx(np.exp(-bound["bound_per_token"]))
    assert len(report["topics"]) == 4
    table = ldaem(*args).stdout
    assert table.startswith("held-out documents: 95 documents")
    assert f"{bound['bound_per_token']:.4f}" in table
    corpus_format = ldaem(*args, "--format", "ldac")      # the corpus's format is --corpus-format
    assert corpus_format.exit_code == 2
    assert "'ldac' is not one of 'text', 'json' (the format of what is printed; the corpus's is " \
           "--corpus-format)" in corpus_format.stderr


def test_online_fit_logs_every_minibatch(tmp_path):
    result = ldaem("fit", REUTERS, "--vocab", REUTERS_VOCAB, "-k", 4, "--method", "online", "--eta", 0.1,
                   "--batch-size", 100, "--passes", 3, "--seed", 1, "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.stderr
    header, *rows = read_tsv((tmp_path / "m.elbo.tsv").read_text())
    assert len(rows) == 3 * 4                          # 395 documents in minibatches of 100, 3 passes
    model = load_model(tmp_path / "m.npz")
    assert model.eta == 0.1 and model.settings["learning_method"] == "online"
    assert "3 passes" in result.stderr.splitlines()[-1]


def test_fit_on_a_local_dask_cluster_gives_the_in_process_model(tmp_path):
    common = ["-k", 3, "--max-iter", 4, "--seed", 5, "-q"]
    alone = fit_reuters(tmp_path / "alone.npz", *common)
    cluster = fit_reuters(tmp_path / "cluster.npz", *common, "--workers", 2)
    assert alone.exit_code == 0 and cluster.exit_code == 0, cluster.stderr
    one, two = load_model(tmp_path / "alone.npz"), load_model(tmp_path / "cluster.npz")
    np.testing.assert_allclose(two.elbo_trace, one.elbo_trace, rtol=1e-8)
    np.testing.assert_allclose(two.topic_word, one.topic_word, rtol=1e-6, atol=1e-12)


def test_a_streamed_fit_logs_the_bound_of_a_held_out_file(tmp_path):
    lines = Path(REUTERS).read_text().splitlines(keepends=True)
    (tmp_path / "train.ldac").write_text("".join(lines[:300]))
    (tmp_path / "test.ldac").write_text("".join(lines[300:]))
    result = ldaem("fit", tmp_path / "train.ldac", "--vocab", REUTERS_VOCAB, "-k", 3, "--method", "online",
                   "--stream", "--batch-size", 50, "--passes", 2, "--heldout", tmp_path / "test.ldac",
                   "--eval-every", 3, "--seed", 2, "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.stderr
    rows = read_tsv((tmp_path / "m.elbo.tsv").read_text())[1:]
    scored = {int(row[0]): float(row[-1]) for row in rows if row[-1]}
    assert len(rows) == 12 and sorted(scored) == [3, 6, 9, 12]
    lda = LDA.from_model(load_model(tmp_path / "m.npz"))
    heldout = load_corpus(tmp_path / "test.ldac", vocab=REUTERS_VOCAB).X
    assert scored[12] == pytest.approx(lda.score(heldout) / heldout.sum(), rel=1e-9)     # logged to 10 digits
    share = ldaem("fit", tmp_path / "train.ldac", "--vocab", REUTERS_VOCAB, "--method", "online", "--stream",
                  "--heldout", 0.1, "-o", tmp_path / "s.npz")
    assert share.exit_code == 2 and "give a FILE of held-out documents" in share.stderr


def test_streamed_online_fit_on_a_local_dask_cluster_gives_the_in_process_model(tmp_path):
    common = ["-k", 3, "--method", "online", "--stream", "--batch-size", 100, "--passes", 2, "--seed", 5, "-q"]
    alone = fit_reuters(tmp_path / "alone.npz", *common)
    cluster = fit_reuters(tmp_path / "cluster.npz", *common, "--workers", 2)
    assert alone.exit_code == 0 and cluster.exit_code == 0, cluster.stderr
    one, two = load_model(tmp_path / "alone.npz"), load_model(tmp_path / "cluster.npz")
    np.testing.assert_allclose(two.elbo_trace, one.elbo_trace, rtol=1e-8)
    np.testing.assert_allclose(two.topic_word, one.topic_word, rtol=1e-8)


def test_topics_reads_a_model_without_compiling_anything(fitted):
    code = ("import sys; from ldaem.cli import main; sys.argv = ['ldaem', 'topics', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numba', 'sklearn', 'scipy') if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code, str(fitted.model)], capture_output=True, text=True)
    assert shown.stdout.splitlines()[-1] == "[]"


def test_a_closed_pipe_ends_topics_quietly(fitted):
    script = Path(sys.executable).parent / "ldaem"
    shown = subprocess.run(f"'{script}' topics '{fitted.model}' -n 200 | head -c 10", shell=True,
                           capture_output=True, text=True)
    assert len(shown.stdout) == 10
    assert "Error" not in shown.stderr and "Traceback" not in shown.stderr


def test_an_unexpected_error_is_one_line_unless_debug(fitted, monkeypatch):
    def broken(*args, **kwargs):             # the standard library failing in a way ldaem does not expect
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(json, "dumps", broken)
    quiet = CliRunner().invoke(main, ["topics", str(fitted.model), "--format", "json"])
    assert quiet.exit_code == 1
    assert quiet.stderr == ("Error: internal error: RuntimeError: disk on fire "
                            "(rerun with --debug for the traceback)\n")
    loud = CliRunner().invoke(main, ["--debug", "topics", str(fitted.model), "--format", "json"])
    assert isinstance(loud.exception, RuntimeError)


def test_verbose_adds_the_cause_and_place_of_an_error_but_no_traceback(fitted, tmp_path):
    broken = tmp_path / "broken.npz"
    whole = fitted.model.read_bytes()
    broken.write_bytes(whole[:100] + bytes(200) + whole[300:])       # a damaged first member
    plain = ldaem("topics", broken)
    verbose = ldaem("--verbose", "topics", broken)
    assert plain.exit_code == verbose.exit_code == 1
    assert len(plain.stderr.splitlines()) == 1
    first, *detail = verbose.stderr.splitlines()
    assert first == plain.stderr.rstrip("\n")
    assert detail[0].startswith("  caused by ")
    assert re.fullmatch(r"  raised in load_model \(model\.py:\d+\)", detail[-1])
    assert "Traceback" not in verbose.stderr


def test_verbose_says_what_was_read_decided_and_written(tmp_path):
    quiet = fit_reuters(tmp_path / "a.npz", "--max-iter", 2, "--seed", 1)
    loud = ldaem("-v", "fit", REUTERS, "--vocab", REUTERS_VOCAB, "-k", N_TOPICS, "--max-iter", 2,
                 "--seed", 1, "--threads", 1, "-o", tmp_path / "b.npz")
    assert loud.exit_code == 0, loud.stderr
    assert "ldaem:" not in quiet.stderr and "doc-iter" not in quiet.stderr
    said = [line for line in loud.stderr.splitlines() if line.startswith("ldaem: ")]
    assert said[0] == f"ldaem: {REUTERS}: read as ldac: 395 documents, 4258 terms, 84010 tokens, 60114 nonzero counts"
    assert re.fullmatch(r"ldaem: the fit needs about [0-9.]+ MiB; [0-9.]+ GiB is available", said[1])
    assert said[2] == "ldaem: E-step in this process on 1 threads"
    assert said[-1] == f"ldaem: wrote {tmp_path / 'b.npz'}: {N_TOPICS} topics over 4258 terms"
    iterations = [line for line in loud.stderr.splitlines() if line.startswith("iter ")]
    assert len(iterations) == 2 and all(re.search(r"doc-iter \d+\.\d ", line) for line in iterations)
    assert np.array_equal(load_model(tmp_path / "a.npz").topic_word, load_model(tmp_path / "b.npz").topic_word)


def test_eta_estimate_learns_the_smoothing_prior(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--eta", "estimate", "--alpha-burn-in", 2, "--max-iter", 8, "-q")
    assert result.exit_code == 0, result.stderr
    model = load_model(tmp_path / "m.npz")
    assert model.eta > 0 and model.eta != 1 / N_TOPICS
    assert np.all(np.diff(model.elbo_trace) >= -1e-10 * np.abs(model.elbo_trace[1:]))
    wrong = fit_reuters(tmp_path / "w.npz", "--eta", "auto")
    assert wrong.exit_code == 2 and "'auto' is neither 'estimate' nor a positive number" in wrong.stderr


def test_restarts_keep_and_log_the_fit_of_highest_elbo(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--restarts", 3, "--seed", 4)
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("restart ")][:3] == [
        "restart 1 of 3", "restart 2 of 3", "restart 3 of 3"]
    model = load_model(tmp_path / "m.npz")
    library = LDA(N_TOPICS, n_init=3, random_state=4, max_iter=5).fit(load_corpus(REUTERS, vocab=REUTERS_VOCAB).X)
    np.testing.assert_array_equal(model.topic_word, library.components_)
    assert model.elbo_trace[-1] == max(library.restart_bounds_)
    logged = read_tsv((tmp_path / "m.elbo.tsv").read_text())
    assert [float(row[1]) for row in logged[1:]] == model.elbo_trace.tolist()
    online = fit_reuters(tmp_path / "o.npz", "--restarts", 2, "--method", "online")
    assert online.exit_code == 2 and "--restarts works with --method batch" in online.stderr


def test_an_output_that_cannot_be_written_fails_before_the_fit(tmp_path):
    result = fit_reuters(tmp_path / "missing" / "model.npz")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'missing' / 'model.npz'}: cannot write there "
                             "(No such file or directory)\n")
    assert not (tmp_path / "missing").exists()


def test_init_from_a_model_of_the_same_vocabulary_or_a_clear_error(fitted, tmp_path):
    continued = fit_reuters(tmp_path / "again.npz", "--init", fitted.model, "--seed", 1, "-q")
    assert continued.exit_code == 0, continued.stderr
    first, again = load_model(fitted.model), load_model(tmp_path / "again.npz")
    assert again.elbo_trace[0] >= first.elbo_trace[-1] - 1e-3 * abs(first.elbo_trace[-1])
    wrong_k = fit_reuters(tmp_path / "k.npz", "--init", fitted.model, "-k", 7, "-q")
    assert wrong_k.exit_code == 1
    assert wrong_k.stderr == f"Error: {fitted.model}: has {N_TOPICS} topics, this fit asks for 7 (-k)\n"
    (tmp_path / "docs.txt").write_text("alpha beta gamma\nbeta gamma delta\n")
    other = ldaem("fit", tmp_path / "docs.txt", "-k", N_TOPICS, "--init", fitted.model, "-q",
                  "-o", tmp_path / "o.npz")
    assert other.stderr == f"Error: {fitted.model}: was fitted with another vocabulary than this corpus's\n"
    assert not (tmp_path / "o.npz").exists()


def test_select_compares_topic_counts_on_one_held_out_split(tmp_path):
    result = ldaem("select", REUTERS, "--vocab", REUTERS_VOCAB, "-k", "2,6", "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["topics"] for r in rows] == [2, 6]
    for r in rows:
        assert r["heldout_perplexity"] == pytest.approx(np.exp(-r["heldout_bound"]))
        assert -1 <= r["npmi"] <= 1 and r["umass"] < 0
    assert rows[1]["training_bound"] > rows[0]["training_bound"]   # more topics fit the training set better
    table = ldaem("select", REUTERS, "--vocab", REUTERS_VOCAB, "-k", "2,6", "-q").stdout.splitlines()
    assert table[1].split() == ["K", "iters", "train", "held-out", "perplexity", "completion", "umass", "npmi"]
    assert [line.split()[0] for line in table[2:]] == ["2", "6"]
    refused = ldaem("select", REUTERS, "--vocab", REUTERS_VOCAB, "-k", "5,x")
    assert refused.exit_code == 2 and "'5,x' is not a list of positive integers" in refused.stderr


@pytest.mark.parametrize("inference", ["map", "cvb0"])
def test_select_fits_each_k_with_the_inference_asked_for(inference):
    from ldaem.selection import split_documents
    result = ldaem("select", REUTERS, "--vocab", REUTERS_VOCAB, "-k", "4", "--inference", inference, "--format",
                   "json", "-q", "--seed", 2)
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    train, _ = split_documents(load_corpus(REUTERS, vocab=REUTERS_VOCAB).X, 0.1, 2)
    lda = LDA(4, random_state=2, inference=inference).fit(train)
    assert row["iterations"] == lda.n_iter_
    assert row["training_bound"] == pytest.approx(lda.iterations_[-1].elbo_per_token, rel=1e-12)


def test_export_gives_pyldavis_its_arguments(fitted, tmp_path):
    result = ldaem("export", fitted.model, REUTERS, "--vocab", REUTERS_VOCAB, "-o", tmp_path / "vis.json")
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "vis.json").read_text())
    corpus = load_corpus(REUTERS, vocab=REUTERS_VOCAB)
    topics = np.array(data["topic_term_dists"])
    doc_topic = np.array(data["doc_topic_dists"])
    assert topics.shape == (N_TOPICS, 4258) and doc_topic.shape == (395, N_TOPICS)
    np.testing.assert_allclose(topics.sum(axis=1), 1) and np.testing.assert_allclose(doc_topic.sum(axis=1), 1)
    assert data["doc_lengths"] == corpus.X.sum(axis=1).A1.astype(int).tolist()
    assert data["term_frequency"] == corpus.X.sum(axis=0).A1.astype(int).tolist()
    assert data["vocab"] == corpus.vocab.tolist()


def test_export_counts_the_tokens_of_terms_unseen_in_training(tmp_path):
    """pyLDAvis divides by term_frequency: a term only the exported documents use keeps its count,
    while the proportions are inferred, as infer's, without it."""
    (tmp_path / "train.ldac").write_text("".join(Path(REUTERS).read_text().splitlines(keepends=True)[:300]))
    assert ldaem("fit", tmp_path / "train.ldac", "--vocab", REUTERS_VOCAB, "-k", 3, "--max-iter", 3, "-q",
                 "-o", tmp_path / "m.npz").exit_code == 0
    exported = ldaem("export", tmp_path / "m.npz", REUTERS, "--vocab", REUTERS_VOCAB, "-o", tmp_path / "vis.json")
    assert exported.exit_code == 0, exported.stderr
    data = json.loads((tmp_path / "vis.json").read_text())
    corpus = load_corpus(REUTERS, vocab=REUTERS_VOCAB)
    assert data["term_frequency"] == corpus.X.sum(axis=0).A1.astype(int).tolist()
    assert data["doc_lengths"] == corpus.X.sum(axis=1).A1.astype(int).tolist()
    inferred = ldaem("infer", REUTERS, "--vocab", REUTERS_VOCAB, "-m", tmp_path / "m.npz", "-q")
    theta = np.array([[float(v) for v in row[1:]] for row in read_tsv(inferred.stdout)[1:]])
    np.testing.assert_allclose(np.array(data["doc_topic_dists"]), theta, rtol=1e-5)     # TSV: 6 digits


def test_fit_logs_the_bound_of_held_out_documents(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--heldout", 0.2, "--eval-every", 2, "--seed", 4, "--tol", 0)
    assert result.exit_code == 0, result.stderr
    assert "held-out" in [line for line in result.stderr.splitlines() if line.startswith("iter    2")][0]
    header, *rows = read_tsv((tmp_path / "m.elbo.tsv").read_text())
    logged = {int(r[0]): r[-1] for r in rows}
    assert [i for i, value in logged.items() if value] == [2, 4, 5]       # every 2nd, and the last
    assert all(-12 < float(logged[i]) < -6 for i in (2, 4, 5))
    assert load_model(tmp_path / "m.npz").settings["n_documents"] == 395 - 79
    refused = fit_reuters(tmp_path / "x.npz", "--heldout", 1.5)
    assert refused.exit_code == 2 and "'1.5' is neither a share in (0, 1) nor a file" in refused.stderr


def test_streamed_online_fit_gives_the_in_memory_online_model(tmp_path):
    common = ["-k", 3, "--method", "online", "--eta", 0.1, "--batch-size", 100, "--passes", 2, "--seed", 6, "-q"]
    loaded = fit_reuters(tmp_path / "loaded.npz", *common)
    streamed = fit_reuters(tmp_path / "streamed.npz", *common, "--stream")
    assert loaded.exit_code == 0 and streamed.exit_code == 0, streamed.stderr
    one, two = load_model(tmp_path / "loaded.npz"), load_model(tmp_path / "streamed.npz")
    np.testing.assert_array_equal(one.topic_word, two.topic_word)
    np.testing.assert_array_equal(one.elbo_trace, two.elbo_trace)
    assert two.settings["n_documents"] == 395
    refused = fit_reuters(tmp_path / "b.npz", "--stream")
    assert refused.exit_code == 2 and "--stream works with --method online" in refused.stderr


def test_a_corpus_without_tokens_is_refused_in_one_line(tmp_path):
    (tmp_path / "docs.dat").write_text("0\n0\n")
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    result = ldaem("fit", tmp_path / "docs.dat", "--vocab", tmp_path / "vocab.txt", "-o", tmp_path / "m.npz")
    assert result.exit_code == 1
    assert result.stderr.endswith(f"Error: {tmp_path / 'docs.dat'}: holds no tokens "
                                  "(every document is empty after filtering)\n")


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path):
    corpus = tmp_path / "docs.ldac"
    corpus.write_text("".join(Path(REUTERS).read_text().splitlines(keepends=True)[:20]))
    (tmp_path / "alias.ldac").symlink_to(corpus)
    before = corpus.read_text()
    assert fit_reuters(tmp_path / "m.npz").exit_code == 0
    for output, same in ((corpus, ""), (tmp_path / "alias.ldac", f" (the same file as {corpus})")):
        result = ldaem("infer", corpus, "--vocab", REUTERS_VOCAB, "-m", tmp_path / "m.npz", "-o", output)
        assert result.exit_code == 2
        assert f"Error: {output} is an input of this command{same}: write to another file" in result.stderr
    refit = ldaem("fit", tmp_path / "m.npz", "-o", tmp_path / "m.npz")
    assert refit.exit_code == 2 and "is an input of this command" in refit.stderr
    assert corpus.read_text() == before


def test_an_elbo_log_that_cannot_be_written_fails_before_the_fit(tmp_path):
    (tmp_path / "m.elbo.tsv").mkdir()
    result = fit_reuters(tmp_path / "m.npz")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'm.elbo.tsv'}: cannot write there (a folder)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.elbo.tsv"]


@pytest.mark.parametrize("options,message", [
    (("--method", "online", "--max-iter", 3, "--tol", 0.1),
     "--max-iter, --tol: for --method batch only (online EM runs --passes passes)"),
    (("--passes", 2, "--batch-size", 10), "--batch-size, --passes: for --method online only"),
    (("--inference", "cvb0", "--checkpoint-every", 2), "--checkpoint-every: restarts and CVB0 fits are not checkpointed"),
    (("--restarts", 2, "--checkpoint-every", 2), "--checkpoint-every: restarts and CVB0 fits are not checkpointed"),
    (("--eval-every", 2,), "--eval-every: for --heldout only"),
    (("--alpha", 0.3, "--alpha-init", 2, "--alpha-burn-in", 1),
     "--alpha-init, --alpha-burn-in: a fixed --alpha is not estimated (nor --eta)"),
    (("--alpha", 0.3, "--eta", "estimate", "--alpha-init", 2, "--alpha-burn-in", 1),   # the burn-in is eta's too
     "--alpha-init: a fixed --alpha is not estimated"),
])
def test_options_the_method_would_ignore_are_refused(tmp_path, options, message):
    result = ldaem("fit", REUTERS, "--vocab", REUTERS_VOCAB, "-o", tmp_path / "m.npz", *options)
    assert result.exit_code == 2 and f"Error: {message}" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_resume_refuses_a_corpus_or_settings_of_its_own(tmp_path):
    result = ldaem("fit", REUTERS, "--resume", tmp_path / "m.checkpoint.npz", "-k", 3, "-o", tmp_path / "x.npz")
    assert result.exit_code == 2
    assert ("--resume continues the checkpoint's fit with its own corpus and settings: give no "
            "--topics, --output, CORPUS") in result.stderr


@pytest.mark.parametrize("option", ["--tol", "--doc-tol", "--tau0", "--alpha-init"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_number_is_a_usage_error(tmp_path, option, value):
    result = fit_reuters(tmp_path / "m.npz", option, value)
    assert result.exit_code == 2 and f"'{value}' is not a finite number" in result.stderr


def test_select_on_too_few_documents_is_a_one_line_error(tmp_path):
    (tmp_path / "two.txt").write_text("apples bananas apples\ncherries dates\n")
    result = ldaem("select", tmp_path / "two.txt", "-k", 2, "-q")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'two.txt'}: none of the 1 held-out of its 2 documents has "
                             "two tokens of words that the others use, which document completion needs: "
                             "too few documents to compare numbers of topics (or hold out a larger share)\n")
    (tmp_path / "one.txt").write_text("apples bananas apples\n")
    result = ldaem("select", tmp_path / "one.txt", "-k", 2, "-q")
    assert result.stderr == (f"Error: {tmp_path / 'one.txt'}: comparing numbers of topics needs at least 2 "
                             "documents, not 1\n")


def test_a_scheduler_address_that_cannot_be_reached_is_a_one_line_error(tmp_path):
    result = fit_reuters(tmp_path / "m.npz", "--scheduler", "notaurl", "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the Dask scheduler at notaurl: ")
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("command", [["fit", REUTERS, "-o"], ["convert", REUTERS], ["report", "m.npz", "-o"]],
                         ids=["fit", "convert", "report"])
def test_standard_output_or_a_pipe_is_refused_where_a_command_writes_files(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = ldaem(*command, "-")
    assert result.exit_code == 2 and "'-' (standard output): this command writes a file, give a name" in result.stderr
    os.mkfifo(tmp_path / "pipe")          # as /dev/null: an ELBO log or vocabulary would go beside it
    result = ldaem(*command, tmp_path / "pipe")
    beside = "pipe is a device or pipe: this command writes files beside its output"
    assert (result.exit_code == 2 and beside in result.stderr) == (command[0] != "report")    # one file: fine
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]
