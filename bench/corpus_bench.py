"""Corpus loading: parse speed and peak memory on a generated corpus of a million documents.

    python bench/corpus_bench.py               # writes bench/corpus_results.json and .md
    python bench/corpus_bench.py --docs 100000 # a smaller run to try it out: prints, writes nothing

One corpus is generated (Zipf-distributed words, Poisson document lengths) and written as LDA-C,
UCI (plain and gzip), Matrix Market and raw text, one document per line. Each file is loaded with
load_corpus in a fresh process, which reports the seconds and its peak resident memory above what
it held before loading (after imports and compiling the parsers). The targets (issue 3): LDA-C and
UCI parse at least 1 million nonzeros per second; the peak stays under 3x the size of the CSR
matrix plus the vocabulary.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ldaem.convert import write_corpus
from ldaem.corpus import Corpus, DocumentNumbers, load_corpus

BENCH = Path(__file__).resolve().parent
SEED = 0
N_WORDS = 50_000
MEAN_LENGTH = 30            # tokens per document
FILES = (                   # (name, what it is)
    ("corpus.ldac", "LDA-C"),
    ("corpus.ldac.gz", "LDA-C, gzip"),
    ("docword.corpus.txt", "UCI"),
    ("docword.corpus.txt.gz", "UCI, gzip"),
    ("corpus.mtx", "Matrix Market"),
    ("corpus.txt", "raw text, one document per line"),
)
TARGET_NNZ_PER_SECOND = 1e6
TARGET_MEMORY_RATIO = 3.0


def generate(n_docs, folder):
    """Write the synthetic corpus in every format into folder; returns its nonzeros."""
    rng = np.random.default_rng(SEED)
    probabilities = 1.0 / np.arange(1, N_WORDS + 1) ** 1.07
    probabilities /= probabilities.sum()
    lengths = rng.poisson(MEAN_LENGTH, size=n_docs)
    tokens = rng.choice(N_WORDS, size=int(lengths.sum()), p=probabilities).astype(np.int32)
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    X = sp.csr_matrix((np.ones(tokens.size), (rows, tokens)), shape=(n_docs, N_WORDS))
    X.sum_duplicates()
    words = np.array([_word(i) for i in range(N_WORDS)])
    corpus = Corpus(X=X, vocab=words, names=DocumentNumbers(n_docs), path="", format="generated")
    for name, _ in FILES[:-1]:
        write_corpus(corpus, folder / name)
    ends = np.cumsum(lengths)
    with open(folder / "corpus.txt", "w") as f:
        for start in range(0, n_docs, 10_000):
            stop = min(start + 10_000, n_docs)
            first = ends[start - 1] if start else 0
            text = words[tokens[first:ends[stop - 1]]].tolist()
            bounds = (ends[start:stop] - first).tolist()
            f.writelines(" ".join(text[a:b]) + "\n" for a, b in zip([0] + bounds[:-1], bounds))
    return X.nnz


def _word(i):
    """A made-up word of letters only, three or more, never an English stop word."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    word = "q"
    while True:
        word += letters[i % 26]
        i //= 26
        if i == 0:
            return word + "z"


def measure(path):
    """Load path once (in this process) and report seconds and memory, as JSON on stdout."""
    warm_up()
    before = _memory("VmRSS")
    started = time.perf_counter()
    corpus = load_corpus(path)
    seconds = time.perf_counter() - started
    peak = _memory("VmHWM")
    X = corpus.X
    print(json.dumps({
        "seconds": seconds, "documents": X.shape[0], "terms": X.shape[1], "nnz": int(X.nnz),
        "csr_bytes": int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes),
        "vocab_bytes": int(corpus.vocab.nbytes), "peak_bytes": int(peak - before)}))


