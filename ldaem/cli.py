"""The `ldaem` command: load -> estimator -> write or format. Library errors become one-line errors."""

import contextlib
import csv
import errno
import functools
import hashlib
import io
import json
import logging
import math
import os
import secrets
import signal
import sys
import time
import traceback
from pathlib import Path

import click

from ldaem.errors import CorpusError, LdaemError
from ldaem.records import OBJECTIVE_NAMES, POINT_ESTIMATE_INFERENCES, PRECISIONS
from ldaem.fileio import atomic_output, check_writable, stream_of


def _user_errors(command):
    """Turn ldaem's own errors into click's one-line 'Error: ...' and exit status 1 (with
    --verbose, followed by a line for each exception behind it and where it was raised)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LdaemError as e:
            raise _error(str(e), e) from None
        except BrokenPipeError:
            # the reader of stdout went away (`ldaem topics | head`): stop quietly, as SIGPIPE would
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as e:
            raise _error(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), e) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if _root_option("debug"):
                raise
            raise _error(f"internal error: {type(e).__name__}: {e} "
                         "(rerun with --debug for the traceback)", e) from None
    return wrapper


def _root_option(name):
    """An option of the `ldaem` group (--debug, --verbose) from within a command."""
    context = click.get_current_context(silent=True)
    return bool(context and (context.find_root().obj or {}).get(name))


def _error(message, error):
    """The ClickException for error; --verbose adds the exceptions behind it and where it was raised."""
    if not _root_option("verbose"):
        return click.ClickException(message)
    lines = [message]
    behind = error.__cause__ or error.__context__
    while behind is not None and len(lines) <= 5:
        lines.append(f"  caused by {type(behind).__name__}: {behind}")
        behind = behind.__cause__ or behind.__context__
    if isinstance(error, OSError) and error.errno in errno.errorcode:
        lines.append(f"  errno {error.errno} ({errno.errorcode[error.errno]})")
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        where = frames[-1]
        lines.append(f"  raised in {where.name} ({Path(where.filename).name}:{where.lineno})")
    return click.ClickException("\n".join(lines))


class _EchoHandler(logging.Handler):
    """The ldaem loggers' records as lines 'ldaem: message' on stderr (--verbose shows INFO)."""

    def emit(self, record):
        click.echo(f"ldaem: {self.format(record)}", err=True)


def _log_to_stderr(verbose):
    logger = logging.getLogger("ldaem")
    if not any(isinstance(handler, _EchoHandler) for handler in logger.handlers):
        logger.addHandler(_EchoHandler())
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


class Progress:
    """Progress lines on stderr, silenced by --quiet; stdout carries only results."""

    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            click.echo(message, err=True)


_READING_OPTIONS = ("encoding_errors", "text_field", "id_field", "doc_separator")
_TEXT_OPTIONS = ("stop_words", "min_df", "max_df", "max_features")


def _reading(options):
    """The keyword arguments of load_corpus that particular formats need, from parsed options."""
    return {name: options[name] for name in _READING_OPTIONS}


def _text_settings(options):
    """The TextSettings of raw text, from parsed options."""
    from ldaem.corpus import TextSettings
    return TextSettings(stop_words=_stop_words(options["stop_words"]), min_df=options["min_df"],
                        max_df=options["max_df"], max_features=options["max_features"])


def _corpus_options(command=None, *, format_flag="--format"):
    """Options shared by every command that reads a corpus. Those of particular formats reach the
    command as one dict, `reading`, of keyword arguments for load_corpus. format_flag names the
    corpus-format option where --format means something else."""
    if command is None:
        return functools.partial(_corpus_options, format_flag=format_flag)

    @functools.wraps(command)
    def with_reading(*args, **kwargs):
        kwargs["reading"] = _reading(kwargs)
        for name in _READING_OPTIONS:
            del kwargs[name]
        return command(*args, **kwargs)

    options = [
        click.option(format_flag, "corpus_format",
                     type=click.Choice(["text", "dir", "jsonl", "csv", "ldac", "uci", "mm", "npz"]),
                     help="Corpus format (default: a folder is dir; else by extension: .txt, .jsonl, "
                          ".csv/.tsv, .ldac/.dat, docword.*.txt (uci), .mtx/.mm, .npz; else by content)."),
        click.option("--vocab", type=click.Path(dir_okay=False),
                     help="Vocabulary of a bag-of-words corpus, one term per line (default: vocab.NAME.txt "
                          "beside a UCI docword.NAME.txt, else CORPUS.vocab if there is one)."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the input."),
        click.option("--encoding-errors", type=click.Choice(["strict", "replace", "ignore"]), default="strict",
                     show_default=True, help="What to do with bytes the encoding cannot decode."),
        click.option("--text-field", default="text", show_default=True,
                     help="jsonl/csv: the field or column holding each document's text."),
        click.option("--id-field", help="jsonl/csv: the field or column naming each document "
                                        "(default: its line number)."),
        click.option("--doc-separator", metavar="LINE",
                     help="text/dir: documents are separated by lines holding only LINE (e.g. % in "
                          "fortune files), instead of one per line (text) or per file (dir)."),
    ]
    for option in reversed(options):
        with_reading = option(with_reading)
    return with_reading


def _a_file_name(ctx, param, value):
    """An output that must be a file: '-' is refused rather than taken as a file's name."""
    if value == "-":
        raise click.BadParameter("'-' (standard output): this command writes a file, give a name")
    return value


def _files_beside(ctx, param, value):
    """An output beside which the command writes other files (a model's ELBO log and checkpoint,
    a corpus's vocabulary): a file name, not '-', a device or a pipe (/dev/null, /dev/stdout)."""
    try:
        stream = stream_of(_a_file_name(ctx, param, value))
    except OSError as e:
        raise click.BadParameter(f"{value}: {e.strerror}") from None
    if stream is not None:
        raise click.BadParameter(f"{value} is a device or pipe: this command writes files beside its "
                                 f"output, give a file name")
    return value


class FiniteRange(click.FloatRange):
    """click.FloatRange that refuses nan (which passes every bound) and infinities."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class ReportFormat(click.Choice):
    """--format of evaluate and select: what they print; their corpus's is --corpus-format."""

    def convert(self, value, param, ctx):
        if value not in self.choices:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, self.choices))} (the format of "
                      f"what is printed; the corpus's is --corpus-format)", param, ctx)
        return value


