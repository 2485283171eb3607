"""Online EM at scale (issue 5): ldaem, gensim's LdaMulticore and scikit-learn's online LDA each
stream one generated corpus of 2,000,000 documents from disk, K = 100.

    python bench/online_scale.py                    # the full run (make bench-online): writes
                                                    # bench/online_results.json and .md
    python bench/online_scale.py --systems ldaem    # a full run of ldaem only: the other rows are
                                                    # kept from bench/online_results.json
    python bench/online_scale.py --docs 40000 --budget 60   # a small run to try it out: prints, writes nothing
    python bench/online_scale.py --generate-only    # just write the corpus (bench/data/, once)

1. The corpus is generated once, chunk by chunk, from the LDA generative process (TRUE_TOPICS
   topics ~ Dirichlet(TRUE_ETA) over N_WORDS words, theta_d ~ Dirichlet(TRUE_ALPHA), lengths
   1 + Poisson(lognormal)) and written as LDA-C under bench/data/ with its vocabulary, plus
   N_HELDOUT held-out documents from the same topics. Chunk i is drawn from its own seed
   (SEED, 1, i), so any prefix of chunks can be regenerated in memory (bench/workers.py does).
2. Each system makes one pass over the same file in minibatches of BATCH documents, with the same
   step sizes rho_t = (TAU0 + t)^-KAPPA and per-document E-step limits, in its own process:
   - ldaem: the command line, `ldaem fit FILE --method online --stream ...`, three ways (LDAEM_RUNS):
     the common settings with alpha estimated, the same with alpha fixed at 1/K as the others,
     and ldaem's own online defaults;
   - gensim: `LdaMulticore(workers=1)` fed by a generator that parses the file's lines lazily;
   - scikit-learn: `LatentDirichletAllocation(learning_method='online').partial_fit` on CSR
     chunks read by `ldaem.stream.stream_corpus`.
   A monitor thread reads the resident memory (VmRSS, VmHWM in /proc/PID/status, and PSS in
   smaps_rollup) of the process and of all its descendants every POLL seconds, and follows the
   documents processed from each system's progress output; at 1/4, 1/2 and all of the corpus it
   records the seconds so far and the peak memory so far.
3. gensim and scikit-learn stop taking documents after --budget seconds (their figures are then
   those of the documents they processed); every final model is scored on the held-out documents
   by the same computation, ldaem's E-step with the system's topics and alpha plugged in (as
   bench/systems.py plugin_bound), so that speed is never bought with quality.
4. A full run restricted with --systems keeps the other systems' runs (and their kept models)
   from the last full run of the same corpus, each marked with when and at which commit it was
   measured.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from corpus_bench import _word                                  # noqa: E402  made-up words
from systems import MAX_DOC_ITER, MEAN_CHANGE_TOL               # noqa: E402  the E-step limits

DATA = BENCH / "data"
MODELS = DATA / "online_models"     # the final models of the full run, kept for --rescore
LDAEM_BIN = Path(sys.executable).parent / "ldaem"

# ---- the generated corpus
SEED = 0
N_DOCS = 2_000_000
N_HELDOUT = 10_000
N_WORDS = 20_000
TRUE_TOPICS = 100
TRUE_ETA = 0.01             # topic-word Dirichlet of the generative process (topics of ~5.9 nats)
TRUE_ALPHA = 0.02           # document-topic Dirichlet of the generative process (1 to 3 topics a
                            # document): peaked enough that the generating model's held-out bound
                            # (-7.6) is far from the unigram model's (-9.5). With 0.05 and 0.1 the
                            # two were equal, and the held-out bound could not tell a model from another.
LENGTH_MEDIAN = 70          # document lengths: 1 + Poisson(lognormal(log LENGTH_MEDIAN, LENGTH_SIGMA))
LENGTH_SIGMA = 0.5
CHUNK = 50_000              # documents generated (and written) at a time

# ---- the fits
TOPICS = 100
BATCH = 1024
TAU0 = 64.0
KAPPA = 0.7
FIT_SEED = 1
FIXED_ALPHA = 1.0 / TOPICS  # gensim's and scikit-learn's alpha (their default, fixed); ldaem runs both ways
THREADS = 2                 # ldaem's numba threads
GENSIM_WORKERS = 1          # LdaMulticore's E-step processes (its main process makes a second)
BUDGET = 1200               # seconds of streaming allowed to gensim and scikit-learn
_STEPS = ["--batch-size", str(BATCH), "--tau0", f"{TAU0:g}", "--kappa", f"{KAPPA:g}"]
LDAEM_RUNS = {              # ldaem's runs: their options of `ldaem fit` besides those common to all
    "ldaem": _STEPS,                                        # alpha estimated from its default start
    "ldaem-fixed-alpha": [*_STEPS, "--alpha", f"{FIXED_ALPHA:g}"],
    "ldaem-defaults": [],   # its own online defaults of minibatch size, tau0, kappa and alpha
}
SYSTEMS = (*LDAEM_RUNS, "gensim", "scikit-learn")
LDAEM_LIMIT = 3600          # ldaem is stopped (SIGTERM) after this long: a safety net only
POLL = 0.2                  # seconds between memory samples
MIB = 2 ** 20

_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


# ================================================================ the corpus

def true_topics():
    """TRUE_TOPICS x N_WORDS topic-word distributions of the generative process."""
    rng = np.random.default_rng([SEED, 0])
    return rng.dirichlet(np.full(N_WORDS, TRUE_ETA), size=TRUE_TOPICS)


def _cumulative(phi):
    cdf = np.cumsum(phi, axis=1)
    cdf[:, -1] = 1.0
    return cdf


def generate_chunk(cdf, n_docs, seed):
    """n_docs documents of the LDA process (CSR, int32 counts, sorted columns) from seed:
    theta_d ~ Dirichlet(TRUE_ALPHA), N_d = 1 + Poisson(lognormal), topic counts ~ Multinomial(N_d,
    theta_d), and each topic's tokens drawn from its word distribution (inverse CDF)."""
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(TRUE_TOPICS, TRUE_ALPHA), size=n_docs)
    lengths = 1 + rng.poisson(rng.lognormal(np.log(LENGTH_MEDIAN), LENGTH_SIGMA, size=n_docs))
    per_topic = rng.multinomial(lengths, theta)                    # n_docs x TRUE_TOPICS
    rows, cols = [], []
    docs = np.arange(n_docs, dtype=np.int32)
    for k in range(TRUE_TOPICS):
        counts = per_topic[:, k]
        rows.append(np.repeat(docs, counts))
        cols.append(np.searchsorted(cdf[k], rng.random(int(counts.sum())), side="right").astype(np.int32))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.int32), (rows, cols)), shape=(n_docs, N_WORDS))
    X.sum_duplicates()
    X.sort_indices()
    return X


