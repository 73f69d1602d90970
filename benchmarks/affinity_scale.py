"""EGL++ affinities at pool scale: top-K labelled neighbours + perplexity calibration (Eq. 13).

Times ``eglpp.affinity.tsne_affinities`` (``calibration="neighbours"``: exact top-k in chunks,
then the bisection on those neighbours, as Barnes-Hut t-SNE does) against openTSNE's
nearest-neighbour affinities for new points (``PerplexityBasedNN(labelled).to_new(unlabelled)``,
exact brute-force and Annoy indexes), on clustered random 256-d embeddings. Each method runs in
a fresh process, so its peak memory is its own. Once the libraries are imported and the inputs
made, the process resets its resident-set high-water mark (Linux ``/proc/self/clear_refs``;
elsewhere the growth of ``ru_maxrss``, a lower bound) and reports how far the peak rose above
the resident set at that moment (``peak_rss_bytes_above_inputs``), what was still resident
after the call (``rss_after_bytes_above_inputs``) and the size of the result
(``output_bytes``: eglpp's (U, K) arrays, openTSNE's sparse matrix); on a GPU
``peak_bytes_above_inputs`` is ``torch.cuda.max_memory_allocated`` above the inputs, on the CPU
it is the resident-set peak. eglpp also runs at a tenth of |U| to show that its working memory
(peak − outputs) does not grow with |U|·|L|; a dense |U|×|L| float64 matrix is given for
comparison. The p(j|i) of both libraries are compared on the common neighbours,
and each one's perplexity over the calibration neighbours is checked against the target.

Issue 5's targets: CPU, |U| = 100,000, |L| = 10,000, within 2× of openTSNE; GPU, |U| = 10^6,
|L| = 10^5, ≤ 60 s.

Usage::

    python benchmarks/affinity_scale.py --threads 1 --out benchmarks/results/affinity_scale_cpu.json
    python benchmarks/affinity_scale.py --device cuda --unlabelled 1000000 --labelled 100000 \\
        --skip-opentsne --out affinity_scale_gpu.json
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

PERPLEXITY, K, DIM = 20.0, 30, 256


def _embeddings(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(50, DIM)).astype(np.float32) * 3
    z = rng.standard_normal((n, DIM), dtype=np.float32)
    z += centres[rng.integers(50, size=n)]
    return z


def _status_bytes(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class _PeakRSS:
    """Resident-set growth of this process from ``start()`` to ``stop()``.

    Linux lets a process reset its own high-water mark (``/proc/self/clear_refs``, 5): the peak
    is then exact whatever the process did before. Elsewhere ``ru_maxrss`` cannot be reset, and
    its growth is only a lower bound (zero when an earlier moment was higher).
    """

    def start(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM after clear_refs"
            self.base = _status_bytes("VmRSS")
        except OSError:
            self.method = "ru_maxrss growth (lower bound)"
            self.base = _maxrss_bytes()

    def stop(self) -> dict:
        exact = self.method.startswith("VmHWM")
        peak = _status_bytes("VmHWM") if exact else _maxrss_bytes()
        out = {"peak_rss_bytes_above_inputs": peak - self.base, "peak_rss_method": self.method}
        if exact:
            out["rss_after_bytes_above_inputs"] = _status_bytes("VmRSS") - self.base
        return out


def _perplexity(p: np.ndarray) -> float:
    """``2^H`` (H in bits) of one row's probabilities over its calibration neighbours."""
    p = p[p > 0] / p.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _job(method: str, U: int, L: int, device: str, threads: int, chunk: int | None) -> dict:
    """One measurement in this (fresh) process: seconds, peak memory, p for the first rows.

    The libraries are imported and the inputs made before the measurement starts; the rows
    compared between libraries are computed after it ends.
    """
    import torch

    from eglpp.affinity import AffinityConfig, tsne_affinities

    if method != "eglpp":
        from openTSNE.affinity import PerplexityBasedNN

    torch.set_num_threads(threads)
    zu, zl = _embeddings(U, 1), _embeddings(L, 2)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    name = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    out = {"method": method, "U": U, "L": L, "device": device, "device_name": name}
    cfg = AffinityConfig(perplexity=PERPLEXITY, k=K, calibration="neighbours", chunk_size=chunk)
    rss = _PeakRSS()
    rss.start()
    t0 = time.perf_counter()
    if method == "eglpp":
        aff = tsne_affinities(zu, zl, cfg, device=device)
        if cuda:
            torch.cuda.synchronize()
        out["output_bytes"] = sum(a.nbytes for a in aff)
    else:
        index = PerplexityBasedNN(
            zl, perplexity=PERPLEXITY, method=method, n_jobs=threads, random_state=0
        )
        out["index_seconds"] = time.perf_counter() - t0
        P = index.to_new(zu, perplexity=PERPLEXITY).tocsr()
        out["output_bytes"] = P.data.nbytes + P.indices.nbytes + P.indptr.nbytes
    out["seconds"] = time.perf_counter() - t0
    out.update(rss.stop())
    out["peak_bytes_above_inputs"] = (
        torch.cuda.max_memory_allocated() - base if cuda else out["peak_rss_bytes_above_inputs"]
    )
    if method == "eglpp":
        nb, p = aff.neighbours, aff.p
        n_cal = int(np.ceil(3 * PERPLEXITY))  # the calibration set: the 60 nearest
        head = tsne_affinities(zu[:1000], zl, replace(cfg, k=n_cal), device=device).p
    else:
        head = P[:1000].toarray()
        nb = np.argsort(-head, axis=1)[:, :K]
        p = np.take_along_axis(head, nb, 1)
    out["perplexity_head"] = [_perplexity(row) for row in np.asarray(head)]
    out["neighbours_head"] = np.asarray(nb[:1000]).tolist()
    out["p_head"] = np.asarray(p[:1000]).tolist()
    return out