class DocumentFrequency(click.ParamType):
    """--min-df/--max-df: '5' is a count of documents, '0.5' a fraction of them (CountVectorizer)."""

    name = "count|fraction"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return value
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not (math.isfinite(number) and number >= 0):
            self.fail(f"{value!r} is not a document count or fraction", param, ctx)
        return int(number) if number.is_integer() and "." not in value else number


def _text_options(command):
    """The options that turn raw text into counts (CountVectorizer's settings); they reach the
    command as one TextSettings, `text_settings`."""
    @functools.wraps(command)
    def with_settings(*args, **kwargs):
        kwargs["text_settings"] = _text_settings(kwargs)
        for name in _TEXT_OPTIONS:
            del kwargs[name]
        return command(*args, **kwargs)

    options = [
        click.option("--stop-words", default="english", show_default=True,
                     help="Raw text: 'english', 'none', or a file of stop words, one per line."),
        click.option("--min-df", type=DocumentFrequency(), default="1", show_default=True,
                     help="Raw text: drop terms in fewer documents than this: a count (5), or with a decimal "
                          "point a fraction of the documents (0.01; 1.0 is all of them)."),
        click.option("--max-df", type=DocumentFrequency(), default="1.0", show_default=True,
                     help="Raw text: drop terms in more documents than this: with a decimal point a fraction "
                          "of the documents (0.5; 1.0 keeps all), else a count (1000)."),
        click.option("--max-features", type=click.IntRange(min=1),
                     help="Raw text: keep only the most frequent terms."),
    ]
    for option in reversed(options):
        with_settings = option(with_settings)
    return with_settings


def elbo_log_path(model_path):
    """Where the per-iteration ELBO log of a model file goes: model.npz -> model.elbo.tsv."""
    model_path = Path(model_path)
    stem = model_path.name[:-4] if model_path.name.endswith(".npz") else model_path.name
    return model_path.with_name(stem + ".elbo.tsv")


@click.group()
@click.version_option(package_name="ldaem")
@click.option("-v", "--verbose", is_flag=True,
              help="Say more: what was read, decided and written, and what lies behind an error.")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def main(ctx, verbose, debug):
    """Find the topics of a collection of documents with latent Dirichlet allocation,
    fitted by variational EM.

    \b
    Example:
        ldaem fit corpus.txt -k 20        # writes model.npz and model.elbo.tsv
        ldaem topics model.npz            # the top words of each topic
        ldaem infer new_docs.txt          # topic proportions of new documents
    """
    ctx.obj = {"debug": debug, "verbose": verbose}
    _log_to_stderr(verbose)


@main.command()
@click.argument("corpus", type=click.Path(), required=False)
@_corpus_options
@click.option("-k", "--topics", "n_topics", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of topics.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="model.npz", show_default=True,
              callback=_files_beside,
              help="Model file to write; the ELBO log goes beside it (NAME.elbo.tsv).")
@click.option("--alpha",
              help="Dirichlet prior on topic proportions: 'estimate' (one shared alpha, "
                   "Newton-Raphson, as lda-c; the default), 'asymmetric' (one per topic), or a fixed "
                   "number. With --inference map or cvb0, a fixed pseudo-count (default 0.1).")
@click.option("--alpha-init", type=FiniteRange(min=0, min_open=True),
              help="Starting alpha when it is estimated (default 0.5; online 1/K).")
@click.option("--alpha-burn-in", type=click.IntRange(min=0), default=10, show_default=True,
              help="EM iterations before alpha is first estimated.")
@click.option("--eta", metavar="NUMBER|estimate",
              help="Smooth the topics with a Dirichlet(eta) prior: a fixed value, or 'estimate' "
                   "(Newton-Raphson from 1/K after the burn-in). Default: maximum likelihood "
                   "(batch), 1/K (online). With --inference map or cvb0, a fixed pseudo-count (default 0.05).")
@click.option("--max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Batch: most EM iterations.")
@click.option("--tol", type=FiniteRange(min=0), default=1e-4, show_default=True,
              help="Batch: stop when the relative ELBO change falls below this.")
@click.option("--doc-max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most E-step iterations per document.")
@click.option("--doc-tol", type=FiniteRange(min=0), default=1e-3, show_default=True,
              help="E-step stops a document when its gamma changes less than this (mean absolute).")
@click.option("--method", type=click.Choice(["batch", "online"]), default="batch", show_default=True,
              help="batch: variational EM over the whole corpus each iteration; online: stochastic "
                   "variational EM, one update per minibatch (Hoffman, Blei & Bach 2010).")
@click.option("--inference", type=click.Choice(list(OBJECTIVE_NAMES)), default="variational",
              show_default=True,
              help="Batch: variational (a posterior over each document's topic proportions, Blei et "
                   "al. 2003), map (EM for the most probable topics and proportions given --alpha "
                   "and --eta as pseudo-counts, Asuncion et al. 2009; better document completion "
                   "than variational on AP and KOS) or cvb0 (MAP's model fitted by sweeps of the "
                   "zero-order collapsed variational update, Asuncion et al. 2009; the best "
                   "document completion on AP; one value per token and topic in memory, not "
                   "checkpointed). Inferring new documents is variational for all.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True,
              help="Online: documents per minibatch.")
@click.option("--tau0", type=FiniteRange(min=0), default=16.0, show_default=True,
              help="Online: learning offset of rho_t = (tau0 + t)^-kappa.")
@click.option("--kappa", type=FiniteRange(min=0.5, max=1, min_open=True), default=0.6,
              show_default=True, help="Online: learning decay of rho_t = (tau0 + t)^-kappa.")
@click.option("--passes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Online: passes over the corpus.")
@click.option("--stream", is_flag=True,
              help="Online: read the corpus from disk one minibatch at a time, so memory is bounded "
                   "by the minibatch and the topics (raw text: a first pass fixes the vocabulary).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the E-step on the Dask cluster at ADDRESS (tcp://host:port): batch EM keeps "
                   "the corpus partitioned on its workers, online EM spreads each minibatch over them.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Start a local Dask cluster of this many worker processes for the E-step.")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (default: a fresh one, stored in the model).")
@click.option("--restarts", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch: fit from this many random starts (seeds drawn from --seed) and keep the "
                   "model of highest ELBO. Restarts are not checkpointed.")
