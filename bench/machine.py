"""What the benchmark ran on: cores, CPU, date, library versions, ldaem's source revision and
numpy's matmul speed."""

import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

REPO = Path(__file__).resolve().parent.parent

LIBRARIES = ("ldaem", "numpy", "scipy", "numba", "scikit-learn", "gensim", "tomotopy")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_revision():
    """The git commit of ldaem, with '+ uncommitted changes' when ldaem/ differs from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit, changed = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "ldaem")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + (" + uncommitted changes" if changed else "")


def blas():
    """numpy's BLAS and its thread count, e.g. 'openblas 0.3.29 (2 threads)'."""
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)" for p in pools)


def matmul_gflops(n=2000, repeats=5, dtype=np.float64):
    """Best achieved GFLOP/s of an n x n matrix product (2 n^3 flops) in dtype with numpy."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def machine_info():
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],   # 1, 5, 15 minutes, at the start
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "versions": library_versions(),
        "ldaem_revision": source_revision(),
        "blas": blas(),
        "matmul_gflops": round(matmul_gflops(), 1),
    }


def write_results(name, results, text):
    """Write bench/NAME_results.json (results) and bench/NAME_results.md (text)."""
    folder = REPO / "bench"
    (folder / f"{name}_results.json").write_text(json.dumps(results, indent=1) + "\n")
    (folder / f"{name}_results.md").write_text(text)


def finish_run(name, results, markdown, started, write=True):
    """Close a benchmark's results: the load average at the end and the seconds since started
    (a time.perf_counter()), then its Markdown printed and, if write, both files written."""
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = time.perf_counter() - started
    text = markdown(results)
    print(text)
    if write:
        write_results(name, results, text)
    return text