def chunk_sizes(n_docs):
    return [min(CHUNK, n_docs - start) for start in range(0, n_docs, CHUNK)]


def generated_prefix(n_docs):
    """The first n_docs documents of the corpus (a multiple of CHUNK, or fewer than one chunk),
    generated in memory as a CSR matrix: the same documents as the first lines of the file."""
    cdf = _cumulative(true_topics())
    chunks = [generate_chunk(cdf, size, [SEED, 1, i]) for i, size in enumerate(chunk_sizes(n_docs))]
    return sp.vstack(chunks, format="csr")


def ldac_bytes(X):
    """The LDA-C lines (`N id:count ...`, 0-based ids) of the documents of X."""
    pairs = list(map("{}:{}".format, X.indices.tolist(), X.data.tolist()))
    lines, end = [], 0
    for length in np.diff(X.indptr).tolist():
        start, end = end, end + length
        lines.append(f"{length} " + " ".join(pairs[start:end]))
    return ("\n".join(lines) + "\n").encode("ascii")


def corpus_paths(n_docs):
    stem = DATA / f"lda_{n_docs}"
    return {"corpus": stem.with_suffix(".ldac"), "vocab": Path(f"{stem}.ldac.vocab"),
            "heldout": DATA / "lda_heldout.ldac", "meta": stem.with_suffix(".json")}


def generator_settings():
    return {"seed": SEED, "words": N_WORDS, "true_topics": TRUE_TOPICS, "true_eta": TRUE_ETA,
            "true_alpha": TRUE_ALPHA, "length_median": LENGTH_MEDIAN, "length_sigma": LENGTH_SIGMA,
            "chunk": CHUNK, "heldout_documents": N_HELDOUT}


def _write_ldac(path, chunks):
    """Write the CSR chunks (an iterator) as one LDA-C file, atomically; returns (nnz, tokens)."""
    tmp = path.with_name(path.name + ".tmp")
    nnz = tokens = 0
    with open(tmp, "wb") as f:
        for X in chunks:
            f.write(ldac_bytes(X))
            nnz, tokens = nnz + X.nnz, tokens + int(X.data.sum())
    os.replace(tmp, path)
    return nnz, tokens


def ensure_corpus(n_docs):
    """Generate the corpus of n_docs documents, its vocabulary and the held-out documents under
    bench/data/ unless they are there already (their .json records how they were made)."""
    paths = corpus_paths(n_docs)
    settings = generator_settings()
    if paths["meta"].exists():
        meta = json.loads(paths["meta"].read_text())
        if meta["settings"] == settings and all(paths[p].exists() for p in ("corpus", "vocab", "heldout")):
            log(f"corpus {paths['corpus']} is there ({meta['documents']:,} documents)")
            return paths, meta
    DATA.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cdf = _cumulative(true_topics())
    paths["vocab"].write_text("".join(f"{_word(i)}\n" for i in range(N_WORDS)))

    def chunks():
        done = 0
        for i, size in enumerate(chunk_sizes(n_docs)):
            yield generate_chunk(cdf, size, [SEED, 1, i])
            done += size
            if i % 4 == 3:
                log(f"generated {done:,} of {n_docs:,} documents")

    nnz, tokens = _write_ldac(paths["corpus"], chunks())
    held_nnz, held_tokens = _write_ldac(paths["heldout"], iter([generate_chunk(cdf, N_HELDOUT, [SEED, 2])]))
    meta = {"documents": n_docs, "nnz": nnz, "tokens": tokens, "bytes": paths["corpus"].stat().st_size,
            "heldout_documents": N_HELDOUT, "heldout_nnz": held_nnz, "heldout_tokens": held_tokens,
            "generation_seconds": time.perf_counter() - started, "settings": settings}
    paths["meta"].write_text(json.dumps(meta, indent=1) + "\n")
    log(f"wrote {paths['corpus']} ({meta['bytes'] / MIB:,.0f} MiB, {nnz:,} nonzeros, {tokens:,} "
        f"tokens) in {meta['generation_seconds']:.0f} s")
    return paths, meta


# ================================================================ the children (gensim, scikit-learn)

def _progress(docs):
    print(f"PROGRESS {docs}", flush=True)


class LdacStream:
    """gensim's corpus interface over an LDA-C file, parsed lazily line by line (as gensim's
    BleiCorpus.line2doc does): each document a list of (id, count). Its length is given, not
    counted: BleiCorpus's len() would parse the whole file first. After the deadline it stops
    yielding documents."""

    def __init__(self, path, n_docs, deadline):
        self.path, self.n_docs, self.deadline = path, n_docs, deadline
        self.stopped = False

    def __len__(self):
        return self.n_docs

    def __iter__(self):
        with open(self.path) as f:
            for i, line in enumerate(f):
                if i % 64 == 0 and time.monotonic() > self.deadline:
                    self.stopped = True
                    return
                yield [(int(w), int(c)) for w, c in (pair.split(":") for pair in line.split()[1:])]