@click.option("--init", "init", default="auto", show_default=True, metavar="auto|random|seeded|MODEL",
              help="Initial topics: auto (seeded for batch EM without --eta, else random), random "
                   "(lda-c's random start; with --eta or online, Gamma(100, 1/100) counts as "
                   "Hoffman et al.), seeded (each topic from a few random documents, as lda-c; "
                   "better topics and shallower first E-steps than random on AP), or a model "
                   "file of the same vocabulary to start from.")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@click.option("--dtype", type=click.Choice(PRECISIONS), default="float64", show_default=True,
              help="Precision of the fit's E-steps: float32 ones ran up to 1.5x faster on AP "
                   "(bench/scaling_results.md); gamma, the M-step and the ELBO stay float64, and "
                   "infer, evaluate and score run in float64.")
@click.option("--heldout", metavar="SHARE|FILE",
              help="Keep a random SHARE (e.g. 0.1) of the documents out of the fit, or score the "
                   "documents of FILE (same format options), and log their per-word bound.")
@click.option("--eval-every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Log the held-out bound every N iterations (minibatches, online).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Batch: write a resumable checkpoint (NAME.checkpoint.npz beside the model) every "
                   "N iterations, and at least every 10 minutes.")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="CHECKPOINT",
              help="Continue the fit saved in CHECKPOINT, with its corpus and settings.")
@_text_options
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@_user_errors
def fit(corpus, resume, quiet, **_):
    """Fit K topics to CORPUS by variational EM (or MAP EM or CVB0, --inference); write the model.

    CORPUS is raw text (one document per line, a folder of files, JSON Lines or CSV) or a
    bag-of-words file (LDA-C, UCI, Matrix Market, npz); see --format. Every EM iteration (every
    minibatch, online) logs its ELBO on stderr and in NAME.elbo.tsv beside the model.

    Ctrl-C or SIGTERM finishes the current iteration (online: minibatch update), writes the
    model and, for a batch fit, a checkpoint, and exits with status 130 (143); `ldaem fit
    --resume CHECKPOINT` then continues, ending at the model an uninterrupted fit would have
    reached (same seed and threads). Online fits, restarts and CVB0 are not checkpointed.

    \b
    Example:
        ldaem fit corpora/ap/ap.dat --vocab corpora/ap/vocab.txt -k 20 -o ap.npz
        ldaem fit abstracts.txt -k 50 --min-df 5 --max-df 0.5 --seed 1
        ldaem fit docword.kos.txt.gz -k 20 --method online --eta 0.05 --batch-size 256
        ldaem fit ap.dat --vocab vocab.txt -k 50 --workers 2
        ldaem fit --resume model.checkpoint.npz
    """
    context = click.get_current_context()
    options = dict(context.params)
    state = None
    if resume:
        given = _given(context, [name for name in options if name not in ("resume", *WHERE_TO_RUN)])
        if given:
            raise click.UsageError(f"--resume continues the checkpoint's fit with its own corpus and "
                                   f"settings: give no {', '.join(given)}")
        from ldaem.checkpoint import load_checkpoint
        state, saved = load_checkpoint(resume)
        override = {name: options[name] for name in WHERE_TO_RUN if name == "quiet" or _given(context, [name])}
        options = {**saved, **override}
        if "workers" in override or "scheduler" in override:
            options.update({"workers": override.get("workers"), "scheduler": override.get("scheduler")})
    elif corpus is None:
        raise click.UsageError("Missing argument 'CORPUS' (or give --resume CHECKPOINT).")
    else:
        _refuse_ignored_options(context, options)
    _fit(options, state, resume)


def _refuse_ignored_options(context, options):
    """A UsageError for options given that this fit would ignore."""
    online = options["method"] == "online"
    ignored = (
        (_given(context, ONLY_BATCH if online else ONLY_ONLINE),
         f"for --method {'batch' if online else 'online'} only"
         + (" (online EM runs --passes passes)" if online else "")),
        (_given(context, ["checkpoint_every"]) if options["restarts"] > 1 or options["inference"] == "cvb0" else [],
         "restarts and CVB0 fits are not checkpointed"),
        (_given(context, ["eval_every"]) if options["heldout"] is None else [], "for --heldout only"),
        (_given(context, ["alpha_init"] + ([] if options["eta"] == "estimate" else ["alpha_burn_in"]))
         if _parse_alpha(options["alpha"])[0] == "fixed" else [],
         "a fixed --alpha is not estimated" + ("" if options["eta"] == "estimate" else " (nor --eta)")),
    )
    for given, why in ignored:        # the first that applies
        if given:
            raise click.UsageError(f"{', '.join(given)}: {why}")


# what --resume may change: where and how verbosely the fit runs, not what it computes (the same
# threads reach the same model bit for bit; other threads or Dask, up to rounding)
WHERE_TO_RUN = ("quiet", "threads", "workers", "scheduler")
# fit's options that one method takes and the other would ignore
ONLY_BATCH = ("max_iter", "tol", "checkpoint_every")
ONLY_ONLINE = ("batch_size", "tau0", "kappa", "passes")


def _given(context, names):
    """The command-line names of the parameters among names that were given, not defaulted."""
    parameters = {parameter.name: parameter for parameter in context.command.params}
    return [parameters[name].opts[-1] if parameters[name].param_type_name == "option" else name.upper()
            for name in names
            if context.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]


def _absolute_paths(options):
    """Options with their file paths made absolute, so that a checkpoint resumes from anywhere:
    the corpus, vocabulary and output, and a held-out, --init or stop-words file."""
    def absolute(name, value):
        if not isinstance(value, str) or name not in ("corpus", "vocab", "output", "heldout", "init", "stop_words"):
            return value
        from ldaem.lda import INIT_NAMES

        if (name == "heldout" and _as_share(value) is not None or name == "init" and value in INIT_NAMES
                or name == "stop_words" and value in ("english", "none")):
            return value       # a share or a name, not a file
        return str(Path(value).resolve())
    return {name: absolute(name, value) for name, value in options.items()}


def _as_share(text):
    """--heldout's value as a number (a share of the documents), or None (a file)."""
    try:
        return float(text)
    except ValueError:
        return None


