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
    rows = [(r["topics"], r["system"], _number(r["seconds"], 3), _number(r["ratio_to_ldaem"]),
             r["e_step_start"], _number(r["inner_iterations"], 1)) for r in results["iteration"]]
    return "\n\n".join([
        "### Seconds per batch EM iteration (AP: 2,246 documents, 10,473 terms, 435,838 tokens)",
        _table(("K", "system", "s / iteration", "ratio to ldaem", "E-step start",
                "inner iterations / document"), rows),
        f"E-step depth: {results['e_step_depth']}. ldaem: median of EM iterations 3 to "
        f"{results['plan']['ldaem_iterations']} (each an E-step, the ELBO and an M-step with "
        f"alpha by Newton-Raphson); its cold-start row times one E-step from the starting gamma "
        f"at the topics of that fit. scikit-learn (`learning_method='batch'`, n_jobs={results['threads']}) "
        f"and gensim (`LdaModel`, batch mode: `update_every=0`, one chunk of all documents, "
        f"`decay=0` so each M-step is the plain batch update; one process, float32) restart every "
        f"document's E-step from a random gamma, so they run more inner iterations; their time is "
        f"that of a {results['plan']['library_iterations']}-iteration fit divided by "
        f"{results['plan']['library_iterations']}, and they do not report inner iterations. "
        f"Each figure is the median of {results['plan']['rounds']} rounds that time every "
        f"system in turn (results.json has every round)."])


def _converged(results):
    c = results["converged"]
    lda_c = c["lda_c_recorded"]
    rows = [("ldaem (measured)", c["iterations"], _number(c["seconds"], 1),
             _number(c["train_bound_per_word"])),
            ("lda-c (recorded, not re-measured)", lda_c["iterations"],
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


def render(results):
    return "\n\n".join(["## Benchmark", _machine(results), _iteration(results),
                        _converged(results), _heldout(results)]) + "\n"