def child_gensim(args):
    import logging

    from gensim.models import LdaMulticore

    logging.getLogger("gensim").setLevel(logging.WARNING)
    vocab = Path(args.vocab).read_text().split()
    processed = [0]

    class Tracked(LdaMulticore):
        """LdaMulticore that reports the documents merged into the topics at every M-step."""

        def do_mstep(self, rho, other, extra_pass=False):
            n = other.numdocs
            result = super().do_mstep(rho, other, extra_pass)
            processed[0] += n
            _progress(processed[0])
            return result

    model = Tracked(None, num_topics=TOPICS, id2word=dict(enumerate(vocab)),
                    workers=GENSIM_WORKERS, chunksize=BATCH, passes=1, batch=False,
                    alpha="symmetric", eta=None, decay=KAPPA, offset=TAU0, eval_every=None,
                    iterations=MAX_DOC_ITER, gamma_threshold=MEAN_CHANGE_TOL, random_state=FIT_SEED)
    corpus = LdacStream(args.corpus, args.n_docs, time.monotonic() + args.budget)
    try:
        model.update(corpus)
    except RuntimeError:    # a stream stopped at the budget: "input corpus size changed during training",
        if not corpus.stopped:   # raised after the last chunk was merged into the topics
            raise
    np.savez(args.out, topic_word=model.get_topics().astype(np.float64),
             alpha=np.asarray(model.alpha, dtype=np.float64))
    print("RESULT " + json.dumps({"documents": processed[0], "stopped_by_budget": corpus.stopped}), flush=True)


def child_sklearn(args):
    from sklearn.decomposition import LatentDirichletAllocation

    from ldaem.stream import stream_corpus

    stream = stream_corpus(args.corpus, BATCH, vocab=args.vocab)
    lda = LatentDirichletAllocation(
        n_components=TOPICS, learning_method="online", batch_size=BATCH,
        total_samples=stream.n_documents, learning_offset=TAU0, learning_decay=KAPPA,
        max_doc_update_iter=MAX_DOC_ITER, mean_change_tol=MEAN_CHANGE_TOL, evaluate_every=-1,
        n_jobs=args.jobs, random_state=FIT_SEED)
    deadline, processed, stopped = time.monotonic() + args.budget, 0, False
    for X in stream:
        if time.monotonic() > deadline:
            stopped = True
            break
        lda.partial_fit(X)
        processed += X.shape[0]
        _progress(processed)
    topic_word = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
    np.savez(args.out, topic_word=topic_word, alpha=np.full(TOPICS, float(lda.doc_topic_prior_)))
    print("RESULT " + json.dumps({"documents": processed, "stopped_by_budget": stopped}), flush=True)


def child_ldaem_prefix(args):
    """ldaem's online EM as `ldaem fit --method online --stream [--alpha A]` runs it (partial_fit
    per streamed minibatch, ldaem.stream.fit_online_streaming), stopped after args.stop documents:
    the model ldaem had when it had seen as many documents as a system stopped at the budget."""
    from ldaem.lda import LDA
    from ldaem.stream import stream_corpus

    stream = stream_corpus(args.corpus, BATCH, vocab=args.vocab)
    fixed = {} if args.alpha is None else {"doc_topic_prior": args.alpha, "doc_topic_prior_update": "fixed"}
    lda = LDA(n_components=TOPICS, learning_method="online", batch_size=BATCH,
              total_samples=stream.n_documents, learning_offset=TAU0, learning_decay=KAPPA,
              max_doc_update_iter=MAX_DOC_ITER, mean_change_tol=MEAN_CHANGE_TOL,
              random_state=FIT_SEED, n_jobs=THREADS, **fixed)
    processed = 0
    for X in stream:
        if processed >= args.stop:
            break
        lda.partial_fit(X)
        processed += X.shape[0]
        _progress(processed)
    np.savez(args.out, topic_word=lda.topic_word_, alpha=lda.doc_topic_prior_)
    print("RESULT " + json.dumps({"documents": processed, "stopped_by_budget": False}), flush=True)


# ================================================================ the monitor

def _status(pid):
    """(VmRSS, VmHWM) of pid in bytes, or None if it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if len(found) < 2:
        return None           # a zombie
    return found["VmRSS"], found["VmHWM"]


def _pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _descendants(pid):
    """pid and every process below it (children, their children, ...), from /proc/PID/task/TID/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