def _corpus_digest(data):
    """A fingerprint of a loaded corpus's counts (CSR) and terms, kept in checkpoints so that
    --resume notices a corpus that changed (or was reordered) since; the same whatever the
    arrays' integer types, converted a million values at a time."""
    import numpy as np

    digest = hashlib.sha256()
    for values, dtype in ((data.X.indptr, np.int64), (data.X.indices, np.int64), (data.X.data, np.float64)):
        for start in range(0, values.size, 1 << 20):
            digest.update(np.ascontiguousarray(values[start:start + (1 << 20)], dtype=dtype))
    digest.update("\n".join(map(str, data.vocab)).encode())
    return digest.hexdigest()


def _check_outputs(outputs, inputs):
    """Refuse to write over a file that the command reads, under whatever name it is given."""
    for output in outputs:
        for source in inputs:
            if (output not in (None, "-") and source not in (None, "-") and os.path.exists(output)
                    and os.path.exists(source) and os.path.samefile(output, source)):
                same = "" if os.path.abspath(output) == os.path.abspath(source) else f" (the same file as {source})"
                raise click.UsageError(f"{output} is an input of this command{same}: write to another file")


def _checkpoint_path(output):
    return elbo_log_path(output).with_name(elbo_log_path(output).name.replace(".elbo.tsv", ".checkpoint.npz"))


def _fit(options, state, resumed_from):
    """The fit command's work, from its parsed options (or those stored in a checkpoint)."""
    from ldaem.corpus import load_corpus
    from ldaem.lda import INIT_NAMES, LDA, NumericalError
    from ldaem.resources import InsufficientMemory

    o = options
    say = Progress(o["quiet"])
    prior_update, fixed_alpha = _parse_alpha(o["alpha"])
    eta_update, eta = _parse_eta(o["eta"])
    if o["scheduler"] and o["workers"]:
        raise click.UsageError("give --scheduler or --workers, not both")
    online = o["method"] == "online"
    if online and resumed_from:
        raise click.UsageError("--resume continues batch fits only")
    if o["stream"] and not (online and o["init"] in ("auto", "random")):
        raise click.UsageError("--stream works with --method online and --init auto or random")
    restarts = o.get("restarts", 1)
    inference = o.get("inference", "variational")     # absent from checkpoints before it existed
    point_estimates = inference in POINT_ESTIMATE_INFERENCES
    if point_estimates and (online or prior_update not in (None, "fixed") or eta_update != "fixed"):
        raise click.UsageError(f"--inference {inference} works with --method batch, a fixed --alpha and a fixed --eta")
    if point_estimates and o["alpha_init"] is not None:
        raise click.UsageError(f"--alpha-init starts an estimated alpha; --inference {inference} holds it fixed: give --alpha")
    if inference == "cvb0" and (o["scheduler"] or o["workers"]):
        raise click.UsageError("--inference cvb0 runs in this process: give no --scheduler or --workers")
    if restarts > 1 and (online or o["init"] not in INIT_NAMES):
        raise click.UsageError("--restarts works with --method batch and --init auto, random or seeded")
    outputs = (o["output"], elbo_log_path(o["output"]), _checkpoint_path(o["output"]))
    heldout_file = o["heldout"] if o["heldout"] and os.path.exists(o["heldout"]) else None
    _check_outputs(outputs, (o["corpus"], o["vocab"], heldout_file))   # an --init model is read first
    for path in outputs:
        check_writable(path)
    started = time.perf_counter()
    if o["stream"]:
        from ldaem.stream import stream_corpus
        data = stream_corpus(o["corpus"], o["batch_size"], o["corpus_format"], o["vocab"], _text_settings(o),
                             encoding=o["encoding"], **_reading(o))
        say(f"streaming {o['corpus']}: {data.n_documents} documents, {len(data.vocab)} terms, "
            f"in minibatches of {o['batch_size']}")
    else:
        data = load_corpus(o["corpus"], o["corpus_format"], o["vocab"], _text_settings(o),
                           encoding=o["encoding"], **_reading(o))
        say(f"loaded {o['corpus']}: {data.describe()} ({time.perf_counter() - started:.1f}s)")
        if data.n_tokens == 0:
            raise CorpusError(f"{o['corpus']}: holds no tokens (every document is empty after filtering)")
    if o["seed"] is None:
        o["seed"] = secrets.randbelow(2**31)
    data, heldout = _held_out(data, o)
    resumable = not (online or restarts > 1 or inference == "cvb0")
    if resumable:
        digest = _corpus_digest(data)
        if state is not None and o.get("corpus_sha256", digest) != digest:
            raise CorpusError(f"{o['corpus']}: its documents or terms are not those the checkpoint "
                              f"{resumed_from} was made from: the corpus changed since")
        o["corpus_sha256"] = digest
    heldout_log = None if heldout is None else (o["eval_every"], lambda: lda.score(heldout) / heldout.sum())
    if online:
        logger = _IterationLogger(say, o["passes"] * math.ceil(_n_documents(data) / o["batch_size"]), 0.0,
                                  heldout_log)
    else:
        logger = _IterationLogger(say, o["max_iter"], o["tol"], heldout_log, restarts,
                                  OBJECTIVE_NAMES[inference])
    lda = LDA(n_components=o["n_topics"], doc_topic_prior=fixed_alpha or o["alpha_init"],
              doc_topic_prior_update=prior_update, doc_topic_prior_burn_in=o["alpha_burn_in"],
              topic_word_prior=eta, topic_word_prior_update=eta_update, max_iter=o["passes"] if online else o["max_iter"],
              tol=o["tol"], max_doc_update_iter=o["doc_max_iter"], mean_change_tol=o["doc_tol"],
              random_state=o["seed"], n_jobs=o["threads"], learning_method=o["method"],
              batch_size=o["batch_size"], learning_offset=o["tau0"], learning_decay=o["kappa"],
              init=_initial_topics(o["init"], data.vocab, o["n_topics"]), n_init=restarts,
              inference=inference, dtype=o.get("dtype", "float64"))     # dtype: absent from older checkpoints
    checkpoint = _checkpoint_path(o["output"])
    if state is not None:
        logger.replay(state.iterations)
        say(f"resuming from {resumed_from} after iteration {len(state.iterations)}")
    with _stop_on_signals() as received, _dask_scheduler(o["scheduler"], o["workers"], say) as scheduler:
        keeper = _CheckpointKeeper(lda, checkpoint, _absolute_paths(o), o["checkpoint_every"] if resumable else None)
        lda.set_params(scheduler=scheduler, callback=lambda r: logger(r) or keeper(r, received))
        try:
            if o["stream"]:
                from ldaem.stream import fit_online_streaming
                fit_online_streaming(lda, data, o["passes"])
            else:
                lda.fit(data.X, resume=state)
        except InsufficientMemory as e:
            raise click.ClickException(f"{o['corpus']}: {e}") from None
        except NumericalError as e:
            _write_model(lda, data, o, logger)
            raise click.ClickException(f"{o['corpus']}: {e}; wrote that model to {o['output']}") from None
    if restarts > 1:
        logger.keep(lda.restart_)
        say(f"restart {lda.restart_ + 1} has the highest {logger.objective}: "
            + ", ".join(f"{bound:.8g}" for bound in lda.restart_bounds_))
    logger.score_last()
    _write_model(lda, data, o, logger)
    stopped = received[0] if received and lda.stopped_ else None
    if stopped and restarts > 1:
        say(f"interrupted in restart {len(lda.restart_bounds_)} of {restarts}: wrote the best model so "
            f"far to {o['output']} (restarts are not checkpointed)")
        click.get_current_context().exit(128 + stopped)
    if stopped and not resumable:
        done = f"minibatch update {lda.n_batch_iter_}" if online else f"iteration {lda.n_iter_}"
        say(f"interrupted after {done}: wrote {o['output']} ({'online' if online else 'CVB0'} fits "
            f"are not checkpointed)")
        click.get_current_context().exit(128 + stopped)
    if stopped:
        say(f"interrupted after iteration {lda.n_iter_}: wrote {o['output']} and the checkpoint "
            f"{checkpoint}; continue with: ldaem fit --resume {checkpoint}")
        click.get_current_context().exit(128 + stopped)
    if checkpoint.exists():
        checkpoint.unlink()
    unit = ("pass", "passes") if online else ("iteration", "iterations")
    say(f"wrote {o['output']} and {elbo_log_path(o['output'])}: {lda.n_iter_} {unit[lda.n_iter_ != 1]}, "
        f"{logger.objective} {lda.bound_:.6g} "
        f"({lda.iterations_[-1].elbo_per_token:.4f} per token) in {time.perf_counter() - started:.1f}s")


