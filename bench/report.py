"""The benchmark's results as Markdown (bench/results.md, included by the README)."""


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def _machine(results):
    m = results["machine"]
    versions = ", ".join(f"{name} {v}" for name, v in m["versions"].items() if v is not None)
    return (f"Run on {m['date']} ({results['mode']} run): {m['cores']} cores ({m['cpu']}), "
            f"{results['threads']} threads per system, Python {m['python']}, {versions} "
            f"(ldaem at {m['ldaem_revision']}). "
            f"BLAS: {m['blas']}; a 2000 x 2000 float64 matmul achieves "
            f"{m['matmul_gflops']} GFLOP/s. The machine is shared and noisy (load average "
            f"{m['load_average'][0]} at the start): compare the systems within this run, as ratios.")


def _iteration(results):
    plan = results["plan"]
    rows = [(r["topics"], r["system"], _number(r["seconds"], 3), _number(r["ratio_to_ldaem"]),
             _number(r.get("ratio_to_ldaem_same_iterations")), r["e_step_start"],
             _number(r["inner_iterations"], 1)) for r in results["iteration"]]
    first = f"EM iterations 1 to {plan['library_iterations']}"
    return "\n\n".join([
        "### Seconds per batch EM iteration (AP: 2,246 documents, 10,473 terms, 435,838 tokens)",
        _table(("K", "system", "s / iteration", "ratio to ldaem", f"ratio to ldaem, {first}",
                "E-step start", "inner iterations / document"), rows),
        f"E-step depth: {results['e_step_depth']}. *ldaem*: median of EM iterations 3 to "
        f"{plan['ldaem_iterations']} (each an E-step, the ELBO and an M-step with alpha by "
        f"Newton-Raphson); *ldaem, cold-start E-step*: one E-step from the starting gamma at the "
        f"topics of that fit; *ldaem, {first}*: timed as the libraries are, the time of a fresh "
        f"{plan['library_iterations']}-iteration fit divided by {plan['library_iterations']}, so "
        f"the same EM iterations from ldaem's default start, lda-c's seeded one (each topic from "
        f"a few random documents), and then from lda-c's random start (their E-steps are the "
        f"deepest of a fit). *ldaem --dtype float32*: the same timings with the E-step's inner "
        f"iterations in single precision (gamma, the M-step and the ELBO stay float64). "
        f"scikit-learn (`learning_method='batch'`, n_jobs={results['threads']}) and gensim "
        f"(`LdaModel`, batch mode: `update_every=0`, one chunk of all documents, `decay=0` so "
        f"each M-step is the plain batch update; one process, float32) restart every document's "
        f"E-step from a random gamma. Inner iterations per document: ldaem's own count; the "
        f"libraries' counted in one more (untimed) {plan['library_iterations']}-iteration fit by "
        f"wrapping the function each calls once per inner iteration to test convergence "
        f"(scikit-learn in one process). Each time is the median of {plan['rounds']} rounds "
        f"that time every system in turn (results.json has every round)."])


def _converged(results):
    c = results["converged"]
    lda_c = c["lda_c_recorded"]
    single = c.get("float32")
    rows = [("ldaem (measured)", c["iterations"], _number(c["seconds"], 1),
             _number(c["train_bound_per_word"], 3))]
    if single:
        rows.append(("ldaem --dtype float32 (measured)", single["iterations"], _number(single["seconds"], 1),
                     _number(single["train_bound_per_word"], 3)))
    rows += [("lda-c (recorded, not re-measured)", lda_c["iterations"],
             "not recorded" if lda_c["seconds"] is None else lda_c["seconds"],
             _number(lda_c["train_bound_per_word"]))]
    return "\n\n".join([
        f"### Time to a converged model (AP, K={c['topics']}, relative ELBO change < {c['tol']:g})",
        _table(("system", "EM iterations", "seconds", "training bound (nats / token)"), rows),
        f"lda-c's figures are recorded in {lda_c['source']}."])


def _heldout(results):
    h = results["heldout"]
    rows = [(r["system"], r["iterations"], _number(r["seconds"], 1),
             _number(r["heldout_own_bound_per_word"]), _number(r["heldout_plugin_bound_per_word"]))
            for r in h["rows"]]
    rows.append(("lda-c (recorded)", h["lda_c_recorded"]["iterations"], "—",
                 _number(h["lda_c_recorded"]["heldout_bound_per_word"]), "—"))
    return "\n\n".join([
        f"### Held-out quality (K={h['topics']}: trained on the first {h['train_documents']:,} "
        f"documents, scored on the last {h['test_documents']})",
        _table(("system", "EM iterations (Gibbs sweeps)", "fit seconds",
                "held-out bound / word, own", "held-out bound / word, common"), rows),
        f"Held-out documents keep only words seen in training ({h['test_tokens']:,.0f} tokens; "
        f"{h['dropped_unseen_tokens']:,.0f} dropped), as lda-c's recorded figure. ldaem runs to "
        f"convergence; scikit-learn and gensim run as many EM iterations as ldaem took; tomotopy "
        f"(collapsed Gibbs sampling) runs its sweeps. *Own*: each library's own figure: ldaem "
        f"`score(X) / tokens`; scikit-learn `-log(perplexity(X))`; gensim `log_perplexity`. Both "
        f"of the latter smooth the topics and add the topics' KL term of the whole model to the "
        f"held-out documents' bound, so they are indicative only; tomotopy has no per-document "
        f"bound. *Common*: the same held-out ELBO computed by ldaem's E-step for every system, "
        f"with each system's topics (posterior means) and alpha plugged in: these compare "
        f"directly."])