def _run(method, U, L, args) -> dict:
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        job = pool.submit(_job, method, U, L, args.device, args.threads, args.chunk_size)
        row = job.result()
    print(
        f"{method:<10} U={U:>8} L={L:>7}  {row['seconds']:8.2f} s  "
        f"peak {row['peak_bytes_above_inputs'] / 2**20:8.1f} MiB above the inputs "
        f"(outputs {row['output_bytes'] / 2**20:6.1f} MiB)",
        flush=True,
    )
    return row


def _agreement(a: dict, b: dict) -> dict:
    """Neighbour-set overlap and max |Δp| on common neighbours, over the first 1000 rows."""
    overlap, diffs = [], []
    heads = (a["neighbours_head"], a["p_head"], b["neighbours_head"], b["p_head"])
    for na, pa, nb, pb in zip(*heads, strict=True):
        common = set(na) & set(nb)
        overlap.append(len(common) / len(na))
        da, db = dict(zip(na, pa, strict=True)), dict(zip(nb, pb, strict=True))
        diffs += [abs(da[j] - db[j]) for j in common]
    return {"neighbour_overlap": float(np.mean(overlap)), "max_abs_p_diff": float(max(diffs))}


def _calibration(row: dict) -> dict:
    """How far each row's perplexity is from the target, over the first 1000 rows."""
    err = np.abs(np.asarray(row["perplexity_head"]) - PERPLEXITY)
    return {
        "median_abs_error": float(np.median(err)),
        "max_abs_error": float(err.max()),
        "rows_off_by_more_than_1pct": int((err > 0.01 * PERPLEXITY).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--unlabelled", type=int, default=100_000)
    ap.add_argument("--labelled", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=None, help="eglpp rows per chunk")
    ap.add_argument("--skip-opentsne", action="store_true")
    ap.add_argument("--opentsne-methods", default="exact,annoy")
    ap.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        default=None,
        help="set glibc's MALLOC_MMAP_THRESHOLD_ in the measuring processes (bytes): large "
        "blocks are then returned to the system when freed, not kept in a fragmented heap",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.malloc_mmap_threshold is not None:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    U, L = args.unlabelled, args.labelled
    rows = [_run("eglpp", max(1, U // 10), L, args), _run("eglpp", U, L, args)]
    if not args.skip_opentsne:
        for method in args.opentsne_methods.split(","):
            rows.append(_run(method, U, L, args))
    agreement = {r["method"]: _agreement(rows[1], r) for r in rows[2:]}
    for name, a in agreement.items():
        print(
            f"eglpp vs openTSNE {name}: neighbour overlap {a['neighbour_overlap']:.4f}, "
            f"max |Δp| {a['max_abs_p_diff']:.2e} (first 1000 rows)"
        )
    for r in rows:
        r["perplexity_calibration"] = _calibration(r)
        c = r["perplexity_calibration"]
        print(
            f"{r['method']:<10} U={r['U']:>8}: perplexity {PERPLEXITY:g} missed by "
            f"> 1% on {c['rows_off_by_more_than_1pct']} of the first 1000 rows "
            f"(max error {c['max_abs_error']:.3g})"
        )
        del r["neighbours_head"], r["p_head"], r["perplexity_head"]
    result = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "malloc_mmap_threshold": args.malloc_mmap_threshold,
        "perplexity": PERPLEXITY,
        "k": K,
        "dim": DIM,
        "dense_UxL_float64_bytes": U * L * 8,
        "rows": rows,
        "agreement": agreement,
    }
    if args.out:
        from eglpp.io import atomic_write_json

        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