class Monitor:
    """Runs a command and follows it: the resident memory of its process tree every POLL seconds
    (sum of VmRSS, sum of PSS, each process's VmHWM) and the documents it has processed, as
    parsed from its progress lines; at each checkpoint (documents) it records the seconds and
    the peaks so far."""

    def __init__(self, name, cmd, progress_stream, parse, checkpoints, limit):
        self.name, self.cmd, self.parse, self.limit = name, cmd, parse, limit
        self.checkpoints = sorted(checkpoints)
        self.lock = threading.Lock()
        self.peak_rss = self.peak_pss = 0
        self.hwm = {}                        # pid -> its VmHWM (peak resident memory)
        self.docs, self.reached, self.timeline, self.lines = 0, [], [], {"stdout": [], "stderr": []}
        self.first_progress = self.last_progress = None
        self.started = time.perf_counter()
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        bufsize=1)
        self.main_pid = self.process.pid
        self.done = threading.Event()
        readers = [threading.Thread(target=self._read, args=(stream, stream == progress_stream), daemon=True)
                   for stream in ("stdout", "stderr")]
        self.threads = readers + [threading.Thread(target=self._sample_loop, daemon=True)]
        for thread in self.threads:
            thread.start()

    def elapsed(self):
        return time.perf_counter() - self.started

    def _sample(self):
        rss = pss = 0
        for pid in _descendants(self.main_pid):
            status = _status(pid)
            if status is None:
                continue
            rss += status[0]
            pss += _pss(pid)
            with self.lock:
                self.hwm[pid] = max(self.hwm.get(pid, 0), status[1])
        with self.lock:
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        return rss, pss

    def _sample_loop(self):
        last_timeline = -1e9
        while not self.done.is_set():
            rss, pss = self._sample()
            now = self.elapsed()
            if now - last_timeline >= 5:
                with self.lock:
                    self.timeline.append((round(now, 1), self.docs, rss, pss))
                last_timeline = now
            self.done.wait(POLL)

    def _read(self, stream, is_progress):
        for line in getattr(self.process, stream):
            line = line.rstrip("\n")
            self.lines[stream].append(line)
            docs = self.parse(line) if is_progress else None
            if docs is not None:
                self._progress(docs)

    def _progress(self, docs):
        now = self.elapsed()
        self.docs = docs
        if self.first_progress is None:
            self.first_progress = (now, docs)
        self.last_progress = (now, docs)
        while self.checkpoints and docs >= self.checkpoints[0]:
            checkpoint = self.checkpoints.pop(0)
            self._sample()
            self.reached.append(self._snapshot(checkpoint, docs, now))
            log(f"{self.name}: {docs:,} documents in {now:.0f} s ({docs / now:,.0f}/s), peak RSS "
                f"{self.peak_rss / MIB:,.0f} MiB")

    def _snapshot(self, checkpoint, docs, now):
        with self.lock:
            return {"checkpoint": checkpoint, "documents": docs, "seconds": now,
                    "docs_per_second": docs / now, "peak_rss_bytes": self.peak_rss,
                    "peak_pss_bytes": self.peak_pss, "main_hwm_bytes": self.hwm.get(self.main_pid, 0),
                    "sum_hwm_bytes": sum(self.hwm.values()), "processes": len(self.hwm)}

    def wait(self):
        try:
            self.process.wait(timeout=self.limit)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: over {self.limit} s, stopping it (SIGTERM)")
            self.process.send_signal(signal.SIGTERM)
            self.process.wait()
        self.done.set()
        for thread in self.threads:
            thread.join()
        end = self.elapsed()
        result = {"command": " ".join(map(str, self.cmd)), "returncode": self.process.returncode,
                  "wall_seconds": end, "checkpoints": self.reached, "timeline": self.timeline,
                  "peak_rss_bytes": self.peak_rss, "peak_pss_bytes": self.peak_pss,
                  "main_hwm_bytes": self.hwm.get(self.main_pid, 0), "sum_hwm_bytes": sum(self.hwm.values()),
                  "processes": len(self.hwm), "stderr_tail": self.lines["stderr"][-5:]}
        if self.last_progress is not None:
            (t0, d0), (t1, d1) = self.first_progress, self.last_progress
            result.update(documents=d1, seconds_to_last=t1, docs_per_second=d1 / t1,
                          steady_docs_per_second=(d1 - d0) / (t1 - t0) if t1 > t0 else None,
                          seconds_to_first=t0)
        for line in self.lines["stdout"]:
            if line.startswith("RESULT "):
                result.update(json.loads(line[7:]))
        if self.process.returncode != 0:
            log(f"{self.name} failed ({self.process.returncode}): " + "\n".join(self.lines["stderr"][-20:]))
        return result


# ================================================================ the runs

def _ldaem_progress(total):
    """Documents processed, from the stderr of `ldaem fit --stream`: its first line gives the
    minibatch size ('... in minibatches of 512'), then a line 'iter N ...' per minibatch."""
    batch = [BATCH]

    def parse(line):
        if match := re.search(r"in minibatches of (\d+)", line):
            batch[0] = int(match.group(1))
        match = re.match(r"iter\s+(\d+)\s", line)
        return min(int(match.group(1)) * batch[0], total) if match else None
    return parse


def _child_progress(line):
    return int(line.split()[1]) if line.startswith("PROGRESS ") else None


def warm_up(paths, folder):
    """Fill numba's cache for the kernels the ldaem run loads (not timed): a short streamed fit."""
    subprocess.run([str(LDAEM_BIN), "fit", str(paths["heldout"]), "--vocab", str(paths["vocab"]),
                    "--method", "online", "--stream", "-k", str(TOPICS), "--passes", "1",
                    "--batch-size", str(BATCH), "--seed", str(FIT_SEED), "-q",
                    "-o", str(folder / "warm.npz")], check=True)


def run_ldaem(name, paths, n_docs, folder, checkpoints):
    """The run `name` of LDAEM_RUNS; with the online settings its model file records."""
    out = folder / f"{name}.npz"
    cmd = [str(LDAEM_BIN), "fit", str(paths["corpus"]), "--vocab", str(paths["vocab"]),
           "--method", "online", "--stream", "-k", str(TOPICS), "--passes", "1", *LDAEM_RUNS[name],
           "--doc-max-iter", str(MAX_DOC_ITER), "--doc-tol", f"{MEAN_CHANGE_TOL:g}",
           "--threads", str(THREADS), "--seed", str(FIT_SEED), "-o", str(out)]
    result = Monitor(name, cmd, "stderr", _ldaem_progress(n_docs), checkpoints, LDAEM_LIMIT).wait()
    result["stopped_by_budget"] = False
    result["model_file"] = out.name
    if out.exists():
        with np.load(out) as saved:
            settings = json.loads(str(saved["settings"]))
        result["settings"] = {key: settings[key]
                              for key in ("batch_size", "learning_offset", "learning_decay")}
    return result


def run_child(system, paths, n_docs, folder, checkpoints, budget, jobs, corpus=None, stop=0, out=None,
              alpha=None):
    out = folder / (out or f"{system}.npz")
    cmd = [sys.executable, __file__, "--child", system, "--corpus", str(corpus or paths["corpus"]),
           "--vocab", str(paths["vocab"]), "--n-docs", str(n_docs), "--budget", str(budget),
           "--jobs", str(jobs), "--stop", str(stop), "--out", str(out),
           *([] if alpha is None else ["--alpha", repr(alpha)])]
    result = Monitor(system, cmd, "stdout", _child_progress, checkpoints, budget + 1800).wait()
    result["model_file"] = out.name
    return result