def _race(results):
    race = results.get("race")
    if race is None:
        return None
    tomotopy = race["tomotopy"]
    rows = [(f"tomotopy reaches its {tomotopy['sweeps']:,}-sweep figure",
             f"{tomotopy['sweeps']:,} sweeps", _number(tomotopy["seconds"], 1),
             _number(tomotopy["completion"], 4))]
    verdicts = []
    for name, run in race["ldaem"].items():
        reached, best, gibbs_reached = run["reached"], run["best"], run["tomotopy_reached_best"]
        rows += [(f"ldaem, {name}, reaches tomotopy's figure",
                  f"{reached['iteration']} EM iterations" if reached else "never (converged first)",
                  _number(reached["seconds"], 1) if reached else "—",
                  _number(reached["completion"], 4) if reached else "—"),
                 (f"ldaem, {name}, reaches its best", f"{best['iteration']} EM iterations",
                  _number(best["seconds"], 1), _number(best["completion"], 4)),
                 (f"ldaem, {name}, the same fit to convergence unscored",
                  f"{run['converged_iterations']} EM iterations",
                  _number(run.get("unscored_seconds"), 1), "—"),
                 (f"tomotopy reaches that best",
                  f"{gibbs_reached['sweeps']:,} sweeps" if gibbs_reached else "never",
                  _number(gibbs_reached["seconds"], 1) if gibbs_reached else "—",
                  _number(gibbs_reached["completion"], 4) if gibbs_reached else "—")]
        if reached:
            verdicts.append(f"ldaem ({name}) reaches tomotopy's document completion in "
                            f"{reached['seconds']:.1f} s, {run['ratio']:.1f}x less wall time than "
                            f"tomotopy's {tomotopy['sweeps']:,} sweeps.")
        else:
            verdicts.append(f"ldaem ({name}) does not reach tomotopy's document completion: its "
                            f"best figure (iteration {best['iteration']}) is "
                            f"{tomotopy['completion'] - best['completion']:.3f} nats per token "
                            f"below it, and it converges after {run['converged_iterations']} "
                            f"iterations.")
    return "\n\n".join([
        f"### Time to quality against Gibbs sampling (AP, K={race['topics']})",
        _table(("milestone", "training", "wall seconds", "document completion (nats / token)"), rows),
        " ".join(verdicts) + f" Trained on the first {race['train_documents']:,} documents, scored on the "
        f"last {race['test_documents']} (document completion, Wallach et al. 2009, as `ldaem "
        f"evaluate`: each held-out document's tokens alternate between an observed and a scored "
        f"half; higher is better). Both systems' topics and alpha go through the same "
        f"computation: theta of the observed half by ldaem's E-step, the scored half by log "
        f"sum_k theta_k beta_kw. ldaem runs to convergence (relative change of its objective "
        f"below 1e-4) with its defaults (variational EM from lda-c's seeded start), from lda-c's "
        f"random start, and with MAP inference (`--inference map`, docs/map.md: alpha 0.1 and "
        f"eta 0.05 fixed, seeded start), also to a relative change of 1e-5 (at most 300 "
        f"iterations), and with CVB0 (`--inference cvb0`, docs/cvb0.md: MAP's pseudo-counts, one "
        f"sweep per EM iteration), and is scored after every EM iteration; tomotopy (`LDAModel`, "
        f"its defaults: alpha 0.1, optimised every 10 sweeps, eta 0.01, "
        f"`train(..., workers={results['threads']})`) every {results['plan']['race_step']} sweeps "
        f"of one chain; a time is "
        f"to the end of the first iteration or step that scores at least the figure, scoring "
        f"left out of the clocks, and tomotopy's excludes loading the documents. The scoring "
        f"between ldaem's iterations slows the iterations themselves; the 'unscored' rows time "
        f"the same fit again without it."])


def render(results):
    parts = ["## Benchmark", _machine(results), _iteration(results), _converged(results),
             _heldout(results), _race(results)]
    return "\n\n".join(p for p in parts if p is not None) + "\n"
