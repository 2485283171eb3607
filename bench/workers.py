"""Seconds per batch EM iteration against the number of local Dask workers (issue 5).

    python bench/workers.py            # the full run (make bench-workers): writes bench/workers_results.json and .md
    python bench/workers.py --quick    # a small corpus to try it out: prints, writes nothing

Batch EM (K = TOPICS) on the first DOCUMENTS documents of bench/online_scale.py's generated corpus
(regenerated in memory from the same seeds: the same documents as the first lines of
bench/data/lda_2000000.ldac), timed

- in this process with 1 and with 2 numba threads, and
- with LDA(scheduler=client) on ldaem.distributed.local_cluster(W), as `ldaem fit --workers W`
  starts it (W single-threaded worker processes on 127.0.0.1, without Dask's Active Memory
  Manager) for W = 1, 2, 4: the corpus is partitioned across the workers once, and each
  iteration ships the topics out and brings the summed statistics back.

Each fit runs 1 + TIMED_ITERATIONS EM iterations; the first is a warm-up (it loads the numba
kernels in every worker process and starts every document's gamma cold) and is not timed. The
seconds of an iteration are the estimator's own (IterationRecord.seconds: E-step, ELBO and
M-step). The configurations take turns over ROUNDS rounds, so that a burst of load on the shared
machine hits one round of each rather than all of one; the table shows the median over every
timed iteration of a configuration.
"""

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from machine import finish_run, machine_info           # noqa: E402
from online_scale import N_DOCS, corpus_paths, generated_prefix   # noqa: E402

from ldaem import LDA                                   # noqa: E402
from ldaem.distributed import local_cluster            # noqa: E402

DOCUMENTS = 100_000
TOPICS = 50
TIMED_ITERATIONS = 3
ROUNDS = 3
SEED = 0
CONFIGS = (("in-process", 1), ("in-process", 2), ("dask", 1), ("dask", 2), ("dask", 4))
QUICK = {"documents": 10_000, "topics": 10, "timed": 2, "rounds": 1}

_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


def _name(kind, n):
    return f"in-process, {n} numba thread{'s' * (n > 1)}" if kind == "in-process" else \
        f"Dask LocalCluster, {n} worker{'s' * (n > 1)}"


def fit_once(X, kind, n, topics, timed):
    """One fit of 1 + timed iterations: its records and the seconds outside the iterations
    (starting the cluster, partitioning the corpus onto it, closing it)."""
    params = dict(n_components=topics, max_iter=1 + timed, tol=0.0, random_state=SEED)
    started = time.perf_counter()
    if kind == "in-process":
        lda = LDA(n_jobs=n, **params).fit(X)
        cluster_seconds = 0.0
    else:
        from distributed import Client
        with local_cluster(n) as cluster, Client(cluster) as client:
            cluster_seconds = time.perf_counter() - started
            lda = LDA(scheduler=client, **params).fit(X)
    total = time.perf_counter() - started
    records = lda.iterations_
    return {"iteration_seconds": [r.seconds for r in records],
            "elbo": [r.elbo for r in records],
            "inner_iterations": [r.mean_doc_iter for r in records],
            "cluster_start_seconds": cluster_seconds,
            "outside_iterations_seconds": total - sum(r.seconds for r in records),
            "total_seconds": total}


