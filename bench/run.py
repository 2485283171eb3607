"""Benchmark ldaem against scikit-learn and gensim (and tomotopy, if installed) on the AP corpus.

    python bench/run.py            # the full run (make bench): writes bench/results.json and .md
    python bench/run.py --quick    # a small run to try it out: prints the tables, writes nothing

Measures seconds per batch EM iteration (K=20 and K=100), the time ldaem takes to converge on
AP (next to lda-c's recorded figures), and held-out bounds, so that speed is never bought with
quality. The machine is shared: systems are compared side by side in one run, as ratios.
"""

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np

from ldaem.datasets import load_bundled
from ldaem.estep import e_step

import report
from machine import machine_info
from systems import (GENSIM, LDAEM, MAX_DOC_ITER, MEAN_CHANGE_TOL, SEED, SKLEARN, THREADS,
                     TOMOTOPY, fit_ldaem, installed, plugin_bound)

BENCH = Path(__file__).resolve().parent
N_TRAIN = 2021          # AP split: the first 2021 documents train, the last 225 are held out
LDAEM_TOL = 1e-4        # ldaem's default: relative ELBO change
LDA_C = {               # recorded, not re-measured: /work/shared/corpora/README.md
    "source": "shared/corpora/README.md (Blei's lda-c, K=20, alpha estimated, var max iter 20, "
              "var convergence 1e-6, em convergence 1e-4)",
    "iterations": "about 40", "seconds": None,
    "train_bound_per_word": -7.62, "heldout_bound_per_word": -7.95,
}
E_STEP_DEPTH = (f"every system stops a document's E-step when the mean absolute change of gamma_d "
                f"is below {MEAN_CHANGE_TOL:g} or after {MAX_DOC_ITER} inner iterations "
                f"(ldaem and scikit-learn: max_doc_update_iter={MAX_DOC_ITER}, "
                f"mean_change_tol={MEAN_CHANGE_TOL:g}; gensim: iterations={MAX_DOC_ITER}, "
                f"gamma_threshold={MEAN_CHANGE_TOL:g})")


@dataclass(frozen=True)
class Plan:
    topics: tuple             # K of the per-iteration timings
    ldaem_iterations: int     # EM iterations timed for ldaem (the median skips the first two)
    library_iterations: int   # EM iterations (passes) timed for scikit-learn and gensim
    rounds: int               # timings of every system, in turn; the table shows their median
    quality_topics: int       # K of the converged and held-out fits
    max_iter: int             # cap on ldaem's EM iterations to converge
    gibbs_sweeps: int         # tomotopy's training sweeps


FULL = Plan(topics=(20, 100), ldaem_iterations=12, library_iterations=5, rounds=3,
            quality_topics=20, max_iter=100, gibbs_sweeps=1000)
QUICK = Plan(topics=(10,), ldaem_iterations=5, library_iterations=2, rounds=1,
             quality_topics=10, max_iter=10, gibbs_sweeps=100)

_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


def timed(fit, *args, **kwargs):
    start = time.perf_counter()
    model = fit(*args, **kwargs)
    return model, time.perf_counter() - start


def ldaem_iterations(X, n_topics, n_iter):
    """ldaem's median seconds per EM iteration after the first two (warm-started E-steps), and
    its E-step alone at the fitted topics from a cold start, gamma = alpha + N_d / K, as the
    others start every document afresh."""
    model = fit_ldaem(X, n_topics, n_iter)
    records = model.iterations_[2:]
    warm = {"seconds": statistics.median(r.seconds for r in records),
            "inner_iterations": float(np.mean([r.mean_doc_iter for r in records])),
            "iterations_timed": len(records), "e_step_start": LDAEM.e_step}
    result, seconds = timed(e_step, X, model.topic_word_.T, model.doc_topic_prior_,
                            max_iter=MAX_DOC_ITER, tol=MEAN_CHANGE_TOL)
    cold = {"seconds": seconds, "inner_iterations": float(result.n_iter.mean()),
            "iterations_timed": 1, "e_step_start": "alpha + N_d / K (E-step only)"}
    return warm, cold


def library_iteration(system, X, n_topics, n_iter):
    """Seconds per EM iteration of a library: the time of an n_iter-iteration fit over n_iter."""
    _, seconds = timed(system.fit, X, n_topics, n_iter)
    return {"seconds": seconds / n_iter, "inner_iterations": None, "iterations_timed": n_iter,
            "e_step_start": system.e_step}


def iteration_round(X, n_topics, plan, systems):
    """One timing of every system at K = n_topics: name -> timing."""
    warm, cold = ldaem_iterations(X, n_topics, plan.ldaem_iterations)
    measured = {"ldaem": warm, "ldaem, cold-start E-step": cold}
    for system in systems:
        measured[system.name] = library_iteration(system, X, n_topics, plan.library_iterations)
    log(f"K={n_topics}, seconds per iteration: "
        + ", ".join(f"{name} {timing['seconds']:.3f}" for name, timing in measured.items()))
    return measured