def _held_out(data, options):
    """(training corpus, held-out counts or None) by --heldout: a share of the documents, kept out
    at random (seeded), or a file read against the training vocabulary. Held-out tokens of words
    no training document uses are dropped (see _documents_for_model); a streamed corpus, whose
    topics are smoothed, keeps them."""
    import dataclasses

    import numpy as np

    from ldaem.corpus import load_corpus
    from ldaem.selection import split_documents

    given = options["heldout"]
    if not given:
        return data, None
    share = _as_share(given)
    if share is not None:
        if options["stream"]:
            raise click.BadParameter("a streamed corpus is not held in memory to keep a share out of; "
                                     "give a FILE of held-out documents", param_hint="--heldout")
        if not 0 < share < 1:
            raise click.BadParameter(f"{given!r} is neither a share in (0, 1) nor a file", param_hint="--heldout")
        train, heldout = split_documents(data.X, share, options["seed"])
        return dataclasses.replace(data, X=train, names=None), heldout
    other = load_corpus(given, options["corpus_format"], options["vocab"], _text_settings(options),
                        fixed_vocab=data.vocab, encoding=options["encoding"], **_reading(options))
    if options["stream"]:
        return data, other.X
    seen = np.asarray(data.X.sum(axis=0)).ravel() > 0
    heldout = other.X.copy()
    heldout.data[~seen[heldout.indices]] = 0
    heldout.eliminate_zeros()
    return data, heldout


def _initial_topics(init, vocab, n_topics):
    """--init: 'auto', 'random', 'seeded', or the expected counts of the model file `init`."""
    from ldaem.lda import INIT_NAMES

    if init in INIT_NAMES:
        return init
    import numpy as np

    from ldaem.errors import ModelFileError
    from ldaem.model import load_model

    start = load_model(init)
    if start.n_topics != n_topics:
        raise ModelFileError(f"{init}: has {start.n_topics} topics, this fit asks for {n_topics} (-k)")
    if start.vocab.shape != vocab.shape or not np.array_equal(start.vocab, vocab):
        raise ModelFileError(f"{init}: was fitted with another vocabulary than this corpus's")
    return start.expected_counts()


def _n_documents(data):
    """Documents of a Corpus, or of a CorpusStream (counted without reading them all)."""
    return data.n_documents if hasattr(data, "n_documents") else data.X.shape[0]


def _write_model(lda, data, options, logger):
    from ldaem.model import save_model
    settings = {"corpus": options["corpus"], "corpus_format": data.format, "seed": options["seed"],
                "text_settings": data.text_settings, "n_documents": _n_documents(data),
                "n_tokens": getattr(data, "n_tokens", None)}
    save_model(options["output"], lda.to_model(data.vocab, settings))
    with atomic_output(elbo_log_path(options["output"])) as f:
        f.write(logger.tsv())


@contextlib.contextmanager
def _stop_on_signals():
    """Within the block, SIGINT and SIGTERM are recorded (in the yielded list), not fatal: the
    fit stops after the iteration (online: the minibatch update) under way. A second one of a
    kind acts as usual once the fit is back in Python (between kernels: a kernel under way runs
    to its end)."""
    received, handlers = [], {}

    def stop(number, frame):
        received.append(number)
        signal.signal(number, handlers[number])       # a second one acts as it would without ldaem

    for number in (signal.SIGINT, signal.SIGTERM):
        handlers[number] = signal.signal(number, stop)
    try:
        yield received
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


class _CheckpointKeeper:
    """Called after each batch EM iteration: writes a checkpoint every `every` iterations, every
    CHECKPOINT_SECONDS, and when a stop signal has arrived; returns whether to stop."""

    CHECKPOINT_SECONDS = 600

    def __init__(self, lda, path, options, every):
        self.lda, self.path, self.options, self.every = lda, path, options, every
        self.last = time.monotonic()

    def __call__(self, record, received):
        if self.every is None:
            return bool(received)
        due = (record.iteration % self.every == 0 or received
               or time.monotonic() - self.last >= self.CHECKPOINT_SECONDS)
        if due:
            from ldaem.checkpoint import save_checkpoint
            save_checkpoint(self.path, self.lda.fit_state(), self.options)
            self.last = time.monotonic()
        return bool(received)


