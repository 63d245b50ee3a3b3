"""Fine-tuning input throughput: 17-shot windows from one Parquet-loaded matrix vs the original's style.

The original saves one ``.npy`` per shot and its fine-tuning Dataset loads the 17 files of a window in
``__getitem__`` (DataLoader workers, shuffled). bassl reads the Parquet features once into one matrix and
gathers each batch of windows with one indexing op. Both sides run here on the same features and cores.

    .venv/bin/python benchmarks/bench_finetune_input.py [--movies 40] [--shots 300] [--dim 2048] [--windows 8192] [--passes 5]

Writes benchmarks/results/finetune_input.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results_files import measured_on, write_results
from torch.utils.data import DataLoader, Dataset

from bassl.data.features import load_features, write_feature_manifest, write_partition
from bassl.loaders.finetune import batches
from bassl.loaders.windows import neighbor_window


class NpyWindows(Dataset):
    """The original's path: 17 ``np.load`` calls per window (clip-and-repeat indices)."""

    def __init__(self, root: Path, anchors: list[tuple[str, int, int]], k: int = 8) -> None:
        self.root, self.anchors, self.k = root, anchors, k

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> torch.Tensor:
        vid, shot, n = self.anchors[i]
        idx = neighbor_window(shot, n, self.k)[0]
        return torch.from_numpy(np.stack([np.load(self.root / vid / f"shot_{s:04d}.npy") for s in idx]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--movies", type=int, default=40)
    p.add_argument("--shots", type=int, default=300)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--windows", type=int, default=8192)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--passes", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = []
        for m in range(args.movies):
            vid = f"tt9{m:06d}"
            feats = rng.standard_normal((args.shots, args.dim)).astype(np.float32)
            (tmp / "npy" / vid).mkdir(parents=True)
            for s in range(args.shots):
                np.save(tmp / "npy" / vid / f"shot_{s:04d}.npy", feats[s])
            names.append(f"part-{m:05d}")
            write_partition(tmp / "parquet", names[-1], [vid] * args.shots, np.arange(args.shots), feats)
        write_feature_manifest(tmp / "parquet", names)
        os.sync()

        # original style: shuffled anchors, 17 file loads per window, DataLoader workers
        anchors = [(f"tt9{m:06d}", s, args.shots) for m in range(args.movies) for s in range(args.shots)]
        order = rng.permutation(len(anchors))[: args.windows]
        ds = NpyWindows(tmp / "npy", [anchors[i] for i in order])
        loader = DataLoader(ds, batch_size=args.batch, num_workers=args.workers, shuffle=False)
        t = time.perf_counter()
        seen = sum(x.shape[0] for x in loader)
        npy_s = time.perf_counter() - t

        # bassl: one Parquet read into a matrix (fp32, and fp16 = finetune.feature_dtype=fp16), one gather per batch
        movie = np.repeat(np.arange(args.movies), args.shots)
        shot = np.tile(np.arange(args.shots), args.movies)
        ours = {}
        for dtype in ("fp32", "fp16"):
            t = time.perf_counter()
            fm = load_features(tmp / "parquet", dtype)
            load_s = time.perf_counter() - t
            features = torch.from_numpy(fm.features)
            rows = fm.offsets[movie][:, None] + neighbor_window(shot, fm.counts[movie], 8)
            labels = np.zeros(len(rows), dtype=np.int64)
            got = 0
            t = time.perf_counter()
            for _ in range(args.passes):  # several passes: one pass is only a few batches
                got += sum(x.shape[0] for x, _, _ in batches(features, rows, labels, order, args.batch, drop_last=False))
            ours[dtype] = {"windows_per_s": got / (time.perf_counter() - t), "load_s": load_s}
            assert got == args.passes * len(order)
            del fm, features
    args.windows = len(order)
    assert seen == args.windows
    npy_rate = args.windows / npy_s
    result = {
        **measured_on(),
        "data": f"{args.movies} movies x {args.shots} shots, {args.dim}-d float32",
        "windows": args.windows,
        "batch": args.batch,
        "original_npy_windows_per_s": round(npy_rate, 1),
        **{f"bassl_{d}_windows_per_s": round(r["windows_per_s"], 1) for d, r in ours.items()},
        **{f"bassl_{d}_parquet_load_s": round(r["load_s"], 3) for d, r in ours.items()},
        **{f"ratio_{d}": round(r["windows_per_s"] / npy_rate, 1) for d, r in ours.items()},
        # one epoch of the original (all windows once) against the Parquet read plus one epoch of ours
        **{f"ratio_{d}_including_parquet_load": round(npy_s / (args.windows / r["windows_per_s"] + r["load_s"]), 1)
           for d, r in ours.items()},
    }
    write_results("finetune_input", result,
        f"# Fine-tuning input throughput ({result['date']})\n\n{result['machine']}; {result['data']}; "
        f"{args.windows} shuffled 17-shot windows, batch {args.batch}, {args.workers} DataLoader workers for the "
        f"original; ours timed over {args.passes} passes.\n\n"
        "| input path | windows/s | ratio | ratio counting the one-time Parquet read |\n|---|---|---|---|\n"
        f"| original: one .npy per shot, 17 loads per window | {result['original_npy_windows_per_s']} | 1 | |\n"
        + "".join(f"| bassl, {d}: Parquet once into a matrix, one gather per batch | {result[f'bassl_{d}_windows_per_s']} "
                  f"| **{result[f'ratio_{d}']}x** | {result[f'ratio_{d}_including_parquet_load']}x "
                  f"({result[f'bassl_{d}_parquet_load_s']} s read) |\n" for d in ("fp32", "fp16")))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