def run(X, topics, timed, rounds):
    fits = {f"{kind}:{n}": [] for kind, n in CONFIGS}
    for r in range(rounds):
        for kind, n in CONFIGS:
            fit = fit_once(X, kind, n, topics, timed)
            fits[f"{kind}:{n}"].append(fit)
            log(f"round {r + 1}, {_name(kind, n)}: seconds per iteration "
                + " ".join(f"{s:.2f}" for s in fit["iteration_seconds"])
                + f" (outside the iterations {fit['outside_iterations_seconds']:.1f} s)")
    reference = fits["in-process:1"][0]
    rows = []
    for kind, n in CONFIGS:
        runs = fits[f"{kind}:{n}"]
        timed_seconds = [s for f in runs for s in f["iteration_seconds"][1:]]
        # the same iteration does the same work in every round: its best time is the least disturbed
        best_per_iteration = [min(seconds) for seconds in zip(*(f["iteration_seconds"][1:] for f in runs))]
        elbo_gap = max(abs(a - b) / abs(b) for f in runs for a, b in zip(f["elbo"], reference["elbo"]))
        rows.append({"kind": kind, "n": n, "name": _name(kind, n),
                     "processes": 1 if kind == "in-process" else n,
                     "threads": n if kind == "in-process" else n,
                     "seconds": statistics.median(best_per_iteration),
                     "best_per_iteration": best_per_iteration,
                     "median_seconds": statistics.median(timed_seconds),
                     "min_seconds": min(timed_seconds), "max_seconds": max(timed_seconds),
                     "warm_up_seconds": statistics.median(f["iteration_seconds"][0] for f in runs),
                     "setup_seconds": statistics.median(f["outside_iterations_seconds"] for f in runs),
                     "cluster_start_seconds": statistics.median(f["cluster_start_seconds"] for f in runs),
                     "inner_iterations": statistics.mean(i for f in runs for i in f["inner_iterations"][1:]),
                     "max_relative_elbo_difference": elbo_gap, "fits": runs})
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = base / row["seconds"]
    return rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def markdown(results):
    m, c = results["machine"], results["corpus"]
    rows = [(r["name"], f"{r['seconds']:.2f}", f"{r['median_seconds']:.2f}",
             f"{r['min_seconds']:.2f}-{r['max_seconds']:.2f}",
             f"{r['speedup']:.2f}", f"{r['warm_up_seconds']:.1f}", f"{r['setup_seconds']:.1f}",
             f"{r['inner_iterations']:.1f}", f"{r['max_relative_elbo_difference']:.1e}")
            for r in results["rows"]]
    return "\n\n".join([
        "# Batch EM: seconds per iteration against the number of local Dask workers",
        f"Run on {m['date']} ({results['mode']} run): {m['cores']} cores ({m['cpu']}), Python "
        f"{m['python']}, numba {m['versions']['numba']}, dask/distributed {results['distributed']}, "
        f"ldaem at {m['ldaem_revision']} (git commit {results['git_commit']}). The machine is shared: "
        f"load average (1 / 5 / 15 minutes) {' / '.join(map(str, m['load_average']))} at the start and "
        f"{' / '.join(map(str, results['load_average_end']))} at the end. Command: `.venv/bin/python "
        f"bench/workers.py` ({results['total_seconds'] / 60:.1f} minutes).",
        f"Corpus: the first {c['documents']:,} documents of `bench/online_scale.py`'s generated corpus "
        f"({c['terms']:,} terms, {c['nnz']:,} nonzeros, {c['tokens']:,} tokens; regenerated in memory "
        f"from the same seeds). Batch EM, K = {results['topics']}, ldaem's defaults otherwise (at most "
        f"100 inner iterations per document, tol 1e-3, gamma warm-started from the previous "
        f"iteration), seed {SEED}.",
        _table(("configuration", "s / iteration", "median of all rounds", "range of all rounds",
                "speedup over 1 thread",
                "warm-up iteration (s)", "setup (s)", "inner iterations / document",
                "max relative ELBO difference"), rows),
        f"Each fit runs {1 + results['timed']} EM iterations; the first (warm-up: the numba kernels "
        f"load in every process, the corpus reaches the workers and every gamma starts cold) is not "
        f"timed. The configurations take turns, {results['rounds']} rounds. *s / iteration*: the "
        f"median over the {results['timed']} timed iterations of each iteration's best time over the "
        f"rounds (an iteration does the same work in every round and configuration, and other work "
        f"on the machine only ever slows it down); *median of all rounds*: the plain median of all "
        f"{results['timed'] * results['rounds']} timed iterations. Both are the estimator's own time of an iteration (E-step, "
        f"ELBO, M-step), on the cluster including shipping the {results['topics']} x "
        f"{c['terms']:,} topics to the workers and the summed statistics back. *Setup*: the rest of "
        f"the fit's wall time: starting the LocalCluster (`ldaem.distributed.local_cluster(W)`: "
        f"`n_workers=W, threads_per_worker=1, processes=True, host='127.0.0.1'`, no Active Memory "
        f"Manager), partitioning the corpus onto it (one block per worker) "
        f"and closing it. Each Dask task runs its E-step with 1 numba thread. The machine has "
        f"{m['cores']} cores: 4 workers oversubscribe it (4 processes on 2 cores), and every "
        f"configuration shares the cores with the machine's other work. *Max relative ELBO "
        f"difference*: against the in-process 1-thread fit, iteration by iteration (the models agree "
        f"up to the order of summation).",
    ]) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus; writes nothing")
    args = parser.parse_args(argv)
    documents, topics, timed, rounds = ((QUICK["documents"], QUICK["topics"], QUICK["timed"], QUICK["rounds"])
                                        if args.quick else (DOCUMENTS, TOPICS, TIMED_ITERATIONS, ROUNDS))
    import distributed   # noqa: F401  (configures its loggers on import: quieten them after)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="distributed")
    machine = machine_info()
    log(f"machine: {machine['cores']} cores, load {machine['load_average']}")
    X = generated_prefix(documents).astype(np.float64)
    log(f"corpus: {X.shape[0]:,} documents, {X.shape[1]:,} terms, {X.nnz:,} nonzeros")
    LDA(n_components=2, max_iter=1).fit(X[:50])       # load the numba kernels in this process
    from importlib import metadata
    import subprocess
    commit = subprocess.run(["git", "-C", str(BENCH.parent), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or None
    results = {"mode": "quick" if args.quick else "full", "machine": machine, "git_commit": commit,
               "distributed": metadata.version("distributed"), "topics": topics, "timed": timed,
               "rounds": rounds, "seed": SEED,
               "corpus": {"documents": X.shape[0], "terms": X.shape[1], "nnz": int(X.nnz),
                          "tokens": int(X.sum()), "source": str(corpus_paths(N_DOCS)["corpus"])}}
    results["rows"] = run(X, topics, timed, rounds)
    finish_run("workers", results, markdown, _START, write=not args.quick)
    if not args.quick:
        log("wrote bench/workers_results.json and bench/workers_results.md")


if __name__ == "__main__":
    main()
