"""Pseudo-boundaries for one batch: the original's per-sample tslearn DTW loop vs our batched exact DP.

Both sides start from the same head embeddings and include forming the cost; results are asserted equal
(boundary index and groups for every sample) before anything is timed. Writes
``benchmarks/results/pseudo_boundary.{json,md}``.

One torch thread by default: the tslearn loop is single-threaded, and on our 2-core VMs torch's OpenMP
intra-op threads (default wait policy) make mid-sized ops ~40x slower than one thread; with
``--threads 2`` set ``OMP_WAIT_POLICY=PASSIVE``.

    .venv/bin/python benchmarks/bench_pseudo_boundary.py [--batch 256] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from results_files import measured_on, write_results
from tslearn.metrics import dtw_path_from_metric

from bassl.train.pseudo_boundary import pseudo_boundary


def original(s_emb: torch.Tensor, d_emb: torch.Tensor) -> list[np.ndarray]:
    """kakaobrain/bassl ``_compute_dtw_path``: float32 cost to the CPU, one tslearn call per sample."""
    cost = (1 - torch.bmm(s_emb, d_emb.transpose(1, 2))).cpu().numpy().astype(np.float32)
    return [np.asarray(dtw_path_from_metric(c, metric="precomputed")[0]) for c in cost]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads; the tslearn loop is single-threaded")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    s_emb = F.normalize(torch.randn(args.batch, 2, args.dim, generator=g), dim=-1)
    d_emb = F.normalize(torch.randn(args.batch, 17, args.dim, generator=g), dim=-1)

    # Same answers first (this also compiles tslearn's numba kernels outside the timing).
    paths = original(s_emb, d_emb)
    pb = pseudo_boundary(s_emb, d_emb)
    groups = pb.groups().numpy()
    for i, path in enumerate(paths):
        assert pb.bd[i].item() == np.where(path[:, 0] == 0)[0][-1], i
        ref = np.zeros((2, 17), dtype=bool)
        ref[path[:, 0], path[:, 1]] = True
        assert np.array_equal(groups[i], ref), i

    t_loop = best_of(lambda: original(s_emb, d_emb), args.repeats)
    t_batched = best_of(lambda: pseudo_boundary(s_emb, d_emb), args.repeats * 10)
    result = {
        **measured_on(),
        "batch": args.batch,
        "tslearn_loop_ms": round(t_loop * 1e3, 3),
        "batched_ms": round(t_batched * 1e3, 3),
        "speedup": round(t_loop / t_batched, 1),
        "identical_results": True,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "timing": f"best of {args.repeats} (loop) / {args.repeats * 10} (batched) runs",
    }
    write_results("pseudo_boundary", result,
        "# Pseudo-boundaries, one batch of {batch} windows (CPU, {torch_threads} threads; {date}, {machine})\n\n"
        "| implementation | time per batch |\n|---|---|\n"
        "| original: per-sample tslearn DTW loop | {tslearn_loop_ms} ms |\n"
        "| bassl: batched exact DP | {batched_ms} ms |\n\n"
        "Speed-up **{speedup}x**, identical boundaries and groups for every sample ({timing}).\n".format(**result)
    )
    print(
        f"batch {args.batch}: tslearn loop {result['tslearn_loop_ms']} ms, batched {result['batched_ms']} ms "
        f"-> {result['speedup']}x (identical results)"
    )


if __name__ == "__main__":
    main()
