"""A self-contained HTML report of a fitted model (`ldaem report`): the ELBO curve, each topic's top
words, prevalence and coherence, and a map of the distances between topics.

matplotlib (the `report` extra) is imported by the drawing functions only, so the rest of ldaem never
needs it. Figures are drawn without pyplot on an Agg canvas and embedded as inline SVG whose text
stays text: the page needs no network, and its words can be searched in the browser.
"""

import csv
import html
import io
import string

import numpy as np

from ldaem.errors import LdaemError
from ldaem.evaluate import npmi_coherence, top_words, umass_coherence
from ldaem.fileio import atomic_output
from ldaem.records import OBJECTIVE_NAMES

INSTALL_HINT = "pip install 'ldaem[report]'"

# matplotlib settings of every figure: text as SVG text (not glyph outlines), never read as
# mathtext (a term may hold '$'), and the same SVG for the same model (fixed ids, no date).
_STYLE = {"svg.fonttype": "none", "text.parse_math": False, "svg.hashsalt": "ldaem", "font.size": 9,
          "axes.spines.top": False, "axes.spines.right": False}
_SVG_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
_BAR_COLOUR = "#4878a8"
_HELDOUT_COLOUR = "#c8553d"


class ReportError(LdaemError, ValueError):
    """The report cannot be made: matplotlib is not installed, or the ELBO log is malformed."""


class FitLog:
    """The curves of a fit: the training ELBO by iteration (in `unit`), and the held-out bound per
    token at the iterations it was evaluated (empty when it was not)."""

    def __init__(self, iterations, elbo, unit, heldout_iterations=(), heldout_per_token=()):
        self.iterations, self.elbo, self.unit = np.asarray(iterations), np.asarray(elbo), unit
        self.heldout_iterations = np.asarray(heldout_iterations)
        self.heldout_per_token = np.asarray(heldout_per_token)


class Coherence:
    """UMass and NPMI coherence (ldaem.evaluate) of each topic's top words on the corpus `corpus`."""

    def __init__(self, umass, npmi, corpus):
        self.umass, self.npmi, self.corpus = np.asarray(umass), np.asarray(npmi), corpus