def load_fitted(path):
    """(K x V topic-word distributions, alpha) of a saved final model: ldaem's model file (its
    lambda normalised) or a child's npz (topic_word, alpha)."""
    with np.load(path) as saved:
        if "topic_word" in saved and "format_version" not in saved:
            return saved["topic_word"], saved["alpha"]
    from ldaem.model import load_model
    model = load_model(path)
    return model.topic_word_distribution(), model.alpha


def scores(path, heldout):
    """The figures of quality of the model saved at path: its held-out bound (its topics and
    alpha), how well its topics recover the generating ones, and its alpha (mean)."""
    if not Path(path).exists():
        return {"heldout_bound": None, "topic_recovery": None, "alpha": None}
    topic_word, alpha = load_fitted(path)
    return {"heldout_bound": common_bound(topic_word, alpha, heldout),
            "topic_recovery": topic_recovery(topic_word, true_topics()),
            "alpha": float(np.mean(alpha))}


def unigram_bound(X):
    """Log-likelihood per token of X under the generating process's word frequencies (the mean
    of its topics): what a model that has learnt no topics at all scores."""
    marginal = true_topics().mean(axis=0)
    return float(X.multiply(np.log(marginal)[None, :]).sum() / X.sum())


def topic_recovery(topic_word, truth):
    """Mean Bhattacharyya coefficient sum_w sqrt(p_w q_w) (1: the same distribution, 0: disjoint)
    between the generating topics and the fitted ones, matched one to one for the largest total
    (Hungarian algorithm). Two different generating topics score about 0.02 to each other."""
    from scipy.optimize import linear_sum_assignment
    similarity = np.sqrt(np.asarray(truth, dtype=np.float64)) @ np.sqrt(np.asarray(topic_word, dtype=np.float64)).T
    rows, cols = linear_sum_assignment(-similarity)
    return float(similarity[rows, cols].mean())


def common_bound(topic_word, alpha, X):
    """Held-out ELBO per word of X by ldaem's E-step with these topics (K x V, rows summing to
    one) and alpha plugged in, as bench/systems.py plugin_bound: one formula for every system."""
    from ldaem.estep import e_step
    beta = np.maximum(np.asarray(topic_word, dtype=np.float64).T, 1e-100)
    result = e_step(X, beta, np.asarray(alpha, dtype=np.float64), max_iter=MAX_DOC_ITER,
                    tol=MEAN_CHANGE_TOL, want_sstats=False)
    return float(result.doc_bound.sum() / X.sum())


# ================================================================ the report

def _mib(value):
    return "—" if value is None else f"{value / MIB:,.0f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _at(run, checkpoint, key):
    for reached in run.get("checkpoints", []):
        if reached["checkpoint"] == checkpoint:
            return reached[key]
    return None


def _growth(run, first, last):
    a, b = _at(run, first, "peak_rss_bytes"), _at(run, last, "peak_rss_bytes")
    return None if a is None or b is None else (b - a) / a


def _bound(value):
    return "—" if value is None else f"{value:.3f}"


def _checkpoint_name(c):
    return f"{c / 1e6:g}M" if c >= 100_000 else f"{c:,}"


def _sklearn_jobs_note(results):
    probe = results.get("sklearn_jobs_probe")
    if not probe:
        return f"n_jobs={results['sklearn_jobs']} was given on the command line."
    rates = "; ".join(f"n_jobs={jobs}: {p['docs_per_second']:,.0f} docs/s, {p['processes']} processes, "
                      f"peak RSS {p['peak_rss_bytes'] / MIB:,.0f} MiB" for jobs, p in probe.items()
                      if p["docs_per_second"])
    return (f"n_jobs={results['sklearn_jobs']} is the faster of 1 and 2 in a probe on the held-out "
            f"file just before ({rates}): with n_jobs=2 every minibatch's E-step is split over two "
            f"joblib worker processes, which receive the {TOPICS} x {N_WORDS:,} topics anew each time.")


def measured(results):
    """When, at which commit and with which ldaem source the runs of results were measured."""
    return {"date": results["machine"]["date"], "git_commit": results["git_commit"],
            "ldaem_revision": results["machine"]["ldaem_revision"]}


def _provenance(results):
    """Which rows were measured when, if they come from more than one run ('' if not)."""
    groups = {}
    for name, run in results["runs"].items():
        groups.setdefault(tuple((run.get("measured") or measured(results)).values()), []).append(name)
    if len(groups) < 2:
        return ""
    this_run = tuple(measured(results).values())
    sentences = []
    for (date, commit, revision), names in groups.items():
        rows = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        how = "rerun on" if (date, commit, revision) == this_run else "kept from the run of"
        sentences.append(f"{rows} rows: {how} {date} at ldaem {revision} (git commit {commit})")
    return (" " + "; ".join(sentences) + " (a run restricted with `--systems` keeps the other "
            "systems' rows of the last full run on the same corpus).")


def _command(run):
    command = run.get("command", "").replace(str(BENCH.parent) + "/", "")
    return re.sub(r"-o \S+", "-o MODEL.npz", command)