def iteration_times(X, plan, systems):
    """Seconds per batch EM iteration of each system at each K, with ratios to ldaem: the
    median over rounds that time every system in turn, so that a burst of load on the shared
    machine hits one round of every system rather than all of one system."""
    rows = []
    for n_topics in plan.topics:
        rounds = [iteration_round(X, n_topics, plan, systems) for _ in range(plan.rounds)]
        medians = {name: statistics.median(r[name]["seconds"] for r in rounds) for name in rounds[0]}
        for name, timing in rounds[0].items():
            rows.append({"topics": n_topics, "system": name, **timing, "seconds": medians[name],
                         "seconds_per_round": [r[name]["seconds"] for r in rounds],
                         "ratio_to_ldaem": medians[name] / medians["ldaem"]})
    return rows


def time_to_converge(X, plan):
    """ldaem's defaults to convergence on all of AP, beside lda-c's recorded run."""
    model, seconds = timed(fit_ldaem, X, plan.quality_topics, plan.max_iter, tol=LDAEM_TOL)
    log(f"converged in {model.n_iter_} iterations, {seconds:.1f} s")
    return {"topics": plan.quality_topics, "tol": LDAEM_TOL, "iterations": model.n_iter_,
            "seconds": seconds, "train_bound_per_word": model.iterations_[-1].elbo_per_token,
            "lda_c_recorded": LDA_C}


def split(X):
    """(train, test): the first N_TRAIN documents, and the rest restricted to the words seen in
    training (as lda-c's recorded held-out figure)."""
    train, test = X[:N_TRAIN], X[N_TRAIN:]
    seen = np.asarray(train.sum(axis=0)).ravel() > 0
    kept = test.multiply(seen[None, :]).tocsr()
    kept.eliminate_zeros()
    return train, kept, float(test.sum() - kept.sum())


def quality_row(system, model, seconds, n_iter, test):
    own = system.heldout_bound(model, test)
    row = {"system": system.name, "iterations": n_iter, "seconds": seconds,
           "heldout_own_bound_per_word": None if own is None else float(own),
           "heldout_plugin_bound_per_word": plugin_bound(system, model, test)}
    log(f"held out, {system.name}: own {own}, common {row['heldout_plugin_bound_per_word']:.4f}")
    return row


def heldout_quality(X, plan, systems):
    """Held-out bounds of each system trained on the first documents: ldaem to convergence, the
    other variational systems for as many EM iterations as ldaem took, tomotopy for its sweeps."""
    train, test, dropped = split(X)
    model, seconds = timed(fit_ldaem, train, plan.quality_topics, plan.max_iter, tol=LDAEM_TOL)
    n_iter = model.n_iter_
    rows = [quality_row(LDAEM, model, seconds, n_iter, test)]
    for system in systems:
        sweeps = plan.gibbs_sweeps if system is TOMOTOPY else n_iter
        model, seconds = timed(system.fit, train, plan.quality_topics, sweeps)
        rows.append(quality_row(system, model, seconds, sweeps, test))
    return {"topics": plan.quality_topics, "train_documents": train.shape[0],
            "test_documents": test.shape[0], "test_tokens": float(test.sum()),
            "dropped_unseen_tokens": dropped, "rows": rows, "lda_c_recorded": LDA_C}


def warm_up(systems):
    """Fit every system once on a few documents before anything is timed: this loads (or
    compiles) ldaem's numba kernels, imports the libraries and starts scikit-learn's workers."""
    tiny = load_bundled("reuters").X[:50]
    for system in systems:
        system.fit(tiny, 3, 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small K, few iterations; writes nothing")
    parser.add_argument("--out", type=Path, help="folder for results.json and results.md "
                        "(default: bench/ for the full run, none for --quick)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = args.out or (None if args.quick else BENCH)
    numba.set_num_threads(THREADS)
    X = load_bundled("ap").X
    log(f"AP: {X.shape[0]} documents, {X.shape[1]} terms, {X.sum():.0f} tokens")
    others = [s for s in (SKLEARN, GENSIM, TOMOTOPY) if installed(s)]
    warm_up([LDAEM, *others])
    results = {"mode": "quick" if args.quick else "full", "plan": asdict(plan),
               "machine": machine_info(), "threads": THREADS, "seed": SEED, "e_step_depth": E_STEP_DEPTH}
    log(f"machine: {results['machine']}")
    results["iteration"] = iteration_times(X, plan, [s for s in others if s is not TOMOTOPY])
    results["converged"] = time_to_converge(X, plan)
    results["heldout"] = heldout_quality(X, plan, others)
    results["total_seconds"] = time.perf_counter() - _START
    markdown = report.render(results)
    print(markdown)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "results.md").write_text(markdown)
        log(f"wrote {out / 'results.json'} and {out / 'results.md'}")


if __name__ == "__main__":
    main()
