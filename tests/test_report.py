"""`ldaem report`: the HTML report of a real fit, rendered by headless Chromium, and its parts."""

import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from ldaem import report
from ldaem.cli import main
from ldaem.corpus import load_corpus
from ldaem.datasets import bundled_paths
from ldaem.evaluate import npmi_coherence, top_words, umass_coherence
from ldaem.model import TopicModel, load_model

REUTERS, REUTERS_VOCAB = bundled_paths("reuters")
N_TOPICS = 4
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium; .ci/run does)")


def ldaem(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A small real fit of the Reuters corpus, with a held-out curve in its ELBO log."""
    model = tmp_path_factory.mktemp("fit") / "reuters.npz"
    result = ldaem("fit", REUTERS, "--vocab", REUTERS_VOCAB, "-k", N_TOPICS, "--max-iter", 12, "--seed", 3,
                   "--heldout", 0.1, "--eval-every", 3, "-q", "-o", model)
    assert result.exit_code == 0, result.stderr
    return model


@pytest.fixture(scope="module")
def page(fitted, tmp_path_factory):
    """The report of that fit with coherence on the corpus: (path, HTML)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    result = ldaem("report", fitted, REUTERS, "--vocab", REUTERS_VOCAB, "-o", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    return path, path.read_text(encoding="utf-8")


def tiny_model(vocab, topic_tokens=(5.0, 3.0, 2.0)):
    topic_word = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05],
                           [0.05, 0.05, 0.5, 0.2, 0.1, 0.1],
                           [0.1, 0.1, 0.05, 0.05, 0.2, 0.5]])
    return TopicModel(topic_word=topic_word, alpha=np.full(3, 0.1), eta=None, vocab=np.array(vocab),
                      elbo_trace=np.array([-50.0, -45.0, -44.0]), topic_tokens=np.array(topic_tokens),
                      settings={"n_tokens": 10})


def run_chromium(tmp_path, *args):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=180, check=True)


# The page in a browser.

@needs_chromium
def test_chromium_shows_every_topic_with_its_top_words(fitted, page, tmp_path):
    path, _ = page
    dom = run_chromium(tmp_path, "--dump-dom", path.as_uri()).stdout
    expected = load_model(fitted).top_words(10)
    for k, words in enumerate(expected):
        card = re.search(rf'<figure class="topic" id="topic-{k}">(.*?)</figure>', dom, re.DOTALL)
        assert card, f"topic {k} is not on the page"
        shown = re.findall(r"<text[^>]*>([^<]*)</text>", card.group(1))     # the words, then their bars' labels
        assert shown == [w for w, _ in words] + [f" {p:.3f}" for _, p in words]
        row = re.search(rf"<tr><td>{k}</td>.*?<td class=\"words\">([^<]*)</td></tr>", dom)
        assert row.group(1) == " ".join(w for w, _ in words)
    assert dom.count("<svg") == N_TOPICS + 3          # ELBO curve, map, per-topic bars, one per topic


@needs_chromium
def test_chromium_screenshots_the_page(page, tmp_path):
    path, _ = page
    png = tmp_path / "report.png"
    run_chromium(tmp_path, "--hide-scrollbars", "--window-size=1000,1400", f"--screenshot={png}", path.as_uri())
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 1400)
    assert len(data) > 20_000                          # more than a blank page


# The page itself.

def test_the_page_is_self_contained(page):
    _, text = page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//|@import|<script|<link|<img", text, re.IGNORECASE)
    assert text.startswith("<!DOCTYPE html>") and "<?xml" not in text


def test_the_page_shows_the_curves_prevalence_and_coherence(fitted, page):
    _, text = page
    model = load_model(fitted)
    assert "training ELBO" in text and "held-out bound" in text and "Inter-topic map" in text
    top = top_words(model.topic_word_distribution(), 10)
    X = load_corpus(REUTERS, vocab=REUTERS_VOCAB).X
    umass, npmi = umass_coherence(top, X), npmi_coherence(top, X)
    shares = model.topic_tokens / model.topic_tokens.sum()
    for k in range(N_TOPICS):
        assert (f"<tr><td>{k}</td><td>{100 * shares[k]:.1f}%</td><td>{umass[k]:.2f}</td>"
                f"<td>{npmi[k]:.3f}</td>") in text
    assert "Coherence needs a corpus" not in text


def test_terms_are_escaped(tmp_path):
    vocab = ["<script>alert(1)</script>", "a&b", "$x^2$", "plain", "</svg>", "</table>"]
    text = report.build_report(tiny_model(vocab), title="<b>title</b>", top_n=6)
    assert "<script" not in text and "<b>title" not in text
    assert text.count("<svg") == text.count("</svg>") == 3 + 3          # three figures, three topics
    assert text.count("</table>") == 1
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3 + 3   # each topic's bars and row
    assert "a&amp;b" in text and "$x^2$" in text and "&lt;b&gt;title&lt;/b&gt;" in text


def test_without_corpus_or_log_the_page_says_what_is_missing():
    text = report.build_report(tiny_model(["a", "b", "c", "d", "e", "f"]), top_n=3)
    assert "Coherence needs a corpus" in text and "No ELBO log" in text
    assert "UMass coherence" not in text and "<th>UMass</th>" not in text


# Inter-topic distances and their map.

def test_hellinger_distances_match_their_definition():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(30), size=5)
    direct = np.array([[np.sqrt(max(1 - np.sum(np.sqrt(a * b)), 0)) for b in p] for a in p])
    np.testing.assert_allclose(report.hellinger_distances(p), direct, atol=1e-7)
    np.testing.assert_allclose(report.hellinger_distances(p)[0, 1],
                               np.linalg.norm(np.sqrt(p[0]) - np.sqrt(p[1])) / np.sqrt(2))