def markdown(results):
    m, meta, runs = results["machine"], results["corpus"], results["runs"]
    cps = results["checkpoints"]
    cp_names = [_checkpoint_name(c) for c in cps]
    ldaem_rate = runs.get("ldaem", {}).get("docs_per_second")
    labels = {"ldaem": "ldaem (alpha estimated, its default)",
              "ldaem-fixed-alpha": f"ldaem, `--alpha {FIXED_ALPHA:g}` (as the others)",
              "ldaem-defaults": "ldaem, its own online defaults",
              "gensim": f"gensim `LdaMulticore` (workers={GENSIM_WORKERS})",
              "scikit-learn": f"scikit-learn online (n_jobs={results['sklearn_jobs']})"}
    rows = []
    for name, run in runs.items():
        docs = run.get("documents")
        stopped = ", stopped at the budget" if run.get("stopped_by_budget") else ""
        rate = run.get("docs_per_second")
        rows.append((labels[name], f"{docs:,}{stopped}" if docs else "—",
                     f"{run['seconds_to_last']:,.0f}" if docs else "—",
                     f"{rate:,.0f}" if rate else "—",
                     f"{rate / ldaem_rate:.2f}" if rate and ldaem_rate else "—",
                     *(_mib(_at(run, c, "peak_rss_bytes")) for c in cps),
                     _bound(run.get("heldout_bound")), _bound(run.get("topic_recovery")),
                     _bound(run.get("alpha"))))
    memory_rows = []
    for name, run in runs.items():
        growth = _growth(run, cps[0], max((r["checkpoint"] for r in run["checkpoints"]), default=cps[0]))
        memory_rows.append((name, run["processes"], *(_mib(_at(run, c, "main_hwm_bytes")) for c in cps),
                            *(_mib(_at(run, c, "peak_pss_bytes")) for c in cps),
                            _mib(run["peak_rss_bytes"]),
                            "—" if growth is None or len(run["checkpoints"]) < 2 else f"{100 * growth:+.1f}%"))
    matched = [(name, f"{same['documents']:,}", _bound(runs[name].get("heldout_bound")),
                _bound(same.get("heldout_bound")), _bound(runs[name].get("topic_recovery")),
                _bound(same.get("topic_recovery")))
               for name, same in results.get("ldaem_at_same_documents", {}).items()]
    budget_note = (f"gensim and scikit-learn stop taking documents after {results['budget']:,} s "
                   f"({results['budget'] / 60:.3g} minutes) of streaming; one stopped there is reported "
                   f"for the documents it processed: its docs/s over them, its memory at the "
                   f"checkpoints it reached (— for the others) and the quality of the model it had then.")
    speed = ", ".join(f"{name} {run['docs_per_second']:,.0f} docs/s" for name, run in runs.items()
                      if run.get("docs_per_second"))
    load = "; ".join(f"{name}: {' / '.join(map(str, run['load_average_before']))} before, "
                     f"{' / '.join(map(str, run['load_average_after']))} after" for name, run in runs.items())
    defaults = runs.get("ldaem-defaults", {}).get("settings")
    parts = [
        f"# Online EM at scale: {meta['documents']:,} documents streamed from disk, K = {TOPICS}",
        f"Run on {m['date']} ({results['mode']} run): {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v and k != "tomotopy")
        + f", ldaem at {m['ldaem_revision']} (git commit {results['git_commit']}).{_provenance(results)} "
        f"BLAS: {m['blas']}. "
        f"The machine is shared: other work ran beside this benchmark (load average, 1 / 5 / 15 "
        f"minutes, {' / '.join(str(x) for x in m['load_average'])} at the start and "
        f"{' / '.join(str(x) for x in results['load_average_end'])} at the end; {load}), and the "
        f"systems ran one after the other, so the ratios carry that noise. Command: "
        f"`{results.get('command', '.venv/bin/python bench/online_scale.py')}` "
        f"({results['total_seconds'] / 60:.0f} minutes with the corpus on disk)"
        + (f"; the quality figures recomputed from its kept models by `--rescore` on {results['rescored']}."
           if results.get("rescored") else "."),
        "## The corpus",
        f"`bench/data/{Path(results['paths']['corpus']).name}`: {meta['documents']:,} documents, "
        f"{N_WORDS:,} terms, {meta['nnz']:,} nonzeros, {meta['tokens']:,} tokens, "
        f"{meta['bytes'] / MIB:,.0f} MiB of LDA-C, generated once by the LDA process "
        f"({TRUE_TOPICS} topics ~ Dirichlet({TRUE_ETA}) over the words, theta_d ~ "
        f"Dirichlet({TRUE_ALPHA}), N_d = 1 + Poisson(lognormal(log {LENGTH_MEDIAN}, {LENGTH_SIGMA})), "
        f"mean {meta['tokens'] / meta['documents']:.1f} tokens; numpy seeds ({SEED}, 1, chunk)) in "
        f"{meta['generation_seconds'] / 60:.1f} minutes. Held out: `{Path(results['paths']['heldout']).name}`, "
        f"{meta['heldout_documents']:,} more documents of the same topics ({meta['heldout_tokens']:,} "
        f"tokens). On them the generating topics and alpha score {results['true_bound']:.3f} nats "
        f"per token, and the generating word frequencies alone (a model with no topics) "
        f"{results['unigram_bound']:.3f}: a fitted model lies between the two.",
        "## Speed, memory and quality",
        _table(("system", "documents processed", "seconds", "docs/s", "ratio to ldaem",
                *(f"peak RSS at {c} (MiB)" for c in cp_names), "held-out bound (nats/token)",
                "topic recovery", "final alpha"), rows),
        f"Each system makes one pass over the same file in its own process: minibatches of {BATCH} "
        f"documents, rho_t = ({TAU0:g} + t)^-{KAPPA:g} (ldaem's defaults aside, below), eta = 1/K, "
        f"at most {MAX_DOC_ITER} inner "
        f"E-step iterations per document, stopping at a mean absolute change of gamma below "
        f"{MEAN_CHANGE_TOL:g}, seed {FIT_SEED}. *seconds*: from starting the process to its last "
        f"minibatch (start-up, imports and counting the file's documents included); *docs/s*: "
        f"documents processed over those seconds. *Peak RSS at n*: the largest sum of VmRSS over "
        f"the system's processes (the process and all its children), sampled every {POLL} s, up "
        f"to when it had processed n documents. *Held-out bound*: each final model's topics "
        f"(posterior means) and alpha plugged into ldaem's E-step on the {meta['heldout_documents']:,} "
        f"held-out documents, the same computation for every system (as `bench/systems.py`). "
        f"*Topic recovery*: the mean Bhattacharyya coefficient sum_w sqrt(p_w q_w) between each "
        f"generating topic and the fitted topic matched to it one to one (1: recovered exactly; "
        f"unrelated topics score near 0). *Final alpha*: the model's alpha (mean over topics). "
        + budget_note,
        f"- ldaem: `{_command(runs.get('ldaem', {}))}` ({THREADS} numba threads; alpha estimated, "
        f"starting from 1/K = {1 / TOPICS:g}, its online default); the `--alpha {FIXED_ALPHA:g}` row "
        f"adds `--alpha {FIXED_ALPHA:g}`, the fixed alpha = 1/K that gensim and scikit-learn use, so "
        f"that row has the same settings as theirs.",
        *([f"- ldaem, its own online defaults: `{_command(runs['ldaem-defaults'])}`, no minibatch "
           f"size, tau0 or kappa given, so its defaults: minibatches of {defaults['batch_size']} "
           f"documents, rho_t = ({defaults['learning_offset']:g} + t)^-{defaults['learning_decay']:g} "
           f"(as its model file records them), alpha estimated from 1/K; the rest as the ldaem row."]
          if defaults else []),
        f"- gensim {m['versions']['gensim']}: `LdaMulticore(workers={GENSIM_WORKERS}, chunksize={BATCH}, "
        f"passes=1, decay={KAPPA:g}, offset={TAU0:g}, iterations={MAX_DOC_ITER}, "
        f"gamma_threshold={MEAN_CHANGE_TOL:g}, eval_every=None, alpha='symmetric')` (alpha fixed at "
        f"1/K: LdaMulticore cannot learn it; float32). workers=1 because the machine has 2 cores: "
        f"the one E-step worker process takes one, and the main process, which reads the file, "
        f"ships each chunk with the model's state to the worker and makes the M-steps, the other. "
        f"The documents come from a generator that parses the file's lines lazily into (id, count) "
        f"lists, as `gensim.corpora.BleiCorpus` does (whose `len()` would parse the whole file "
        f"first); progress is counted at each M-step.",
        f"- scikit-learn {m['versions']['scikit-learn']}: `LatentDirichletAllocation(learning_method="
        f"'online', batch_size={BATCH}, total_samples={meta['documents']:,}, learning_offset={TAU0:g}, "
        f"learning_decay={KAPPA:g}, n_jobs={results['sklearn_jobs']})` (alpha fixed at 1/K), one "
        f"`partial_fit` per {BATCH}-document CSR chunk read by `ldaem.stream.stream_corpus`. "
        + _sklearn_jobs_note(results),
        f"Speed: {speed}.",
    ]
    if matched:
        parts += [
            "### Quality at the same number of documents",
            _table(("system stopped at the budget", "documents", "its held-out bound",
                    f"ldaem's (`--alpha {FIXED_ALPHA:g}`), after the same documents",
                    "its topic recovery", "ldaem's"), matched),
            f"ldaem with the same settings (alpha fixed at {FIXED_ALPHA:g}) after the same first "
            f"documents of the file, by the same online updates as `ldaem fit --stream` "
            f"(LDA.partial_fit per streamed minibatch, same seed), scored the same way: the step "
            f"sizes rho_t depend only on the minibatches seen, so this is the model the full run "
            f"had at that point.",
        ]
    parts += [
        "## Memory in detail",
        _table(("system", "processes", *(f"main process VmHWM at {c} (MiB)" for c in cp_names),
                *(f"peak PSS at {c} (MiB)" for c in cp_names), "peak RSS, whole run (MiB)",
                "peak RSS growth, first to last checkpoint reached"), memory_rows),
        "VmHWM is the kernel's exact peak resident memory of the main process; PSS (proportional "
        "set size, smaps_rollup) counts the pages that processes share (gensim's forked worker, "
        "shared libraries) once in total rather than once per process, so its sum is the "
        "footprint of the process tree. *Whole run* includes writing the model after the last "
        "minibatch. `online_results.json` has a timeline of the memory every 5 s.",
    ]
    return "\n\n".join(parts) + "\n"