def require_matplotlib():
    """Import matplotlib, or raise a ReportError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(f"the report needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    return matplotlib


def read_fit_log(path, model_elbo=None):
    """The FitLog of an ELBO log written by `ldaem fit` (NAME.elbo.tsv), in nats per token; given
    model_elbo (a model's elbo_trace), a log whose ELBO values are not those is refused."""
    with open(path, encoding="utf-8", newline="") as f:
        try:
            reader = csv.DictReader(f, delimiter="\t")
            columns = set(reader.fieldnames or ())
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as e:
            raise ReportError(f"{path}: not an ELBO log of ldaem fit ({e})") from None
    if not {"iteration", "elbo_per_token"} <= columns:
        raise ReportError(f"{path}: not an ELBO log of ldaem fit (no iteration and elbo_per_token columns)")
    if not rows:
        raise ReportError(f"{path}: the ELBO log has no iterations")
    iterations, elbo, heldout = [], [], []
    for line, row in enumerate(rows, 2):
        try:
            iterations.append(int(row["iteration"]))
            elbo.append(float(row["elbo_per_token"]))
            if row.get("heldout_per_token"):
                heldout.append((iterations[-1], float(row["heldout_per_token"])))
        except (TypeError, ValueError):
            raise ReportError(f"{path}: line {line}: not an iteration of an ELBO log") from None
    if model_elbo is not None and "elbo" in columns and not (
            len(rows) == len(model_elbo)
            and np.allclose([float(row["elbo"]) for row in rows], model_elbo, rtol=1e-12, atol=0)):
        raise ReportError(f"{path}: the ELBO log of another fit (its ELBO values are not the model's)")
    heldout_iterations, heldout_per_token = zip(*heldout) if heldout else ((), ())
    return FitLog(iterations, elbo, "nats per token", heldout_iterations, heldout_per_token)


def model_curve(model):
    """A FitLog from the model's own ELBO trace: per token when the model knows its training
    tokens, else in nats; no held-out curve."""
    n_tokens = model.settings.get("n_tokens")
    iterations = np.arange(1, model.elbo_trace.size + 1)
    if n_tokens:
        return FitLog(iterations, model.elbo_trace / n_tokens, "nats per token")
    return FitLog(iterations, model.elbo_trace, "nats")


def corpus_coherence(model, X, top_n, corpus):
    """Coherence of each topic's top_n words on the documents X (counted with the model's vocabulary)."""
    top = top_words(model.topic_word_distribution(), top_n)
    return Coherence(umass_coherence(top, X), npmi_coherence(top, X), corpus)


def hellinger_distances(topic_word):
    """K x K Hellinger distances sqrt(1 - sum_w sqrt(p(w|k) p(w|j))) between topics (rows on the simplex)."""
    roots = np.sqrt(topic_word)
    distance = np.sqrt(np.maximum(1.0 - roots @ roots.T, 0.0))
    np.fill_diagonal(distance, 0.0)
    return distance


def classical_mds(distance, dimensions=2):
    """n x dimensions points whose Euclidean distances approximate `distance` (classical MDS).

    With J = I - 11'/n, B = -1/2 J D^2 J is the Gram matrix of the centred points when the
    distances are Euclidean; the points are B's top eigenvectors scaled by the square roots of their
    eigenvalues (negative ones count as 0). Hellinger distances are Euclidean: H(p, q) is
    |sqrt(p) - sqrt(q)| / sqrt(2). Each axis is signed so that its largest coordinate is positive.
    """
    n = distance.shape[0]
    centring = np.eye(n) - 1.0 / n
    gram = -0.5 * centring @ np.square(distance) @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dimensions]
    points = vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))
    largest = points[np.abs(points).argmax(axis=0), np.arange(points.shape[1])]
    points *= np.where(largest < 0, -1.0, 1.0)
    return np.pad(points, ((0, 0), (0, dimensions - points.shape[1])))


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure):
    """The figure as an <svg> element to place in HTML (no XML prolog, no metadata)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _elbo_figure(log):
    figure = _figure(5.4, 3.4)
    axes = figure.add_subplot()
    axes.plot(log.iterations, log.elbo, color=_BAR_COLOUR, label="training ELBO")
    if log.heldout_iterations.size:
        axes.plot(log.heldout_iterations, log.heldout_per_token, "o-", color=_HELDOUT_COLOUR, markersize=3,
                  label="held-out bound")
    axes.set(xlabel="iteration", ylabel=log.unit, title="ELBO over iterations")
    axes.legend(frameon=False, loc="lower right")
    return figure


def _map_figure(points, shares):
    """Topics at their MDS positions, bubble area proportional to prevalence, labelled by number."""
    figure = _figure(5.4, 3.4)
    axes = figure.add_subplot()
    axes.scatter(points[:, 0], points[:, 1], s=3000 * shares / shares.max(), color=_BAR_COLOUR, alpha=0.35,
                 edgecolors=_BAR_COLOUR, linewidths=0.8)
    for k, (x, y) in enumerate(points):
        axes.annotate(str(k), (x, y), ha="center", va="center", fontsize=8)
    axes.set_aspect("equal", adjustable="datalim")
    axes.margins(0.18)
    axes.set(xlabel="MDS axis 1", ylabel="MDS axis 2", title="Inter-topic map (Hellinger distance)")
    return figure


def _per_topic_figure(shares, coherence):
    """Bars by topic number: prevalence, and UMass and NPMI coherence when there are scores."""
    panels = [(100 * shares, "% of training tokens", "Prevalence")]
    if coherence is not None:
        panels += [(coherence.umass, "UMass", "UMass coherence"), (coherence.npmi, "NPMI", "NPMI coherence")]
    figure = _figure(3.6 * len(panels), 2.6)
    topics = np.arange(shares.size)
    for position, (values, ylabel, title) in enumerate(panels, 1):
        axes = figure.add_subplot(1, len(panels), position)
        axes.bar(topics, values, color=_BAR_COLOUR)
        axes.axhline(0, color="black", linewidth=0.6)
        axes.set(xlabel="topic", ylabel=ylabel, title=title)
        axes.xaxis.get_major_locator().set_params(integer=True)
    return figure


def _words_figure(words):
    """A topic's top words as horizontal bars of their probabilities, the most probable on top."""
    terms, probabilities = zip(*words)
    figure = _figure(3.4, 0.15 + 0.19 * len(words))
    axes = figure.add_subplot()
    rows = np.arange(len(words))
    axes.barh(rows, probabilities, color=_BAR_COLOUR)
    for row, p in zip(rows, probabilities):
        axes.text(p, row, f" {p:.3f}", va="center", fontsize=7)
    axes.set_yticks(rows, terms)
    axes.set_ylim(len(words) - 0.5, -0.5)
    axes.set_xlim(0, 1.3 * max(probabilities))
    axes.xaxis.set_visible(False)           # each bar is labelled with its probability
    axes.spines["bottom"].set_visible(False)
    return figure


_PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1180px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin: 1.4em 0 0.4em; border-bottom: 1px solid #ddd; }
.facts { color: #555; margin: 0; }
.note { background: #f6f3e8; border-left: 3px solid #c9b458; padding: 0.3em 0.7em; margin: 0.4em 0; }
.row { display: flex; flex-wrap: wrap; gap: 1em; }
.row > div { flex: 1 1 480px; }
svg { max-width: 100%; height: auto; }
.topics { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 0.4em 1em; }
.topic { margin: 0; }
.topic figcaption { font-size: 0.9em; }
.topic .scores { color: #666; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; text-align: right; border-bottom: 1px solid #eee; }
td.words, th.words { text-align: left; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="facts">$facts</p>
$notes
<h2>Fit and topics</h2>
<div class="row"><div>$elbo</div><div>$map</div></div>
$per_topic
<h2>Top words of each topic</h2>
<div class="topics">
$cards
</div>
<h2>Topics</h2>
$table
</body>
</html>
""")


def _number(value, spec):
    return "-" if value is None else format(value, spec)


def _facts(model, log):
    settings = model.settings
    parts = [f"{model.n_topics} topics", f"{model.topic_word.shape[1]:,} terms"]
    if settings.get("n_documents"):
        parts.append(f"{settings['n_documents']:,} training documents")
    if settings.get("n_tokens"):
        parts.append(f"{settings['n_tokens']:,.0f} tokens")
    parts.append(f"{model.elbo_trace.size} iterations")
    objective = OBJECTIVE_NAMES[settings.get("inference", "variational")]
    parts.append(f"final {objective} {_number(log.elbo[-1] if log.elbo.size else None, '.4f')} {log.unit}")
    if log.heldout_per_token.size:
        parts.append(f"held-out bound {log.heldout_per_token[-1]:.4f} nats per token")
    parts.append(f"mean alpha {model.alpha.mean():.3g}")
    if settings.get("seed") is not None:
        parts.append(f"seed {settings['seed']}")
    return " · ".join(html.escape(str(part)) for part in parts)


def _notes(log, from_model, coherence):
    notes = []
    if from_model:
        notes.append("No ELBO log of the fit (NAME.elbo.tsv beside the model): the curve is the ELBO "
                     "stored in the model, without a held-out curve.")
    elif not log.heldout_iterations.size:
        notes.append("The fit logged no held-out bound (ldaem fit --heldout 0.1 logs one).")
    if coherence is None:
        notes.append("Coherence needs a corpus: ldaem report MODEL CORPUS -o report.html computes UMass "
                     "and NPMI coherence on its documents.")
    else:
        notes.append(f"Coherence of each topic's top words on the documents of {coherence.corpus}: UMass "
                     "(Mimno et al. 2011) and NPMI (Bouma 2009), higher is better.")
    return "\n".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)


def _coherence_text(coherence, k):
    if coherence is None:
        return ""
    return f'<br><span class="scores">UMass {coherence.umass[k]:.1f} · NPMI {coherence.npmi[k]:.3f}</span>'


def _cards(top, shares, coherence):
    return "\n".join(
        f'<figure class="topic" id="topic-{k}"><figcaption><b>Topic {k}</b> · {100 * shares[k]:.1f}% of '
        f"tokens{_coherence_text(coherence, k)}</figcaption>{_svg(_words_figure(words))}</figure>"
        for k, words in enumerate(top))


def _table(top, shares, coherence):
    columns = ["topic", "share"] + (["UMass", "NPMI"] if coherence is not None else [])
    head = "".join(f"<th>{c}</th>" for c in columns) + '<th class="words">top words</th>'
    rows = []
    for k, words in enumerate(top):
        cells = [str(k), f"{100 * shares[k]:.1f}%"]
        if coherence is not None:
            cells += [f"{coherence.umass[k]:.2f}", f"{coherence.npmi[k]:.3f}"]
        terms = html.escape(" ".join(term for term, _ in words))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f'<td class="words">{terms}</td></tr>')
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def build_report(model, title="ldaem report", log=None, coherence=None, top_n=10):
    """The report of a TopicModel as one self-contained HTML page (a string).

    log: the FitLog of the fit (read_fit_log), else the model's own ELBO trace is drawn;
    coherence: a Coherence of the topics' top_n words (corpus_coherence), else the page says that
    coherence needs a corpus.
    """
    matplotlib = require_matplotlib()
    from_model = log is None
    log = model_curve(model) if from_model else log
    shares = model.topic_shares()
    top = model.top_words(top_n)
    with matplotlib.rc_context(_STYLE):
        figures = {
            "elbo": _svg(_elbo_figure(log)),
            "map": _svg(_map_figure(classical_mds(hellinger_distances(model.topic_word_distribution())),
                                    shares)),
            "per_topic": _svg(_per_topic_figure(shares, coherence)),
            "cards": _cards(top, shares, coherence),
        }
    return _PAGE.substitute(title=html.escape(title), facts=_facts(model, log),
                            notes=_notes(log, from_model, coherence), table=_table(top, shares, coherence),
                            **figures)


def write_report(path, model, **options):
    """Build the report of model (options: those of build_report) and write it to path atomically."""
    page = build_report(model, **options)
    with atomic_output(path) as f:
        f.write(page)
