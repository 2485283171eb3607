"""MAP inference (docs/map.md) against variational EM: held-out quality and time, on AP and KOS.

1. AP, K=50, seeds 0-4: each inference with its defaults, and MAP with --tol 1e-5, scored by
   document completion after every EM iteration (as bench/run.py's race against tomotopy): the
   best figure, the figure at convergence, the EM iterations and the seconds of the same fit
   unscored.
2. AP at K=20 and K=100 and KOS at K=20 and K=50, seed 0: the same, plus the held-out bound
   (the variational bound of the held-out documents under each fit's topics and alpha).
3. AP, K=50, seed 0: MAP's pseudo-counts alpha and eta over a grid, the figures its defaults
   were chosen from.
4. AP, K=50, seeds 0-4: a tomotopy chain of 1,000 sweeps per seed (bench/run.py races one), with
   its default eta (0.01) and with ldaem's (0.05), and whether and when MAP with --tol 1e-5 and
   CVB0 of the same seed reach its document completion: how much the race's verdict depends on
   the seed, on either side, and on eta.

AP: the first 2,021 documents train, the last 225 are held out (bench/run.py's split); KOS: the
first 3,087 train, the last 343 are held out. Writes bench/map_results.json and .md.
Run: .venv/bin/python bench/map.py   (about 13 minutes)
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

from ldaem.corpus import load_corpus  # noqa: E402
from ldaem.datasets import load_bundled  # noqa: E402
from machine import finish_run, machine_info  # noqa: E402
from report import _table  # noqa: E402
from run import FULL, completion, race_ldaem, split, timed  # noqa: E402
from systems import TOMOTOPY, installed, plugin, tomotopy_model, train_tomotopy  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
INFERENCES = {"variational": {}, "map": {"inference": "map"}}
# MAP's document completion still improves when the default tolerance stops it (best at the last
# iteration for most seeds): the seeds' table also runs it to a relative change of 1e-5.
LONG_MAP = "map, --tol 1e-5 --max-iter 300"
SEED_SETTINGS = {**INFERENCES, LONG_MAP: {"inference": "map", "tol": 1e-5, "max_iter": 300},
                 "cvb0": {"inference": "cvb0"}}
SIZE_SETTINGS = {**INFERENCES, "cvb0": {"inference": "cvb0"}}
TOMOTOPY_ETAS = (None, 0.05)      # tomotopy's default eta (0.01), and MAP's and CVB0's
SEEDS = range(5)
OTHER_SIZES = (("AP", 20), ("AP", 100), ("KOS", 20), ("KOS", 50))
GRID_ALPHA = (0.05, 0.1, 0.2, 0.5)
GRID_ETA = (0.01, 0.05, 0.1)
_START = time.perf_counter()


def log(message):
    print(f"[{time.perf_counter() - _START:6.0f} s] {message}", file=sys.stderr, flush=True)


def corpora():
    """name -> (train, test) as bench/run.py splits AP; KOS's last tenth held out."""
    ap = load_bundled("ap").X.tocsr()
    kos_dir = SHARED / "kos"
    kos = load_corpus(kos_dir / "docword.kos.txt.gz", "uci", kos_dir / "vocab.kos.txt").X.tocsr()
    return {"AP": split(ap)[:2], "KOS": split(kos, kos.shape[0] - kos.shape[0] // 10)[:2]}


def scored_fit(train, test, n_topics, seed, params):
    """A fit to convergence scored by document completion after every EM iteration, and the
    seconds of the same fit unscored."""
    run = race_ldaem(train, test, n_topics, FULL, np.inf, {"random_state": seed, **params})
    last = run["trace"][-1]
    return {"best_completion": run["best"]["completion"], "best_iteration": run["best"]["iteration"],
            "final_completion": last["completion"], "iterations": run["converged_iterations"],
            "seconds": run["unscored_seconds"], "heldout_bound": run["heldout_bound"],
            "trace": run["trace"]}


def _summary(fit):
    return {name: value for name, value in fit.items() if name != "trace"}


def tomotopy_chains(train, test, fits):
    """1,000-sweep tomotopy chains per seed (K=50), with each of TOMOTOPY_ETAS, their document
    completion, and the first iteration at which each of ldaem's fits of the same seed (fits:
    name -> one fit per seed, with its trace) reaches it."""
    rows = []
    for i, seed in enumerate(SEEDS):
        for eta in TOMOTOPY_ETAS:
            model, seconds = timed(train_tomotopy, tomotopy_model(train, 50, seed, eta), FULL.gibbs_sweeps)
            target = completion(plugin(TOMOTOPY, model, train.shape[1]), test)
            row = {"seed": seed, "eta": eta, "tomotopy_seconds": seconds, "tomotopy_completion": target}
            for name, runs in fits.items():
                row[name] = {"best": runs[i]["best_completion"],
                             "reached": next((r for r in runs[i]["trace"] if r["completion"] >= target), None)}
            rows.append(row)
            log(f"tomotopy seed {seed}, eta {eta}: {target:.4f} in {seconds:.1f} s; "
                + ", ".join(f"{name} reached it: {row[name]['reached']}" for name in fits))
    return rows


def markdown(results):
    names = list(SEED_SETTINGS)
    seeds = results["seeds"]
    rows = [(s, *(f"{seeds[n][i]['best_completion']:.4f}" for n in names),
             *(f"{seeds[n][i]['final_completion']:.4f}" for n in names),
             *(f"{seeds[n][i]['iterations']} / {seeds[n][i]['seconds']:.1f}" for n in names))
            for i, s in enumerate(SEEDS)]
    rows.append(("mean", *(f"{np.mean([r['best_completion'] for r in seeds[n]]):.4f}" for n in names),
                 *(f"{np.mean([r['final_completion'] for r in seeds[n]]):.4f}" for n in names),
                 *(f"{np.mean([r['iterations'] for r in seeds[n]]):.0f} / "
                   f"{np.mean([r['seconds'] for r in seeds[n]]):.1f}" for n in names)))
    short = list(SIZE_SETTINGS)
    sizes = [(r["corpus"], r["topics"], name, f"{r[name]['best_completion']:.4f}",
              f"{r[name]['final_completion']:.4f}", f"{r[name]['heldout_bound']:.4f}",
              r[name]["iterations"], f"{r[name]['seconds']:.1f}")
             for r in results["sizes"] for name in short]
    grid = [(f"{alpha:g}", *(f"{results['grid'][f'{alpha:g},{eta:g}']:.4f}" for eta in GRID_ETA))
            for alpha in GRID_ALPHA]
    return "\n\n".join([
        "### MAP inference against variational EM (held-out documents)",
        f"Run on {results['machine']['date']}: {results['machine']['cores']} cores, load average "
        f"{results['machine']['load_average'][0]} at the start ({results['total_seconds']:.0f} s), "
        f"ldaem at {results['machine']['ldaem_revision']}.",
        "AP, K=50 (first 2,021 documents train, last 225 held out): document completion in nats "
        "per token (higher is better), best over the EM iterations and at convergence (relative "
        "change of the objective below 1e-4, or as given), and EM iterations / seconds to "
        "convergence (the same fit run again without scoring, on 2 threads); at most 100 EM "
        "iterations unless given.",
        _table(("seed", *(f"best, {s}" for s in names), *(f"at convergence, {s}" for s in names),
                *(f"iterations / s, {s}" for s in names)), rows),
        "Other corpora and sizes, seed 0 (KOS: first 3,087 documents train, last 343 held out). "
        "Held-out bound: the variational bound per token of the held-out documents, with each "
        "fit's topics and alpha (as `ldaem evaluate`).",
        _table(("corpus", "K", "inference", "best completion", "completion at convergence",
                "held-out bound", "EM iterations", "seconds"), sizes),
        "MAP's pseudo-counts on AP, K=50, seed 0: document completion at convergence.",
        _table(("alpha \\ eta", *(f"{eta:g}" for eta in GRID_ETA)), grid),
        *_chains(results.get("tomotopy")),
    ]) + "\n"


def _chains(rows):
    if not rows:
        return []
    names = [name for name in rows[0] if isinstance(rows[0][name], dict)]

    def reached(run):
        hit = run["reached"]
        return "no" if hit is None else f"iteration {hit['iteration']}, {hit['seconds']:.1f} s"

    table = [(r["seed"], "0.01 (default)" if r["eta"] is None else f"{r['eta']:g}",
              f"{r['tomotopy_completion']:.4f}", f"{r['tomotopy_seconds']:.1f}",
              *(cell for name in names for cell in (f"{r[name]['best']:.4f}", reached(r[name]))))
             for r in rows]
    return [f"AP, K=50: tomotopy (`LDAModel`, 2 workers, alpha 0.1 optimised every 10 sweeps) for "
            f"{FULL.gibbs_sweeps:,} sweeps from each seed, with its default eta and with eta 0.05, "
            f"against ldaem's fits from the same seed (the table's first part): their best document "
            f"completion, and whether and when they reach tomotopy's (seconds scored after every "
            f"iteration, scoring left out of the clock, as bench/run.py's race).",
            _table(("seed", "tomotopy eta", "tomotopy completion", "tomotopy seconds",
                    *(cell for name in names for cell in (f"{name} best", f"{name} reaches tomotopy's figure"))),
                   table)]


def main():
    data = corpora()
    results = {"machine": machine_info(), "seeds": {}, "sizes": [], "grid": {}}
    train, test = data["AP"]
    for name, params in SEED_SETTINGS.items():
        results["seeds"][name] = []
        for seed in SEEDS:
            results["seeds"][name].append(scored_fit(train, test, 50, seed, params))
            log(f"{name}, seed {seed}: {_summary(results['seeds'][name][-1])}")
    for corpus, n_topics in OTHER_SIZES:
        train, test = data[corpus]
        row = {"corpus": corpus, "topics": n_topics}
        for name, params in SIZE_SETTINGS.items():
            row[name] = scored_fit(train, test, n_topics, 0, params)
            del row[name]["trace"]
            log(f"{corpus} K={n_topics}, {name}: {_summary(row[name])}")
        results["sizes"].append(row)
    train, test = data["AP"]
    for alpha in GRID_ALPHA:
        for eta in GRID_ETA:
            fit = scored_fit(train, test, 50, 0, {"inference": "map", "doc_topic_prior": alpha,
                                                  "topic_word_prior": eta})
            results["grid"][f"{alpha:g},{eta:g}"] = fit["final_completion"]
            log(f"alpha {alpha}, eta {eta}: {fit['final_completion']:.4f}")
    if installed(TOMOTOPY):
        results["tomotopy"] = tomotopy_chains(train, test, {name: results["seeds"][name]
                                                            for name in (LONG_MAP, "cvb0")})
    finish_run("map", results, markdown, _START)


if __name__ == "__main__":
    main()
