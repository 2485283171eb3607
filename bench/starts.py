"""Held-out quality of ldaem's starts and of other settings on AP: the figures the README gives
for batch EM's default start and for the settings tried against tomotopy's document completion.

1. For seeds 0-6, lda-c's random start against the seeded one (batch EM's default): the held-out
   bound at K=20, the best document completion at K=50 (scored after every EM iteration), both
   trained on the first 2,021 documents and scored on the last 225 as in bench/run.py, and the
   inner iterations per document of the first EM iteration at K=100 on the whole corpus.
2. At seed 1, the best document completion at K=50 of other settings: alpha fixed or
   asymmetric, smoothed topics (from either start), a longer burn-in.

Writes bench/starts_results.json and bench/starts_results.md.
Run: .venv/bin/python bench/starts.py   (about 3 minutes)
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

from ldaem import LDA  # noqa: E402
from ldaem.datasets import load_bundled  # noqa: E402
from machine import finish_run, machine_info  # noqa: E402
from report import _table  # noqa: E402
from run import FULL, race_ldaem, split  # noqa: E402
from systems import THREADS  # noqa: E402

SEEDS = range(7)
STARTS = {"random start (--init random)": {"init": "random"}, "seeded start (the default)": {}}
SETTINGS_SEED = 1
SETTINGS = {
    "alpha fixed at 0.1": {"doc_topic_prior": 0.1, "doc_topic_prior_update": "fixed"},
    "alpha fixed at 0.5": {"doc_topic_prior": 0.5, "doc_topic_prior_update": "fixed"},
    "alpha fixed at 1": {"doc_topic_prior": 1.0, "doc_topic_prior_update": "fixed"},
    "asymmetric alpha": {"doc_topic_prior_update": "asymmetric"},
    "eta 0.01": {"topic_word_prior": 0.01},
    "eta 0.01, seeded start": {"topic_word_prior": 0.01, "init": "seeded"},
    "eta 0.1": {"topic_word_prior": 0.1},
    "eta 0.5": {"topic_word_prior": 0.5},
    "eta estimated": {"topic_word_prior_update": "estimate"},
    "alpha burn-in 30": {"doc_topic_prior_burn_in": 30},
}
_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


def best_completion(train, test, seed, params):
    run = race_ldaem(train, test, 50, FULL, np.inf, {"random_state": seed, **params})
    return {"completion": run["best"]["completion"], "iteration": run["best"]["iteration"],
            "converged_iterations": run["converged_iterations"]}


def start_row(X, train, test, seed, params):
    heldout = LDA(20, random_state=seed, n_jobs=THREADS, **params).fit(train)
    first = LDA(100, random_state=seed, max_iter=1, n_jobs=THREADS, **params).fit(X)
    return {"seed": seed, "heldout_k20": heldout.score(test) / test.sum(),
            "best_completion_k50": best_completion(train, test, seed, params),
            "first_iteration_depth_k100": first.iterations_[0].mean_doc_iter}


def markdown(results):
    starts = results["starts"]
    names = list(starts)
    rows = [(r["seed"], *(f"{starts[n][i]['heldout_k20']:.4f}" for n in names),
             *(f"{starts[n][i]['best_completion_k50']['completion']:.4f}" for n in names),
             *(f"{starts[n][i]['first_iteration_depth_k100']:.1f}" for n in names))
            for i, r in enumerate(starts[names[0]])]
    rows.append(("mean", *(f"{np.mean([r['heldout_k20'] for r in starts[n]]):.4f}" for n in names),
                 *(f"{np.mean([r['best_completion_k50']['completion'] for r in starts[n]]):.4f}" for n in names),
                 *(f"{np.mean([r['first_iteration_depth_k100'] for r in starts[n]]):.1f}" for n in names)))
    short = ("random", "seeded")
    settings = [(name, f"{r['completion']:.4f}", r["iteration"], r["converged_iterations"])
                for name, r in results["settings"].items()]
    return "\n\n".join([
        "### Starts and settings (AP: first 2,021 documents train, last 225 held out)",
        f"Run on {results['machine']['date']}: {results['machine']['cores']} cores, load average "
        f"{results['machine']['load_average'][0]} at the start ({results['total_seconds']:.0f} s).",
        _table(("seed", *(f"held-out bound K=20, {s}" for s in short),
                *(f"best document completion K=50, {s}" for s in short),
                *(f"inner iterations / document, EM iteration 1, K=100, {s}" for s in short)), rows),
        "Held-out bound and document completion in nats per token (higher is better); document "
        "completion as `ldaem evaluate` (and bench/run.py's race against tomotopy), best over the "
        "EM iterations of a fit to convergence; inner iterations over the whole corpus.",
        _table(("settings (seed 1, K=50; start as 'auto' picks it)", "best document completion",
                "at EM iteration", "EM iterations to convergence"), settings),
        "Maximum-likelihood topics start seeded and smoothed ones (eta) from random Gamma(100, "
        "1/100) counts, as `--init auto` does, but for the row that starts smoothed topics seeded.",
    ]) + "\n"


def main():
    X = load_bundled("ap").X.tocsr()
    train, test, _ = split(X)
    results = {"machine": machine_info(), "starts": {}, "settings": {}}
    for name, params in STARTS.items():
        results["starts"][name] = []
        for seed in SEEDS:
            row = start_row(X, train, test, seed, params)
            results["starts"][name].append(row)
            log(f"{name}, seed {seed}: {row}")
    for name, params in SETTINGS.items():
        results["settings"][name] = best_completion(train, test, SETTINGS_SEED, params)
        log(f"{name}: {results['settings'][name]}")
    finish_run("starts", results, markdown, _START)


if __name__ == "__main__":
    main()