def test_classical_mds_reproduces_distances_of_points_in_the_plane():
    points = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 1.0], [-2.0, 0.5]])
    distance = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    mapped = report.classical_mds(distance)
    assert mapped.shape == (5, 2)
    np.testing.assert_allclose(np.linalg.norm(mapped[:, None, :] - mapped[None, :, :], axis=2), distance,
                               atol=1e-10)
    np.testing.assert_allclose(mapped.mean(axis=0), 0.0, atol=1e-12)


def test_classical_mds_of_one_or_two_topics():
    np.testing.assert_array_equal(report.classical_mds(np.zeros((1, 1))), np.zeros((1, 2)))
    mapped = report.classical_mds(np.array([[0.0, 0.6], [0.6, 0.0]]))
    assert np.linalg.norm(mapped[0] - mapped[1]) == pytest.approx(0.6)


# The ELBO log.

def test_read_fit_log_reads_the_heldout_curve(fitted):
    log = report.read_fit_log(fitted.with_name("reuters.elbo.tsv"))
    model = load_model(fitted)
    np.testing.assert_array_equal(log.iterations, np.arange(1, model.elbo_trace.size + 1))
    np.testing.assert_allclose(log.elbo * model.settings["n_tokens"], model.elbo_trace, rtol=1e-8)
    np.testing.assert_array_equal(log.heldout_iterations, [3, 6, 9, 12][:model.elbo_trace.size // 3])
    assert np.all(log.heldout_per_token < 0)
    assert report.read_fit_log(fitted.with_name("reuters.elbo.tsv"), model.elbo_trace).iterations.size == log.iterations.size
    for other in (model.elbo_trace[:-1], model.elbo_trace * (1 + 1e-9)):       # another fit's log
        with pytest.raises(report.ReportError, match="reuters.elbo.tsv: the ELBO log of another fit"):
            report.read_fit_log(fitted.with_name("reuters.elbo.tsv"), other)


def test_read_fit_log_without_heldout_and_malformed(tmp_path):
    path = tmp_path / "m.elbo.tsv"
    path.write_text("iteration\telbo\telbo_per_token\n1\t-10\t-9.5\n2\t-9\t-8.5\n")
    log = report.read_fit_log(path)
    assert list(log.elbo) == [-9.5, -8.5] and log.heldout_iterations.size == 0
    path.write_text("iteration\telbo\telbo_per_token\n1\t-10\t-9.5\n2\t-9\n")
    with pytest.raises(report.ReportError, match=r"m.elbo.tsv: line 3: not an iteration of an ELBO log"):
        report.read_fit_log(path)
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(report.ReportError, match="no iteration and elbo_per_token columns"):
        report.read_fit_log(path)


# Writing.

def test_the_report_is_written_atomically(tmp_path, monkeypatch):
    def broken(words):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report, "_words_figure", broken)
    target = tmp_path / "report.html"
    with pytest.raises(RuntimeError, match="drawing failed"):
        report.write_report(target, tiny_model(list("abcdef")))
    assert list(tmp_path.iterdir()) == []
    target.write_text("the earlier report")
    with pytest.raises(RuntimeError):
        report.write_report(target, tiny_model(list("abcdef")))
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert target.read_text() == "the earlier report"


# The command line.

def test_cli_without_corpus(fitted, tmp_path):
    out = tmp_path / "r.html"
    result = ldaem("report", fitted, "-o", out, "-n", 5)
    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "Coherence needs a corpus" in text and "held-out bound" in text
    assert text.count('<figure class="topic"') == N_TOPICS


def test_cli_default_output_name(fitted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ldaem("report", fitted).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_cli_without_the_log(fitted, tmp_path):
    alone = tmp_path / "alone.npz"
    shutil.copy(fitted, alone)
    result = ldaem("report", alone, "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No ELBO log" in text and "held-out bound" not in text

    result = ldaem("report", alone, "--log", tmp_path / "missing.tsv", "-o", tmp_path / "s.html")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: {tmp_path / 'missing.tsv'}: No such file or directory"
    assert not (tmp_path / "s.html").exists()


def test_cli_log_option(fitted, tmp_path):
    rows = [line.split("\t")[:3] for line in fitted.with_name("reuters.elbo.tsv").read_text().splitlines()]
    log = tmp_path / "own.tsv"                          # the fit's log without its held-out column
    log.write_text("".join("\t".join(row) + "\n" for row in rows))
    result = ldaem("report", fitted, "--log", log, "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.stderr
    assert "The fit logged no held-out bound" in (tmp_path / "r.html").read_text(encoding="utf-8")
    other = tmp_path / "other.tsv"
    other.write_text("iteration\telbo\telbo_per_token\n1\t-10\t-9.5\n2\t-9\t-8.5\n")
    result = ldaem("report", fitted, "--log", other, "-o", tmp_path / "o.html")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {other}: the ELBO log of another fit (its ELBO values are not the model's)\n"
    assert not (tmp_path / "o.html").exists()


def test_cli_without_matplotlib(fitted, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = ldaem("report", fitted, "-o", tmp_path / "r.html")
    assert result.exit_code == 1
    assert result.stderr == ("Error: the report needs matplotlib, which is not installed: "
                             "pip install 'ldaem[report]'\n")
    assert list(tmp_path.iterdir()) == []
