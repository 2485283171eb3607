"""The evaluation table of the README: `ldaem select`'s figures for AP and KOS at K=20 and 50.

Each corpus: a seeded random 10% of the documents held out, a batch fit per K on the rest
(ldaem's defaults), then the held-out bound, document completion and coherence (ldaem.evaluate's
definitions). Writes bench/evaluation_results.json and bench/evaluation_results.md.
Run: .venv/bin/python bench/evaluation.py
"""

import json
import sys
import time
from pathlib import Path

from ldaem.corpus import load_corpus
from ldaem.datasets import load_bundled
from ldaem.selection import compare_topic_counts

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "corpora"
sys.path.insert(0, str(HERE))
from machine import machine_info  # noqa: E402
from report import _table  # noqa: E402

TOPIC_COUNTS = (20, 50)


def corpora():
    yield "AP", load_bundled("ap")
    kos = SHARED / "kos"
    yield "KOS", load_corpus(kos / "docword.kos.txt.gz", "uci", kos / "vocab.kos.txt")


def main():
    results = {"machine": machine_info(), "heldout_share": 0.1, "rows": []}
    for name, corpus in corpora():
        started = time.perf_counter()
        for row in compare_topic_counts(corpus.X, TOPIC_COUNTS, heldout_fraction=0.1, seed=0):
            results["rows"].append({"corpus": name, **row})
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    (HERE / "evaluation_results.json").write_text(json.dumps(results, indent=1))
    rows = [(r["corpus"], r["topics"], r["iterations"], f"{r['training_bound']:.3f}",
             f"{r['heldout_bound']:.3f}", f"{r['heldout_perplexity']:.0f}", f"{r['completion']:.3f}",
             f"{r['umass']:.1f}", f"{r['npmi']:.3f}") for r in results["rows"]]
    text = "\n\n".join([
        "### Evaluation (a seeded random 10% of each corpus held out; ldaem's defaults)",
        _table(("corpus", "K", "EM iterations", "training bound", "held-out bound", "perplexity",
                "document completion", "UMass", "NPMI"), rows),
        "Bounds and document completion in nats per token (perplexity = exp(-held-out bound)); "
        "coherence over each topic's top 10 words, UMass on the training documents, NPMI on the "
        f"held-out ones; definitions in `ldaem evaluate`'s output. Run {results['machine']['date']}.",
    ])
    (HERE / "evaluation_results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