# ================================================================ main

def _git_commit():
    try:
        return subprocess.run(["git", "-C", str(BENCH.parent), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def probe_sklearn_jobs(paths, folder, budget):
    """scikit-learn's docs/s on the held-out file with n_jobs=1 and n_jobs=2 (its partial_fit
    spreads each minibatch's E-step over joblib worker processes): the faster one is used."""
    heldout_docs = N_HELDOUT
    rates = {}
    for jobs in (1, 2):
        run = run_child("scikit-learn", paths, heldout_docs, folder, [], budget, jobs,
                        corpus=paths["heldout"])
        rates[jobs] = {"documents": run.get("documents"), "docs_per_second": run.get("steady_docs_per_second"),
                       "peak_rss_bytes": run["peak_rss_bytes"], "processes": run["processes"]}
        log(f"scikit-learn n_jobs={jobs}: {rates[jobs]['docs_per_second'] or 0:,.0f} docs/s (steady), "
            f"{run['processes']} processes, peak RSS {run['peak_rss_bytes'] / MIB:,.0f} MiB")
    best = max(rates, key=lambda jobs: rates[jobs]["docs_per_second"] or 0)
    return best, rates


def ldaem_at(paths, n_docs, models, name, documents, heldout, budget=BUDGET):
    """ldaem's model, alpha fixed at 1/K as gensim's and scikit-learn's, after the first
    `documents` documents (as many as `name` processed): fitted by child_ldaem_prefix into
    models/ldaem-at-NAME.npz unless it is there; with its scores."""
    out = models / f"ldaem-at-{name}.npz"
    entry = {"documents": documents, "model_file": out.name, "alpha_setting": FIXED_ALPHA}
    if not out.exists():
        prefix = run_child("ldaem-prefix", paths, n_docs, models, [], budget, 1, stop=documents,
                           out=out.name, alpha=FIXED_ALPHA)
        entry.update(documents=prefix["documents"], seconds_to_last=prefix["seconds_to_last"],
                     docs_per_second=prefix["docs_per_second"])
    entry.update(scores(out, heldout))
    log(f"ldaem (alpha {FIXED_ALPHA:g}) at {entry['documents']:,} documents (as {name}): held-out "
        f"{entry['heldout_bound']:.4f}, topic recovery {entry['topic_recovery']:.3f}")
    return entry


def earlier_results(meta):
    """bench/online_results.json if it holds a full run on this corpus, else None."""
    path = BENCH / "online_results.json"
    earlier = json.loads(path.read_text()) if path.exists() else None
    return earlier if earlier and earlier["mode"] == "full" and earlier["corpus"] == meta else None


def rescore(paths):
    """Recompute the held-out figures of bench/online_results.json from the models the full run
    kept in bench/data/online_models/ (refitting ldaem's prefix models that are missing: they are
    deterministic), and rewrite the results."""
    from ldaem.corpus import load_corpus

    results = json.loads((BENCH / "online_results.json").read_text())
    heldout = load_corpus(paths["heldout"], vocab=paths["vocab"]).X
    for name, run in results["runs"].items():
        before = run.get("heldout_bound")
        run.update(scores(MODELS / run.get("model_file", f"{name}.npz"), heldout))
        log(f"{name}: held-out {run['heldout_bound']} (recorded {before}), topic recovery "
            f"{run['topic_recovery']}")
    for name, entry in results["ldaem_at_same_documents"].items():
        before = entry.get("heldout_bound")
        entry.update(ldaem_at(paths, results["corpus"]["documents"], MODELS, name, entry["documents"], heldout))
        log(f"ldaem at {entry['documents']:,}: recorded {before}")
    results["rescored"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=N_DOCS, help="documents of the corpus")
    parser.add_argument("--budget", type=int, default=BUDGET,
                        help="seconds of streaming for gensim and scikit-learn")
    parser.add_argument("--sklearn-jobs", type=int,
                        help="scikit-learn's n_jobs (default: the faster of 1 and 2 on the held-out file)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="the systems to run; a full run keeps the others' last results")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--rescore", action="store_true",
                        help="recompute the held-out figures of the last full run from its kept models")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--corpus", "--vocab", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--n-docs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--alpha", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    systems = args.systems.split(",")
    if set(systems) - set(SYSTEMS):
        parser.error(f"--systems: one of {', '.join(SYSTEMS)}")
    if args.child:
        return {"gensim": child_gensim, "scikit-learn": child_sklearn,
                "ldaem-prefix": child_ldaem_prefix}[args.child](args)

    from machine import finish_run, machine_info, write_results
    paths, meta = ensure_corpus(args.docs)
    if args.generate_only:
        return
    if args.rescore:
        results = rescore(paths)
        text = markdown(results)
        print(text)
        write_results("online", results, text)
        return
    from ldaem.corpus import load_corpus

    full = args.docs == N_DOCS
    checkpoints = [args.docs // 20, args.docs // 8, args.docs // 4, args.docs // 2, args.docs]
    machine = machine_info()
    log(f"machine: {machine['cores']} cores, load {machine['load_average']}")
    heldout = load_corpus(paths["heldout"], vocab=paths["vocab"]).X
    command = " ".join([".venv/bin/python bench/online_scale.py", *(sys.argv[1:] if argv is None else argv)])
    results = {"mode": "full" if full else "trial", "machine": machine, "git_commit": _git_commit(),
               "command": command, "corpus": meta, "paths": {k: str(v) for k, v in paths.items()},
               "checkpoints": checkpoints,
               "budget": args.budget, "threads": THREADS, "runs": {}, "ldaem_at_same_documents": {}}
    results["true_bound"] = common_bound(true_topics(), np.full(TRUE_TOPICS, TRUE_ALPHA), heldout)
    results["unigram_bound"] = unigram_bound(heldout)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        models = MODELS if full else folder
        models.mkdir(parents=True, exist_ok=True)
        earlier = earlier_results(meta) if full else None
        kept = {name: run for name, run in (earlier or {}).get("runs", {}).items() if name not in systems}
        for run in kept.values():
            run.setdefault("measured", measured(earlier))
        for name in [*systems, "ldaem-at-*"]:    # a model of an earlier run must not be reused
            for stale in models.glob(f"{name}.*"):
                stale.unlink()
        warm_up(paths, folder)
        if "scikit-learn" in systems and args.sklearn_jobs is None:
            results["sklearn_jobs"], results["sklearn_jobs_probe"] = probe_sklearn_jobs(
                paths, folder, min(args.budget, 60))
        elif "scikit-learn" in kept:
            results["sklearn_jobs"], results["sklearn_jobs_probe"] = (earlier["sklearn_jobs"],
                                                                      earlier["sklearn_jobs_probe"])
        else:
            results["sklearn_jobs"], results["sklearn_jobs_probe"] = args.sklearn_jobs or 1, None
        for name in systems:
            load = [round(x, 2) for x in os.getloadavg()]
            log(f"running {name} (load average {load})")
            if name in LDAEM_RUNS:
                run = run_ldaem(name, paths, args.docs, models, checkpoints)
            else:
                run = run_child(name, paths, args.docs, models, checkpoints, args.budget,
                                results["sklearn_jobs"])
            run["load_average_before"] = load
            run["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            run["measured"] = measured(results)
            run.update(scores(models / run["model_file"], heldout))
            log(f"{name}: {run.get('documents')} documents, {run.get('docs_per_second') or 0:,.0f} docs/s, "
                f"peak RSS {run['peak_rss_bytes'] / MIB:,.0f} MiB, held-out {run['heldout_bound']}")
            results["runs"][name] = run
        runs = {**kept, **results["runs"]}
        results["runs"] = {name: runs[name] for name in SYSTEMS if name in runs}
        for name, run in results["runs"].items():    # ldaem's model after as many documents
            if not name.startswith("ldaem") and run.get("documents") and run["documents"] < args.docs:
                log(f"ldaem stopped after {run['documents']:,} documents, as {name}")
                results["ldaem_at_same_documents"][name] = ldaem_at(paths, args.docs, models, name,
                                                                    run["documents"], heldout)
    finish_run("online", results, markdown, _START, write=full)
    if full:
        log("wrote bench/online_results.json and bench/online_results.md")


if __name__ == "__main__":
    main()
