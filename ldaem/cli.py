"""The `ldaem` command: load -> estimator -> write or format. Library errors become one-line errors."""

import csv
import functools
import io
import json
import math
import secrets
import sys
import time
from pathlib import Path

import click

from ldaem.errors import LdaemError
from ldaem.fileio import atomic_output


def _user_errors(command):
    """Turn ldaem's own errors into click's one-line 'Error: ...' and exit status 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LdaemError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
    return wrapper


class Progress:
    """Progress lines on stderr, silenced by --quiet; stdout carries only results."""

    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            click.echo(message, err=True)


def _corpus_options(command):
    """Options shared by every command that reads a corpus."""
    options = [
        click.option("--format", "corpus_format", type=click.Choice(["text", "ldac"]),
                     help="Corpus format (default: by extension, then by content)."),
        click.option("--vocab", type=click.Path(dir_okay=False),
                     help="Vocabulary file of an LDA-C corpus, one term per line."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the input."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _number(text):
    """'5' -> 5 (a document count), '0.5' -> 0.5 (a fraction of documents)."""
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def elbo_log_path(model_path):
    """Where the per-iteration ELBO log of a model file goes: model.npz -> model.elbo.tsv."""
    model_path = Path(model_path)
    stem = model_path.name[:-4] if model_path.name.endswith(".npz") else model_path.name
    return model_path.with_name(stem + ".elbo.tsv")


@click.group()
@click.version_option(package_name="ldaem")
def main():
    """Find the topics of a collection of documents with latent Dirichlet allocation,
    fitted by variational EM.

    \b
    Example:
        ldaem fit corpus.txt -k 20        # writes model.npz and model.elbo.tsv
        ldaem topics model.npz            # the top words of each topic
        ldaem infer new_docs.txt          # topic proportions of new documents
    """


@main.command()
@click.argument("corpus", type=click.Path(dir_okay=False))
@_corpus_options
@click.option("-k", "--topics", "n_topics", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of topics.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="model.npz", show_default=True,
              help="Model file to write; the ELBO log goes beside it (NAME.elbo.tsv).")
@click.option("--alpha", default="estimate", show_default=True,
              help="Dirichlet prior on topic proportions: 'estimate' (one shared alpha, "
                   "Newton-Raphson, as lda-c), 'asymmetric' (one per topic), or a fixed number.")
@click.option("--alpha-init", type=click.FloatRange(min=0, min_open=True),
              help="Starting alpha when it is estimated (default 0.5).")
@click.option("--alpha-burn-in", type=click.IntRange(min=0), default=10, show_default=True,
              help="EM iterations before alpha is first estimated.")
@click.option("--eta", type=click.FloatRange(min=0, min_open=True),
              help="Smooth the topics with a Dirichlet(eta) prior (default: maximum likelihood).")
@click.option("--max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most EM iterations.")
@click.option("--tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Stop when the relative ELBO change falls below this.")
@click.option("--doc-max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most E-step iterations per document.")
@click.option("--doc-tol", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="E-step stops a document when its gamma changes less than this (mean absolute).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: a fresh one, stored in the model).")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@click.option("--stop-words", default="english", show_default=True,
              help="Raw text: 'english', 'none', or a file of stop words, one per line.")
@click.option("--min-df", default="1", show_default=True,
              help="Raw text: drop terms in fewer documents than this (a count, or a fraction if < 1.0).")
@click.option("--max-df", default="1.0", show_default=True,
              help="Raw text: drop terms in more documents than this (a fraction, or a count).")
@click.option("--max-features", type=click.IntRange(min=1), help="Raw text: keep only the most frequent terms.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@_user_errors
def fit(corpus, corpus_format, vocab, encoding, n_topics, output, alpha, alpha_init, alpha_burn_in,
        eta, max_iter,
        tol, doc_max_iter, doc_tol, seed, threads, stop_words, min_df, max_df, max_features, quiet):
    """Fit K topics to CORPUS by variational EM and write the model.

    CORPUS is plain text (one document per line) or LDA-C (`N id:count ...` per line, with
    --vocab). Every EM iteration logs its ELBO on stderr and in NAME.elbo.tsv beside the model.

    \b
    Example:
        ldaem fit corpora/ap/ap.dat --vocab corpora/ap/vocab.txt -k 20 -o ap.npz
        ldaem fit abstracts.txt -k 50 --min-df 5 --max-df 0.5 --seed 1
    """
    from ldaem.corpus import TextSettings, load_corpus
    from ldaem.lda import LDA
    from ldaem.model import save_model

    say = Progress(quiet)
    prior_update, fixed_alpha = _parse_alpha(alpha)
    text_settings = TextSettings(stop_words=_stop_words(stop_words), min_df=_number(min_df),
                                 max_df=_number(max_df), max_features=max_features)
    started = time.perf_counter()
    data = load_corpus(corpus, corpus_format, vocab, text_settings, encoding=encoding)
    say(f"loaded {corpus}: {data.describe()} ({time.perf_counter() - started:.1f}s)")
    seed = secrets.randbelow(2**31) if seed is None else seed
    logger = _IterationLogger(say, max_iter, tol, data.n_tokens)
    lda = LDA(n_components=n_topics, doc_topic_prior=fixed_alpha or alpha_init,
              doc_topic_prior_update=prior_update, doc_topic_prior_burn_in=alpha_burn_in,
              topic_word_prior=eta, max_iter=max_iter,
              tol=tol, max_doc_update_iter=doc_max_iter, mean_change_tol=doc_tol,
              random_state=seed, n_jobs=threads, callback=logger)
    lda.fit(data.X)
    settings = {"corpus": str(corpus), "corpus_format": data.format, "seed": seed,
                "text_settings": data.text_settings, "n_documents": data.X.shape[0],
                "n_tokens": data.n_tokens}
    save_model(output, lda.to_model(data.vocab, settings))
    log_path = elbo_log_path(output)
    with atomic_output(log_path) as f:
        f.write(logger.tsv())
    say(f"wrote {output} and {log_path}: {lda.n_iter_} iterations, ELBO {lda.bound_:.6g} "
        f"({lda.iterations_[-1].elbo_per_token:.4f} per token) in {time.perf_counter() - started:.1f}s")


def _parse_alpha(text):
    """--alpha: ('symmetric', None), ('asymmetric', None) or ('fixed', value)."""
    if text == "estimate":
        return "symmetric", None
    if text == "asymmetric":
        return "asymmetric", None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"{text!r} is not 'estimate', 'asymmetric' or a positive number",
                                 param_hint="--alpha")
    return "fixed", value


def _stop_words(text):
    if text == "none":
        return None
    if text == "english":
        return "english"
    path = Path(text)
    if not path.is_file():
        raise click.BadParameter(f"{text!r} is not 'english', 'none' or a file", param_hint="--stop-words")
    return sorted({line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()})


class _IterationLogger:
    """Receives each EM iteration: prints a progress line and keeps the rows of the ELBO log."""

    COLUMNS = ("iteration", "elbo", "elbo_per_token", "relative_change", "alpha", "seconds",
               "doc_iterations")

    def __init__(self, say, max_iter, tol, n_tokens):
        self.say, self.max_iter, self.tol = say, max_iter, tol
        self.records = []

    def __call__(self, record):
        self.records.append(record)
        self.say(f"iter {record.iteration:4d}  ELBO {record.elbo:.8g}  {record.elbo_per_token:.4f}/token  "
                 f"change {record.relative_change:.2e}  alpha {record.alpha:.4g}  "
                 f"{record.seconds:.2f}s  {self._time_left()}")

    def _time_left(self):
        """Iterations to convergence, extrapolating the geometric decay of the relative change."""
        done = len(self.records)
        seconds = sum(r.seconds for r in self.records[-5:]) / min(done, 5)
        remaining = self.max_iter - done
        if done >= 3:
            last, before = self.records[-1].relative_change, self.records[-2].relative_change
            if 0 < last < before:
                needed = math.log(self.tol / last) / math.log(last / before)
                remaining = min(remaining, max(0, math.ceil(needed)))
        return f"~{remaining * seconds:.0f}s left"

    def tsv(self):
        out = io.StringIO()
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for r in self.records:
            writer.writerow([r.iteration, repr(r.elbo), f"{r.elbo_per_token:.10g}",
                             f"{r.relative_change:.6g}", f"{r.alpha:.10g}", f"{r.seconds:.4f}",
                             f"{r.mean_doc_iter:.3f}"])
        return out.getvalue()


@main.command()
@click.argument("model", type=click.Path(dir_okay=False), default="model.npz")
@click.option("-n", "--words", "n_words", type=click.IntRange(min=1), default=10, show_default=True,
              help="Top words per topic.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True)
@_user_errors
def topics(model, n_words, output_format):
    """Print the top words of every topic of MODEL (default model.npz).

    Text shows each topic's share of the training tokens and its words; json and csv give
    each word's probability too.

    \b
    Example:
        ldaem topics model.npz -n 15
        ldaem topics model.npz --format csv > topics.csv
    """
    from ldaem.model import load_model

    fitted = load_model(model)
    top = fitted.top_words(n_words)
    shares = fitted.topic_shares()
    if output_format == "text":
        width = len(str(fitted.n_topics - 1))
        for k, words in enumerate(top):
            click.echo(f"{k:>{width}}  {100 * shares[k]:5.1f}%  " + " ".join(w for w, _ in words))
    elif output_format == "json":
        click.echo(json.dumps([{"topic": k, "share": float(shares[k]),
                                "words": [{"word": w, "probability": p} for w, p in words]}
                               for k, words in enumerate(top)], indent=1))
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["topic", "rank", "word", "probability"])
        for k, words in enumerate(top):
            for rank, (w, p) in enumerate(words, 1):
                writer.writerow([k, rank, w, f"{p:.6g}"])


@main.command()
@click.argument("documents", type=click.Path(dir_okay=False))
@click.option("-m", "--model", type=click.Path(dir_okay=False), default="model.npz", show_default=True,
              help="Model file from `ldaem fit`.")
@_corpus_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Where to write the proportions (TSV; - for stdout).")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@_user_errors
def infer(documents, model, corpus_format, vocab, encoding, output, threads, quiet):
    """Write the topic proportions of each document of DOCUMENTS under a fitted model.

    One TSV row per document, in input order (empty documents included: they get the prior's
    proportions). Raw text is tokenised as it was for `fit`; terms the model does not know are
    dropped and counted. The held-out per-word bound of the documents goes to stderr.

    \b
    Example:
        ldaem infer new_docs.txt -o theta.tsv
        ldaem infer test.dat --vocab vocab.txt --model ap.npz
    """
    from ldaem.corpus import TextSettings, load_corpus
    from ldaem.lda import LDA
    from ldaem.model import load_model

    say = Progress(quiet)
    fitted = load_model(model)
    text_settings = fitted.settings.get("text_settings")
    text_settings = TextSettings(**text_settings) if text_settings else TextSettings()
    data = load_corpus(documents, corpus_format, vocab, text_settings, fixed_vocab=fitted.vocab,
                       encoding=encoding)
    lda = LDA.from_model(fitted, n_jobs=threads)
    doc_topic, doc_bound = lda.infer(data.X)
    rows = io.StringIO()
    writer = csv.writer(rows, delimiter="\t", lineterminator="\n")
    writer.writerow(["document"] + [f"topic_{k}" for k in range(fitted.n_topics)])
    for name, proportions in zip(data.names, doc_topic):
        writer.writerow([name] + [f"{p:.6g}" for p in proportions])
    if output == "-":
        click.echo(rows.getvalue(), nl=False)
    else:
        with atomic_output(output) as f:
            f.write(rows.getvalue())
    n_tokens = data.n_tokens
    per_word = float(doc_bound.sum()) / n_tokens if n_tokens else float("nan")
    say(f"{data.describe()}; {data.oov_tokens} tokens outside the model's vocabulary dropped")
    say(f"held-out bound {per_word:.4f} nats per token (perplexity {math.exp(-per_word):.1f})"
        if n_tokens else "no tokens in the model's vocabulary: no held-out bound")


if __name__ == "__main__":
    main()