@contextlib.contextmanager
def _dask_scheduler(address, workers, say):
    """The scheduler for LDA: None for an in-process E-step, else a Dask client of the cluster at
    address, or of a local cluster of `workers` processes started for this fit (closed after it)."""
    if not (address or workers):
        yield None
        return
    from distributed import Client

    from ldaem.distributed import local_cluster

    with contextlib.ExitStack() as stack:
        if workers:
            cluster = stack.enter_context(local_cluster(workers))
            address = cluster.scheduler_address
            say(f"started a local Dask cluster of {workers} workers at {address}")
        try:
            client = Client(address)
        except (ValueError, OSError) as e:
            raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {e}") from None
        yield stack.enter_context(client)


def _parse_eta(text):
    """--eta: ('fixed', None), ('fixed', value) or ('estimate', None)."""
    if text is None or text == "estimate":
        return ("fixed" if text is None else "estimate"), None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"{text!r} is neither 'estimate' nor a positive number", param_hint="--eta")
    return "fixed", value


def _parse_alpha(text):
    """--alpha: (None, None) when not given (the estimator's default), ('symmetric', None),
    ('asymmetric', None) or ('fixed', value)."""
    if text is None:
        return None, None
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
               "doc_iterations", "heldout_per_token")

    def __init__(self, say, max_iter, tol, heldout=None, restarts=1, objective="ELBO"):
        """heldout: None, or (every, score) to log score() (held-out bound per token) every
        `every` iterations. restarts: the fits of --restarts, each logged from its iteration 1.
        objective: what the progress lines call the elbo column (a MAP fit's is its log posterior)."""
        self.say, self.max_iter, self.tol, self.heldout = say, max_iter, tol, heldout
        self.objective = objective
        self.verbose = _root_option("verbose")
        self.restarts = restarts
        self.runs = []            # (records, heldout_scores) of each restart
        self.kept = -1            # the run the log file shows

    @property
    def records(self):
        return self.runs[self.kept][0] if self.runs else []

    @property
    def heldout_scores(self):
        return self.runs[self.kept][1]

    def replay(self, records):
        """Take the records of a resumed fit's earlier iterations, for the log file."""
        self.runs.append((list(records), {}))

    def keep(self, restart):
        """Write the log of this restart (0, 1, ...): the one whose model is kept."""
        self.kept = restart

    def __call__(self, record):
        if not self.runs or record.iteration == 1:
            self.runs.append(([], {}))
            if self.restarts > 1:
                self.say(f"restart {len(self.runs)} of {self.restarts}")
        self.records.append(record)
        shown = ""
        if self.heldout and record.iteration % self.heldout[0] == 0:
            self.heldout_scores[record.iteration] = self.heldout[1]()
            shown = f"held-out {self.heldout_scores[record.iteration]:.4f}/token  "
        if self.verbose:
            shown += f"doc-iter {record.mean_doc_iter:.1f}  "
        self.say(f"iter {record.iteration:4d}  {self.objective} {record.elbo:.8g}  {record.elbo_per_token:.4f}/token  "
                 f"change {record.relative_change:.2e}  alpha {record.alpha:.4g}  {shown}"
                 f"{record.seconds:.2f}s  {self._time_left()}")

    def score_last(self):
        """Log the held-out score of the last iteration, if its turn (every N) did not come: the
        fit's final topics, which the score after it uses."""
        last = self.records[-1].iteration if self.records else None
        if self.heldout and last is not None and last not in self.heldout_scores:
            self.heldout_scores[last] = self.heldout[1]()
            self.say(f"held-out {self.heldout_scores[last]:.4f}/token after iteration {last}")

    def _time_left(self):
        """Iterations to convergence, extrapolating the geometric decay of the relative change, at
        the pace of the last iterations but the first (which may include compiling the kernels)."""
        done = len(self.records)
        if done < 2:
            return ""
        recent = self.records[1:][-5:]
        seconds = sum(r.seconds for r in recent) / len(recent)
        remaining = self.max_iter - done
        if done >= 3:
            last, before = self.records[-1].relative_change, self.records[-2].relative_change
            if self.tol > 0 and 0 < last < before < math.inf:
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
                             f"{r.mean_doc_iter:.3f}",
                             f"{self.heldout_scores[r.iteration]:.10g}" if r.iteration in self.heldout_scores
                             else ""])
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
@click.argument("documents", type=click.Path())
@click.option("-m", "--model", type=click.Path(dir_okay=False), default="model.npz", show_default=True,
              help="Model file from `ldaem fit`.")
@_corpus_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Where to write the proportions (TSV; - for stdout).")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@_user_errors
def infer(documents, model, corpus_format, vocab, encoding, reading, output, threads, quiet):
    """Write the topic proportions of each document of DOCUMENTS under a fitted model.

    One TSV row per document, in input order (empty documents included: they get the prior's
    proportions). Raw text is tokenised as it was for `fit`; terms the model does not know are
    dropped and counted. The held-out per-word bound of the documents goes to stderr.

    \b
    Example:
        ldaem infer new_docs.txt -o theta.tsv
        ldaem infer test.dat --vocab vocab.txt --model ap.npz
    """
    say = Progress(quiet)
    _check_outputs((output,), (documents, model, vocab))
    fitted, data, unseen = _documents_for_model(model, documents, corpus_format, vocab, encoding, reading)
    lda = _estimator(fitted, threads)
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
    say(f"{data.describe()}; dropped {data.oov_tokens} tokens outside the model's vocabulary"
        f" and {unseen} tokens of words unseen in training")
    n_tokens = data.n_tokens
    per_word = float(doc_bound.sum()) / n_tokens if n_tokens else float("nan")
    say(f"held-out bound {per_word:.4f} nats per token (perplexity {math.exp(-per_word):.1f})"
        if n_tokens else "no tokens the model knows: no held-out bound")


def _documents_for_model(model_path, documents, corpus_format, vocab, encoding, reading):
    """(model, corpus counted against its vocabulary, tokens dropped as unseen in training): those
    of terms the training documents never used are dropped (_seen_only)."""
    fitted, data = _model_and_documents(model_path, documents, corpus_format, vocab, encoding, reading)
    return (fitted, *_seen_only(fitted, data))


