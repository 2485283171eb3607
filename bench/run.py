"""Benchmark ldaem against scikit-learn and gensim (and tomotopy, if installed) on the AP corpus.

    python bench/run.py            # the full run (make bench): writes bench/results.json and .md
    python bench/run.py --quick    # a small run to try it out: prints the tables, writes nothing

Measures seconds per batch EM iteration (K=20 and K=100), the time ldaem takes to converge on
AP (next to lda-c's recorded figures), held-out bounds, so that speed is never bought with
quality, and the wall time ldaem takes to reach the held-out document completion of tomotopy's
Gibbs sampler after 1,000 sweeps (K=50). The machine is shared: systems are compared side by
side in one run, as ratios.
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
from sklearn.base import clone

from ldaem import LDA
from ldaem.datasets import load_bundled
from ldaem.estep import e_step, topic_weights
from ldaem.evaluate import document_completion

import report
from machine import machine_info
from systems import (GENSIM, LDAEM, LDAEM_FLOAT32, LDAEM_RANDOM_START, MAX_DOC_ITER, MEAN_CHANGE_TOL, SEED,
                     SKLEARN, THREADS, TOMOTOPY, Plugin, fit_ldaem, inner_iterations, installed, plugin,
                     plugin_bound, tomotopy_model, train_tomotopy)

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
    library_iterations: int   # EM iterations (passes) timed for every system from a fresh start
    rounds: int               # timings of every system, in turn; the table shows their median
    quality_topics: int       # K of the converged and held-out fits
    max_iter: int             # cap on ldaem's EM iterations to converge
    gibbs_sweeps: int         # tomotopy's training sweeps
    race_topics: int          # K of the time-to-quality race against tomotopy
    race_step: int            # tomotopy's sweeps between two scorings in that race


FULL = Plan(topics=(20, 100), ldaem_iterations=12, library_iterations=5, rounds=3,
            quality_topics=20, max_iter=100, gibbs_sweeps=1000, race_topics=50, race_step=25)
QUICK = Plan(topics=(10,), ldaem_iterations=5, library_iterations=2, rounds=1,
             quality_topics=10, max_iter=10, gibbs_sweeps=100, race_topics=10, race_step=25)

_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


def timed(fit, *args, **kwargs):
    start = time.perf_counter()
    model = fit(*args, **kwargs)
    return model, time.perf_counter() - start


def ldaem_iterations(X, n_topics, n_iter, dtype="float64"):
    """ldaem's median seconds per EM iteration after the first two (warm-started E-steps), and
    its E-step alone at the fitted topics from a cold start, gamma = alpha + N_d / K, as the
    others start every document afresh; with the E-step in dtype."""
    model = fit_ldaem(X, n_topics, n_iter, dtype=dtype)
    records = model.iterations_[2:]
    warm = {"seconds": statistics.median(r.seconds for r in records),
            "inner_iterations": float(np.mean([r.mean_doc_iter for r in records])),
            "iterations_timed": len(records), "e_step_start": LDAEM.e_step}
    result, seconds = timed(e_step, X, topic_weights(model.topic_word_.T, dtype), model.doc_topic_prior_,
                            max_iter=MAX_DOC_ITER, tol=MEAN_CHANGE_TOL)
    cold = {"seconds": seconds, "inner_iterations": float(result.n_iter.mean()),
            "iterations_timed": 1, "e_step_start": "alpha + N_d / K (E-step only)"}
    return warm, cold


def library_iteration(system, X, n_topics, n_iter):
    """Seconds per EM iteration of a fresh n_iter-iteration fit: its time over n_iter."""
    model, seconds = timed(system.fit, X, n_topics, n_iter)
    inner = None
    if system.module == "ldaem":   # which stops early, should its ELBO ever decrease
        n_iter = model.n_iter_
        inner = float(np.mean([r.mean_doc_iter for r in model.iterations_]))
    return {"seconds": seconds / n_iter, "inner_iterations": inner, "iterations_timed": n_iter,
            "e_step_start": system.e_step}


FIRST = "EM iterations 1 to {n}"   # the row of ldaem timed as the libraries are


def iteration_round(X, n_topics, plan, systems):
    """One timing of every system at K = n_topics: name -> timing."""
    warm, cold = ldaem_iterations(X, n_topics, plan.ldaem_iterations)
    single_warm, single_cold = ldaem_iterations(X, n_topics, plan.ldaem_iterations, "float32")
    first = FIRST.format(n=plan.library_iterations)
    measured = {"ldaem": warm, "ldaem, cold-start E-step": cold,
                f"ldaem, {first}": library_iteration(LDAEM, X, n_topics, plan.library_iterations),
                f"ldaem, {first}, lda-c's random start": library_iteration(
                    LDAEM_RANDOM_START, X, n_topics, plan.library_iterations),
                "ldaem --dtype float32": single_warm,
                "ldaem --dtype float32, cold-start E-step": single_cold,
                f"ldaem --dtype float32, {first}": library_iteration(
                    LDAEM_FLOAT32, X, n_topics, plan.library_iterations)}
    for system in systems:
        measured[system.name] = library_iteration(system, X, n_topics, plan.library_iterations)
    log(f"K={n_topics}, seconds per iteration: "
        + ", ".join(f"{name} {timing['seconds']:.3f}" for name, timing in measured.items()))
    return measured


def iteration_times(X, plan, systems):
    """Seconds per batch EM iteration of each system at each K, with ratios to ldaem (EM
    iterations 3 on) and to ldaem over the same first EM iterations as the libraries: the median
    over rounds that time every system in turn, so that a burst of load on the shared machine
    hits one round of every system rather than all of one system. The libraries' inner
    iterations are counted in one more, untimed, fit each."""
    rows = []
    first = f"ldaem, {FIRST.format(n=plan.library_iterations)}"
    for n_topics in plan.topics:
        rounds = [iteration_round(X, n_topics, plan, systems) for _ in range(plan.rounds)]
        medians = {name: statistics.median(r[name]["seconds"] for r in rounds) for name in rounds[0]}
        inner = {s.name: inner_iterations(s, X, n_topics, plan.library_iterations) for s in systems}
        log(f"K={n_topics}, inner iterations per document: {inner}")
        for name, timing in rounds[0].items():
            rows.append({"topics": n_topics, "system": name, **timing, "seconds": medians[name],
                         "inner_iterations": inner.get(name, timing["inner_iterations"]),
                         "seconds_per_round": [r[name]["seconds"] for r in rounds],
                         "ratio_to_ldaem": medians[name] / medians["ldaem"],
                         "ratio_to_ldaem_same_iterations": medians[name] / medians[first]})
    return rows


def time_to_converge(X, plan):
    """ldaem's defaults to convergence on all of AP, and with --dtype float32, beside lda-c's
    recorded run."""
    runs = {}
    for dtype in ("float64", "float32"):
        model, seconds = timed(fit_ldaem, X, plan.quality_topics, plan.max_iter, tol=LDAEM_TOL, dtype=dtype)
        log(f"{dtype}: converged in {model.n_iter_} iterations, {seconds:.1f} s")
        runs[dtype] = {"iterations": model.n_iter_, "seconds": seconds,
                       "train_bound_per_word": model.iterations_[-1].elbo_per_token}
    return {"topics": plan.quality_topics, "tol": LDAEM_TOL, **runs["float64"], "float32": runs["float32"],
            "lda_c_recorded": LDA_C}


def split(X, n_train=N_TRAIN):
    """(train, test, dropped tokens): the first n_train documents, and the rest restricted to the
    words seen in training (as lda-c's recorded held-out figure)."""
    train, test = X[:n_train], X[n_train:]
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
    """Held-out bounds of each system trained on the first documents: ldaem to convergence (also
    with --dtype float32), the other variational systems for as many EM iterations as ldaem took, tomotopy for its sweeps."""
    train, test, dropped = split(X)
    model, seconds = timed(fit_ldaem, train, plan.quality_topics, plan.max_iter, tol=LDAEM_TOL)
    n_iter = model.n_iter_
    rows = [quality_row(LDAEM, model, seconds, n_iter, test)]
    single, seconds = timed(LDAEM_FLOAT32.fit, train, plan.quality_topics, plan.max_iter, tol=LDAEM_TOL)
    rows.append(quality_row(LDAEM_FLOAT32, single, seconds, single.n_iter_, test))
    for system in systems:
        sweeps = plan.gibbs_sweeps if system is TOMOTOPY else n_iter
        model, seconds = timed(system.fit, train, plan.quality_topics, sweeps)
        rows.append(quality_row(system, model, seconds, sweeps, test))
    return {"topics": plan.quality_topics, "train_documents": train.shape[0],
            "test_documents": test.shape[0], "test_tokens": float(test.sum()),
            "dropped_unseen_tokens": dropped, "rows": rows, "lda_c_recorded": LDA_C}


def completion(model, test):
    """Document completion (ldaem.evaluate) of test with a Plugin's topics and alpha: nats per token."""
    return document_completion(model, test)["log_likelihood_per_token"]


# ldaem's settings in the race against tomotopy: its defaults (lda-c's seeded start: each topic
# from the counts of a few random documents), lda-c's random start, MAP inference (docs/map.md),
# also to a relative change of 1e-5, as its document completion still improves at the default's,
# and CVB0 (docs/cvb0.md).
RACE_SETTINGS = {"defaults": {}, "--init random": {"init": "random"}, "--inference map": {"inference": "map"},
                 "--inference map --tol 1e-5 --max-iter 300": {"inference": "map", "tol": 1e-5, "max_iter": 300},
                 "--inference cvb0": {"inference": "cvb0"}}


def race_ldaem(train, test, n_topics, plan, target, params):
    """ldaem with these LDA parameters (over the benchmark's: seed, tolerances, threads), scored by
    document completion after every EM iteration (from its callback, scoring left out of the
    clock): its trace, the first iteration that reaches target, its best, the held-out bound
    per token of the converged fit, and the seconds of the same fit unscored (the scoring between
    iterations slows the iterations themselves)."""
    trace, scoring = [], [0.0]

    def score(record):
        started = time.perf_counter()
        state = lda.fit_state()
        topic_word = state.topic_word.T / state.topic_word.sum(axis=0)[:, None]
        trace.append({"iteration": record.iteration, "seconds": started - fit_start - scoring[0],
                      "completion": completion(Plugin(topic_word, state.alpha), test)})
        scoring[0] += time.perf_counter() - started

    lda = LDA(**{"n_components": n_topics, "random_state": SEED, "max_iter": plan.max_iter,
                 "tol": LDAEM_TOL, "n_jobs": THREADS, "max_doc_update_iter": MAX_DOC_ITER,
                 "mean_change_tol": MEAN_CHANGE_TOL, "callback": score, **params})
    fit_start = time.perf_counter()
    lda.fit(train)
    reached = next((r for r in trace if r["completion"] >= target), None)
    unscored = timed(clone(lda).set_params(callback=None).fit, train)[1]
    return {"params": params, "trace": trace, "converged_iterations": lda.n_iter_,
            "reached": reached, "best": max(trace, key=lambda r: r["completion"]),
            "heldout_bound": lda.score(test) / test.sum(), "unscored_seconds": unscored,
            "ratio": None}


def time_to_quality(X, plan):
    """Wall time for ldaem to reach the held-out document completion that tomotopy's LDAModel
    reaches after plan.gibbs_sweeps sweeps, at K = plan.race_topics (train and test as
    heldout_quality), with each of RACE_SETTINGS, and the other way round: the sweeps tomotopy
    needs to reach ldaem's best. Both are scored by the same computation: theta of the observed
    half by ldaem's E-step with the system's topics and alpha (Plugin), the other half by
    sum_k theta_k beta_kw. ldaem is scored after every EM iteration, tomotopy every
    plan.race_step sweeps (training in steps continues the same chain); scoring is left out of
    both clocks, and only tomotopy's sampling is timed, not loading the documents into it."""
    train, test, _ = split(X)
    n_topics, n_words = plan.race_topics, X.shape[1]
    gibbs, gibbs_trace, gibbs_seconds = tomotopy_model(train, n_topics), [], 0.0
    for sweeps in range(plan.race_step, plan.gibbs_sweeps + 1, plan.race_step):
        gibbs_seconds += timed(train_tomotopy, gibbs, plan.race_step)[1]
        gibbs_trace.append({"sweeps": sweeps, "seconds": gibbs_seconds,
                            "completion": completion(plugin(TOMOTOPY, gibbs, n_words), test)})
    target = gibbs_trace[-1]["completion"]
    log(f"tomotopy, K={n_topics}, {plan.gibbs_sweeps} sweeps: {gibbs_seconds:.1f} s, "
        f"document completion {target:.4f}")
    runs = {}
    for name, params in RACE_SETTINGS.items():
        run = runs[name] = race_ldaem(train, test, n_topics, plan, target, params)
        reached, best = run["reached"], run["best"]
        run["ratio"] = None if reached is None else gibbs_seconds / reached["seconds"]
        run["tomotopy_reached_best"] = next(
            (r for r in gibbs_trace if r["completion"] >= best["completion"]), None)
        gibbs_reached = run["tomotopy_reached_best"]
        log(f"ldaem ({name}), K={n_topics}: "
            + (f"reached {target:.4f} at iteration {reached['iteration']}, {reached['seconds']:.2f} s"
               if reached else f"did not reach {target:.4f}; best {best['completion']:.4f} "
               f"(iteration {best['iteration']}, {best['seconds']:.2f} s); tomotopy reached that "
               + (f"after {gibbs_reached['sweeps']} sweeps, {gibbs_reached['seconds']:.1f} s"
                  if gibbs_reached else "never")))
    return {"topics": n_topics, "train_documents": train.shape[0], "test_documents": test.shape[0],
            "tomotopy": {"sweeps": plan.gibbs_sweeps, "seconds": gibbs_seconds, "completion": target,
                         "trace": gibbs_trace},
            "ldaem": runs}


def warm_up(systems):
    """Fit every system once on a few documents before anything is timed: this loads (or
    compiles) ldaem's numba kernels, imports the libraries and starts scikit-learn's workers."""
    tiny = load_bundled("reuters").X[:50]
    for system in systems:
        system.fit(tiny, 3, 2)
    for params in RACE_SETTINGS.values():
        fit_ldaem(tiny, 3, **{**params, "max_iter": 2})


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
    warm_up([LDAEM, LDAEM_FLOAT32, *others])
    results = {"mode": "quick" if args.quick else "full", "plan": asdict(plan),
               "machine": machine_info(), "threads": THREADS, "seed": SEED, "e_step_depth": E_STEP_DEPTH}
    log(f"machine: {results['machine']}")
    results["iteration"] = iteration_times(X, plan, [s for s in others if s is not TOMOTOPY])
    results["converged"] = time_to_converge(X, plan)
    results["heldout"] = heldout_quality(X, plan, others)
    if TOMOTOPY in others:
        results["race"] = time_to_quality(X, plan)
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
