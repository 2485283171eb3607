"""Stopping a fit and continuing it: checkpoints, signals, resume, and a fit that goes non-finite."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from ldaem.checkpoint import load_checkpoint, save_checkpoint
from ldaem.cli import main
from ldaem.datasets import bundled_paths
from ldaem.errors import ModelFileError
from ldaem.lda import LDA, NumericalError
from ldaem.model import load_model, save_model

AP, AP_VOCAB = bundled_paths("ap")
SCRIPT = Path(sys.executable).parent / "ldaem"


def model_arrays(path):
    model = load_model(path)
    return model.topic_word, model.alpha, model.elbo_trace


@pytest.mark.parametrize("priors", [{}, {"topic_word_prior_update": "estimate", "doc_topic_prior_burn_in": 2},
                                    {"inference": "map"}])
def test_a_fit_stopped_by_its_callback_resumes_to_the_uninterrupted_model(reuters, tmp_path, priors):
    params = dict(n_components=6, random_state=2, max_iter=12, tol=0, **priors)
    whole = LDA(**params).fit(reuters.X)
    saved = {}

    def stop_after_five(record):
        if record.iteration == 5:
            save_checkpoint(tmp_path / "c.npz", first.fit_state(), {"note": "test"})
            return True
        return False

    first = LDA(**params, callback=stop_after_five)
    first.fit(reuters.X)
    assert first.stopped_ and first.n_iter_ == 5
    state, settings = load_checkpoint(tmp_path / "c.npz")
    assert settings == {"note": "test"} and state.gamma.shape == (reuters.X.shape[0], 6)
    assert [r.iteration for r in state.iterations] == [1, 2, 3, 4, 5]
    resumed = LDA(**params).fit(reuters.X, resume=state)
    assert resumed.n_iter_ == 12 and not resumed.stopped_
    np.testing.assert_array_equal(resumed.components_, whole.components_)
    np.testing.assert_array_equal(resumed.elbo_trace_, whole.elbo_trace_)
    np.testing.assert_array_equal(resumed.doc_topic_prior_, whole.doc_topic_prior_)
    assert resumed.topic_word_prior_ == whole.topic_word_prior_


def test_a_state_of_another_shape_is_refused(reuters):
    state = LDA(4, random_state=0, max_iter=2).fit(reuters.X).fit_state()
    with pytest.raises(ValueError, match="the state to resume has shapes"):
        LDA(5, random_state=0).fit(reuters.X, resume=state)


def test_a_non_finite_elbo_stops_the_fit_keeping_the_last_good_topics():
    X = sp.csr_matrix(np.array([[1e308, 1e308, 0.0], [0.0, 1.0, 2.0]]))
    lda = LDA(2, random_state=0, max_iter=5, init="random")
    with pytest.raises(NumericalError, match="iteration 1: the ELBO is"):
        lda.fit(X)
    assert np.all(np.isfinite(lda.components_)) and lda.n_iter_ == 0
    with pytest.raises(NumericalError, match="seeded start's topic-word counts overflow"):
        LDA(2, random_state=0, max_iter=5).fit(X)          # the default start: seeded, here


@pytest.mark.parametrize("number,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_iteration_writes_a_checkpoint_and_resume_ends_where_a_whole_fit_ends(
        tmp_path, number, status):
    fit = [str(SCRIPT), "fit", str(AP), "--vocab", str(AP_VOCAB), "-k", "8", "--seed", "3", "--tol", "0",
           "--max-iter", "40", "--threads", "2"]
    run = subprocess.Popen([*fit, "-o", str(tmp_path / "cut.npz")], stderr=subprocess.PIPE, text=True,
                           cwd=tmp_path)
    for line in run.stderr:
        if line.startswith("iter    3"):
            run.send_signal(number)
            break
    rest = run.stderr.read()
    assert run.wait(timeout=120) == status, rest
    checkpoint = tmp_path / "cut.checkpoint.npz"
    assert f"continue with: ldaem fit --resume {checkpoint}" in rest
    stopped_at = load_model(tmp_path / "cut.npz").elbo_trace.size
    assert 3 <= stopped_at < 40
    assert len(load_checkpoint(checkpoint)[0].iterations) == stopped_at

    resumed = subprocess.run([str(SCRIPT), "fit", "--resume", str(checkpoint)], capture_output=True,
                             text=True, cwd="/")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} after iteration {stopped_at}" in resumed.stderr
    assert not checkpoint.exists()                     # a finished fit needs no checkpoint
    whole = subprocess.run([*fit, "-q", "-o", str(tmp_path / "whole.npz")], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    for cut, uncut in zip(model_arrays(tmp_path / "cut.npz"), model_arrays(tmp_path / "whole.npz")):
        np.testing.assert_array_equal(cut, uncut)
    log = (tmp_path / "cut.elbo.tsv").read_text().splitlines()
    assert [int(row.split("\t")[0]) for row in log[1:]] == list(range(1, 41))


def test_resume_from_a_damaged_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "other.npz", topic_word=np.ones((2, 2)))
    save_model(tmp_path / "model.npz",
               LDA(2, max_iter=2, random_state=0).fit(sp.csr_matrix(np.eye(4) * 3)).to_model(list("abcd")))
    for name, message in (("c.npz", "not an ldaem checkpoint (not an .npz file)"),
                          ("other.npz", "not a readable ldaem checkpoint ('checkpoint_version')"),
                          ("model.npz", "a model file, not a checkpoint (NAME.checkpoint.npz, written beside "
                                        "the model)")):
        result = CliRunner().invoke(main, ["fit", "--resume", str(tmp_path / name)])
        assert result.exit_code == 1
        assert result.stderr == f"Error: {tmp_path / name}: {message}\n"
    with pytest.raises(ModelFileError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.npz")


def test_fit_without_a_corpus_or_a_checkpoint_is_a_usage_error():
    result = CliRunner().invoke(main, ["fit"])
    assert result.exit_code == 2
    assert "Missing argument 'CORPUS' (or give --resume CHECKPOINT)." in result.stderr


def test_a_fit_too_large_for_memory_is_one_line_naming_the_corpus(tmp_path):
    reuters, vocab = bundled_paths("reuters")
    result = CliRunner().invoke(main, ["fit", str(reuters), "--vocab", str(vocab), "-k", "5000000", "-q",
                                       "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {reuters}: fitting 5000000 topics to 395 documents")
    assert list(tmp_path.iterdir()) == []


def test_a_signal_stops_an_online_fit_after_its_update_and_writes_the_model(tmp_path):
    run = subprocess.Popen([str(SCRIPT), "fit", str(AP), "--vocab", str(AP_VOCAB), "-k", "8", "--seed", "3",
                            "--method", "online", "--batch-size", "20", "--passes", "5", "-o",
                            str(tmp_path / "cut.npz")], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    for line in run.stderr:
        if line.startswith("iter    3"):
            run.send_signal(signal.SIGINT)
            break
    rest = run.stderr.read()
    assert run.wait(timeout=120) == 130, rest
    updates = load_model(tmp_path / "cut.npz").elbo_trace.size
    assert f"interrupted after minibatch update {updates}: wrote {tmp_path / 'cut.npz'} (online fits are " \
           "not checkpointed)" in rest
    assert 3 <= updates < 20                               # of 5 passes of 113 updates
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.elbo.tsv", "cut.npz"]


def test_resume_refuses_a_corpus_changed_since_the_checkpoint(tmp_path):
    corpus = tmp_path / "ap.dat"
    lines = Path(AP).read_text().splitlines(keepends=True)
    corpus.write_text("".join(lines))
    run = subprocess.Popen([str(SCRIPT), "fit", str(corpus), "--vocab", str(AP_VOCAB), "-k", "8", "--seed", "3",
                            "--tol", "0", "--max-iter", "40", "-o", str(tmp_path / "cut.npz")],
                           stderr=subprocess.PIPE, text=True)
    for line in run.stderr:
        if line.startswith("iter    2"):
            run.send_signal(signal.SIGINT)
            break
    assert run.wait(timeout=120) == 130, run.stderr.read()
    corpus.write_text("".join([lines[1], lines[0], *lines[2:]]))     # the same documents, reordered
    resumed = subprocess.run([str(SCRIPT), "fit", "--resume", str(tmp_path / "cut.checkpoint.npz")],
                             capture_output=True, text=True)
    assert resumed.returncode == 1
    assert resumed.stderr.endswith(f"Error: {corpus}: its documents or terms are not those the checkpoint "
                                   f"{tmp_path / 'cut.checkpoint.npz'} was made from: the corpus changed since\n")


@pytest.mark.parametrize("method", [["--tol", "0", "--max-iter", "40"], ["--method", "online", "--batch-size", "50"]],
                         ids=["batch", "online"])
def test_ctrl_c_to_the_process_group_stops_a_fit_on_local_dask_workers(tmp_path, method):
    """A terminal's Ctrl-C signals the whole process group: the local cluster's workers too, which
    must live on until the fit that owns them has written its model."""
    run = subprocess.Popen([str(SCRIPT), "fit", str(AP), "--vocab", str(AP_VOCAB), "-k", "8", "--seed", "3",
                            "--workers", "2", *method, "-o", str(tmp_path / "cut.npz")],
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in run.stderr:
        if line.startswith("iter    3"):
            os.killpg(run.pid, signal.SIGINT)
            break
    rest = run.stderr.read()
    assert run.wait(timeout=120) == 130, rest
    assert "interrupted after" in rest and 3 <= load_model(tmp_path / "cut.npz").elbo_trace.size < 20
    assert (tmp_path / "cut.checkpoint.npz").exists() == ("online" not in method)


def test_resume_from_elsewhere_with_relative_paths_and_other_threads(tmp_path):
    """Every file the fit reads is kept absolute in the checkpoint; where it runs (threads) may change."""
    lines = Path(AP).read_text().splitlines(keepends=True)
    (tmp_path / "train.dat").write_text("".join(lines[:2000]))
    (tmp_path / "ho.dat").write_text("".join(lines[2000:]))
    run = subprocess.Popen([str(SCRIPT), "fit", "train.dat", "--vocab", str(AP_VOCAB), "-k", "8", "--seed", "3",
                            "--tol", "0", "--max-iter", "40", "--heldout", "ho.dat", "--eval-every", "2",
                            "--threads", "2", "-o", "cut.npz"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    for line in run.stderr:
        if line.startswith("iter    3"):
            run.send_signal(signal.SIGINT)
            break
    assert run.wait(timeout=120) == 130, run.stderr.read()
    resumed = subprocess.run([str(SCRIPT), "fit", "--resume", str(tmp_path / "cut.checkpoint.npz"), "--threads", "1"],
                             capture_output=True, text=True, cwd="/")
    assert resumed.returncode == 0, resumed.stderr
    rows = (tmp_path / "cut.elbo.tsv").read_text().splitlines()[1:]
    scored = [int(row.split("\t")[0]) for row in rows if row.split("\t")[-1]]
    assert len(rows) == 40 and scored[-10:] == list(range(22, 41, 2))     # ho.dat, read from "/"


def test_checkpoint_paths_are_absolute_but_shares_and_names_stay_as_given(tmp_path, monkeypatch):
    from ldaem.cli import _absolute_paths
    monkeypatch.chdir(tmp_path)
    for name in ("0.1", "random", "english", "ho.dat"):
        (tmp_path / name).write_text("")          # files that happen to share a share's or a name's spelling
    options = {"corpus": "c.dat", "heldout": "0.1", "init": "random", "stop_words": "english", "seed": 3}
    assert _absolute_paths(options) == {**options, "corpus": str(tmp_path / "c.dat")}
    assert _absolute_paths({"heldout": "ho.dat", "init": "m.npz"}) == {"heldout": str(tmp_path / "ho.dat"),
                                                                       "init": str(tmp_path / "m.npz")}