def _model_and_documents(model_path, documents, corpus_format, vocab, encoding, reading):
    """(model, corpus counted against its vocabulary), raw text tokenised with the model's settings."""
    from ldaem.corpus import TextSettings, load_corpus
    from ldaem.model import load_model

    fitted = load_model(model_path)
    text_settings = TextSettings(**(fitted.settings.get("text_settings") or {}))
    return fitted, load_corpus(documents, corpus_format, vocab, text_settings, fixed_vocab=fitted.vocab,
                               encoding=encoding, **reading)


def _seen_only(fitted, data):
    """(data without the tokens of terms the model's training documents never used, how many
    tokens that drops): maximum-likelihood topics give them probability ~0, which would swamp any
    held-out figure (lda-c's held-out figures likewise keep only words seen in training)."""
    import dataclasses

    trained = fitted.trained_words()
    if trained.all():
        return data, 0
    kept = trained[data.X.indices]
    unseen = int(data.X.data[~kept].sum())
    X = data.X.copy()
    X.data[~kept] = 0
    X.eliminate_zeros()
    return dataclasses.replace(data, X=X), unseen


def _estimator(fitted, threads):
    from ldaem.lda import LDA
    return LDA.from_model(fitted, n_jobs=threads)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("heldout", type=click.Path())
@_corpus_options(format_flag="--corpus-format")
@click.option("--train", type=click.Path(), help="Training corpus, for UMass coherence (same format options).")
@click.option("--reference", type=click.Path(), help="Corpus for NPMI coherence (default: HELDOUT).")
@click.option("-n", "--top-n", type=click.IntRange(min=2), default=10, show_default=True,
              help="Top words per topic that coherence is computed over.")
@click.option("--format", "output_format", type=ReportFormat(["text", "json"]), default="text",
              show_default=True, help="What is printed (the corpus's format is --corpus-format).")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@_user_errors
def evaluate(model, heldout, corpus_format, vocab, encoding, reading, train, reference, top_n,
             output_format, threads):
    """Judge MODEL on the held-out documents HELDOUT.

    Reports the held-out per-word bound and its perplexity, document completion (Wallach et al.
    2009), UMass coherence (on --train) and NPMI coherence (on --reference, default HELDOUT),
    and per topic its share, exclusivity and closest other topic. Every number's definition is
    printed with it.

    \b
    Example:
        ldaem evaluate model.npz heldout.txt --train corpus.txt
        ldaem evaluate ap.npz test.dat --vocab vocab.txt --format json
        ldaem evaluate model.npz heldout.jsonl --corpus-format jsonl --text-field body
    """
    from ldaem.evaluate import evaluate as run_evaluation
    from ldaem.evaluate import format_table

    fitted, data, unseen = _documents_for_model(model, heldout, corpus_format, vocab, encoding, reading)
    others = {name: _documents_for_model(model, path, corpus_format, vocab, encoding, reading)[1].X
              for name, path in (("train", train), ("reference", reference)) if path}
    try:
        report = run_evaluation(_estimator(fitted, threads), data.X, X_train=others.get("train"),
                                top_n=top_n, reference=others.get("reference"), vocab=fitted.vocab)
    except ValueError as e:
        raise click.ClickException(f"{heldout}: {e}") from None
    report["heldout_documents"] = {"documents": data.X.shape[0], "tokens": data.n_tokens,
                                   "dropped_outside_vocabulary": data.oov_tokens,
                                   "dropped_unseen_in_training": unseen}
    if output_format == "json":
        click.echo(json.dumps(report, indent=1, allow_nan=False))
    else:
        click.echo(f"held-out documents: {data.describe()}; dropped {data.oov_tokens} tokens outside "
                   f"the model's vocabulary and {unseen} tokens of words unseen in training")
        click.echo(format_table(report))


@main.command()
@click.argument("corpus", type=click.Path())
@_corpus_options(format_flag="--corpus-format")
@_text_options
@click.option("-k", "--topics", "topic_counts", default="10,20,50", show_default=True,
              help="The numbers of topics to compare, separated by commas.")