def warm_up():
    """Import what loading needs and compile (or load from numba's cache) the parsers, on a tiny
    corpus in every format, before measuring."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "vocab.w.txt").write_text("a\nb\n")
        (folder / "docword.w.txt").write_text("1\n2\n1\n1 2 3\n")
        (folder / "w.ldac").write_text("1 1:3\n")
        (folder / "w.mtx").write_text("%%MatrixMarket matrix coordinate integer general\n1 2 1\n1 2 3\n")
        (folder / "w.txt").write_text("some words\nmore words\n")
        for name in ("docword.w.txt", "w.ldac", "w.mtx", "w.txt"):
            load_corpus(folder / name, vocab=folder / "vocab.w.txt")


def _memory(field):
    """This process's resident memory (VmRSS) or its peak so far (VmHWM), in bytes. (Not
    getrusage's ru_maxrss: a child process inherits its parent's.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def run(n_docs, folder):
    started = time.perf_counter()
    nnz = generate(n_docs, folder)
    print(f"generated {n_docs} documents, {nnz} nonzeros in {time.perf_counter() - started:.0f}s",
          file=sys.stderr)
    results = []
    for name, what in FILES:
        output = subprocess.run([sys.executable, __file__, "--measure", str(folder / name)],
                                check=True, capture_output=True, text=True).stdout
        result = {"file": name, "format": what, "file_bytes": (folder / name).stat().st_size,
                  **json.loads(output)}
        result["nnz_per_second"] = result["nnz"] / result["seconds"]
        result["peak_over_csr"] = result["peak_bytes"] / result["csr_bytes"]
        result["within_memory_target"] = (
            result["peak_bytes"] < TARGET_MEMORY_RATIO * result["csr_bytes"] + result["vocab_bytes"])
        results.append(result)
        print(f"{what}: {result['seconds']:.1f}s, {result['nnz_per_second'] / 1e6:.1f}M nnz/s, "
              f"peak {result['peak_over_csr']:.2f}x CSR", file=sys.stderr)
    return results


def markdown(results, machine):
    csr = results[0]["csr_bytes"]
    lines = [
        "# Corpus loading: speed and peak memory",
        "",
        f"A generated corpus of {results[0]['documents']:,} documents, {results[0]['terms']:,} terms "
        f"and {results[0]['nnz']:,} nonzeros (Zipf words, Poisson lengths of mean {MEAN_LENGTH}); its "
        f"CSR matrix (float64 counts, int32 indices) takes {csr / 2**20:.0f} MiB. Each file is read by "
        f"`load_corpus` in a fresh process; peak is the resident memory above what the process held "
        f"before loading. Targets: LDA-C and UCI at least {TARGET_NNZ_PER_SECOND / 1e6:.0f}M nonzeros "
        f"per second; peak under {TARGET_MEMORY_RATIO:g}x the CSR size plus the vocabulary.",
        "",
        "| file | format | size (MiB) | seconds | nonzeros/s | peak (MiB) | peak / CSR | within target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| `{r['file']}` | {r['format']} | {r['file_bytes'] / 2**20:.0f} | {r['seconds']:.1f} "
                     f"| {r['nnz_per_second'] / 1e6:.1f}M | {r['peak_bytes'] / 2**20:.0f} "
                     f"| {r['peak_over_csr']:.2f} | {'yes' if r['within_memory_target'] else 'NO'} |")
    lines += ["", f"Machine: {machine['cores']} cores, {machine['cpu']}, Python {machine['python']}, "
                  f"{machine['date']}."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000, help="documents to generate")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure)
    with tempfile.TemporaryDirectory() as folder:
        results = run(args.docs, Path(folder))
    sys.path.insert(0, str(BENCH))
    from machine import machine_info
    machine = machine_info()
    text = markdown(results, machine)
    print(text)
    if args.docs >= 1_000_000:
        (BENCH / "corpus_results.json").write_text(json.dumps(
            {"machine": machine, "documents": args.docs, "results": results}, indent=1) + "\n")
        (BENCH / "corpus_results.md").write_text(text)


if __name__ == "__main__":
    main()