@click.option("--heldout", type=FiniteRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Share of the documents kept out of training and scored.")
@click.option("-n", "--top-n", type=click.IntRange(min=2), default=10, show_default=True,
              help="Top words per topic that coherence is computed over.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the held-out split and of every fit.")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@click.option("--inference", type=click.Choice(list(OBJECTIVE_NAMES)), default="variational",
              show_default=True,
              help="Fit each K as `ldaem fit --inference` does, with its defaults (for map and "
                   "cvb0, 'train' is the log posterior per token, not a bound).")
@click.option("--format", "output_format", type=ReportFormat(["text", "json"]), default="text",
              show_default=True, help="What is printed (the corpus's format is --corpus-format).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@_user_errors
def select(corpus, corpus_format, vocab, encoding, reading, text_settings, topic_counts, heldout, top_n,
           seed, threads, inference, output_format, quiet):
    """Compare numbers of topics on CORPUS, to choose K.

    Keeps a random --heldout share of the documents out, fits each K to the rest (loading the
    corpus once), and prints for each K the held-out per-word bound and perplexity, document
    completion, and mean UMass (training) and NPMI (held-out) coherence. Higher is better for all
    but perplexity.

    \b
    Example:
        ldaem select corpora/ap/ap.dat --vocab corpora/ap/vocab.txt -k 10,20,50
        ldaem select abstracts.txt -k 20,50,100 --heldout 0.2 --format json
    """
    from ldaem.corpus import load_corpus
    from ldaem.lda import LDA
    from ldaem.selection import TooFewDocuments, compare_topic_counts

    try:
        counts = [int(k) for k in topic_counts.split(",")]
    except ValueError:
        counts = [0]
    if min(counts) < 1:
        raise click.BadParameter(f"{topic_counts!r} is not a list of positive integers", param_hint="-k")
    say = Progress(quiet)
    data = load_corpus(corpus, corpus_format, vocab, text_settings, encoding=encoding, **reading)
    say(f"loaded {corpus}: {data.describe()}")
    try:
        rows = compare_topic_counts(
            data.X, counts, heldout, seed, top_n,
            make_lda=lambda k: LDA(k, random_state=seed, n_jobs=threads, inference=inference),
            on_fit=lambda k, lda: say(f"K={k}: {lda.n_iter_} iterations"))
    except TooFewDocuments as e:
        raise click.ClickException(f"{corpus}: {e}") from None
    if output_format == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    click.echo("held-out figures in nats per token (perplexity = exp(-bound)); coherence over the top "
               f"{top_n} words")
    click.echo(f"{'K':>5} {'iters':>6} {'train':>8} {'held-out':>9} {'perplexity':>11} "
               f"{'completion':>11} {'umass':>8} {'npmi':>7}")
    for r in rows:
        click.echo(f"{r['topics']:>5} {r['iterations']:>6} {r['training_bound']:>8.4f} "
                   f"{r['heldout_bound']:>9.4f} {r['heldout_perplexity']:>11.1f} {r['completion']:>11.4f} "
                   f"{r['umass']:>8.2f} {r['npmi']:>7.3f}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("corpus", type=click.Path())
@_corpus_options
@click.option("--to", "target", type=click.Choice(["pyldavis"]), default="pyldavis", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="JSON file to write (- for stdout).")
@click.option("--threads", type=click.IntRange(min=1), help="E-step threads (default: all cores).")
@_user_errors
def export(model, corpus, corpus_format, vocab, encoding, reading, target, output, threads):
    """Export MODEL with the documents of CORPUS for another tool.

    pyldavis: a JSON object whose keys are the arguments of pyLDAvis.prepare: topic_term_dists,
    doc_topic_dists (inferred for CORPUS), doc_lengths, vocab, term_frequency. Pass them as
    pyLDAvis.prepare(**data, sort_topics=False) to keep ldaem's topic numbers.

    \b
    Example:
        ldaem export model.npz corpus.txt --to pyldavis -o vis.json
    """
    _check_outputs((output,), (model, corpus, vocab))
    fitted, data = _model_and_documents(model, corpus, corpus_format, vocab, encoding, reading)
    doc_topic = _estimator(fitted, threads).transform(_seen_only(fitted, data)[0].X)
    exported = {      # lengths and frequencies of every token, also of terms unseen in training:
        "topic_term_dists": fitted.topic_word_distribution().tolist(),    # pyLDAvis divides by them
        "doc_topic_dists": doc_topic.tolist(),
        "doc_lengths": [int(n) for n in data.X.sum(axis=1).A1],
        "vocab": [str(w) for w in fitted.vocab],
        "term_frequency": [int(n) for n in data.X.sum(axis=0).A1],
    }
    text = json.dumps(exported)
    if output == "-":
        click.echo(text)
    else:
        with atomic_output(output) as f:
            f.write(text)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("corpus", type=click.Path(), required=False)
@_corpus_options
@click.option("--log", "log_path", type=click.Path(dir_okay=False),
              help="ELBO log of the fit (default: NAME.elbo.tsv beside MODEL, when there is one).")
@click.option("-n", "--top-n", type=click.IntRange(min=2), default=10, show_default=True,
              help="Top words shown per topic, and that coherence is computed over.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              callback=_a_file_name,
              help="HTML file to write.")
@_user_errors
def report(model, corpus, corpus_format, vocab, encoding, reading, log_path, top_n, output):
    """Write a self-contained HTML report of MODEL, to open in a browser.

    It shows the ELBO over the iterations (and the held-out bound, if the fit logged it), each
    topic's top words with their probabilities, each topic's share of the training tokens, and a
    map of the topics (classical MDS of their Hellinger distances, area by share). Given CORPUS,
    it adds each topic's UMass and NPMI coherence on its documents. Needs matplotlib
    (pip install 'ldaem[report]').

    \b
    Example:
        ldaem report model.npz -o report.html
        ldaem report ap.npz corpora/ap/ap.dat --vocab corpora/ap/vocab.txt
    """
    from ldaem import report as reporting
    from ldaem.model import load_model

    reporting.require_matplotlib()
    _check_outputs((output,), (model, corpus, vocab, log_path))
    coherence = None
    if corpus:
        fitted, data, _ = _documents_for_model(model, corpus, corpus_format, vocab, encoding, reading)
        try:
            coherence = reporting.corpus_coherence(fitted, data.X, top_n, corpus)
        except ValueError as e:
            raise click.ClickException(f"{corpus}: {e}") from None
    else:
        fitted = load_model(model)
    if log_path is None and elbo_log_path(model).exists():
        log_path = elbo_log_path(model)
    log = reporting.read_fit_log(log_path, fitted.elbo_trace) if log_path else None
    reporting.write_report(output, fitted, title=f"ldaem report: {Path(model).name}", log=log,
                           coherence=coherence, top_n=top_n)


@main.command()
@click.argument("source", type=click.Path())
@click.argument("output", type=click.Path(dir_okay=False), callback=_files_beside)
@click.option("--to", "to_format", type=click.Choice(["ldac", "uci", "mm", "npz"]),
              help="Output format (default: by OUTPUT's name: .ldac/.dat, docword.NAME.txt, .mtx/.mm, .npz).")
@_corpus_options
@_text_options
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@_user_errors
def convert(source, output, to_format, corpus_format, vocab, encoding, reading, text_settings, quiet):
    """Write the corpus SOURCE to OUTPUT in another format, with its vocabulary beside it.

    ldac is Blei's LDA-C (lda-c, gensim's BleiCorpus), vocabulary in OUTPUT.vocab; uci the UCI
    bag-of-words (gensim's UciCorpus), vocabulary in vocab.NAME.txt beside docword.NAME.txt;
    mm Matrix Market, documents as rows (gensim's MmCorpus, scipy.io.mmread), vocabulary in
    OUTPUT.vocab; npz scipy.sparse.save_npz's layout with the vocabulary and the document names
    inside. A name ending in .gz is written through gzip, and so is an ldac or mm vocabulary
    beside it (NAME.vocab.gz for NAME.gz). Raw text is counted as `fit` counts it.

    \b
    Example:
        ldaem convert corpora/ap/ap.dat --vocab corpora/ap/vocab.txt docword.ap.txt.gz
        ldaem convert abstracts.jsonl abstracts.npz --min-df 5 --id-field doi
    """
    from ldaem.convert import write_corpus
    from ldaem.corpus import load_corpus

    _check_outputs((output,), (source, vocab))
    data = load_corpus(source, corpus_format, vocab, text_settings, encoding=encoding, **reading)
    written = write_corpus(data, output, to_format)
    Progress(quiet)(f"wrote {' and '.join(map(str, written))}: {data.describe()}")


if __name__ == "__main__":
    main()
