"""Why a CRN fine-tuned from scratch trails the similarity probe on small data: a toy where both see the same windows.

Each movie is 40 shots in 5 scenes; a scene's shots are its own random direction in feature space plus noise, so
a boundary is exactly "the next shot points elsewhere". The similarity probe (:mod:`bassl.train.similarity_probe`)
is handed cosine similarities; the CRN (``model_preset=tiny``, from scratch, Adam, the 50/50 loss of
fine-tuning) has to learn what "similar" means from the labels. Test AP of both as the labelled data grows:

    .venv/bin/python benchmarks/crn_vs_probe.py

Writes benchmarks/results/crn_vs_probe.{json,md}.
"""

from __future__ import annotations

import numpy as np
import torch
from results_files import measured_on, write_results
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from bassl.config import load_config
from bassl.loaders.windows import neighbor_window
from bassl.models import build_boundary_model
from bassl.train.finetune import balanced_cross_entropy
from bassl.train.similarity_probe import window_similarities

DIM, SHOTS, K = 8, 40, 8


def windows(num_movies: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 2K+1, D]`` windows and their centre labels."""
    xs, ys = [], []
    for _ in range(num_movies):
        labels = np.zeros(SHOTS, int)
        labels[rng.choice(np.arange(3, SHOTS - 3), 4, replace=False)] = 1
        scene = np.concatenate([[0], np.cumsum(labels)[:-1]])
        feats = (rng.standard_normal((scene.max() + 1, DIM))[scene] + 0.3 * rng.standard_normal((SHOTS, DIM))).astype(np.float32)
        xs.append(feats[neighbor_window(np.arange(SHOTS), SHOTS, K)])
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def crn_ap(xtr, ytr, xte, yte, steps: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = build_boundary_model(load_config(["model_preset=tiny"]), DIM)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(len(x), (32,), generator=g)
        loss = balanced_cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return 100 * average_precision_score(yte, torch.softmax(model(torch.from_numpy(xte)), 1)[:, 1].numpy())


def probe_ap(xtr, ytr, xte, yte) -> float:
    def f(x):
        return window_similarities(x.reshape(-1, DIM), np.arange(len(x) * (2 * K + 1)).reshape(-1, 2 * K + 1))

    model = LogisticRegression(class_weight="balanced", max_iter=2000).fit(f(xtr), ytr)
    return 100 * average_precision_score(yte, model.predict_proba(f(xte))[:, 1])


def main() -> None:
    torch.set_num_threads(1)  # tiny steps: a second thread only spins (and crawls beside other jobs)
    rows = []
    for movies, steps in ((5, 300), (20, 600), (80, 1000)):
        crn, probe = [], []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            xtr, ytr = windows(movies, rng)
            xte, yte = windows(40, rng)
            crn.append(crn_ap(xtr, ytr, xte, yte, steps, seed))
            probe.append(probe_ap(xtr, ytr, xte, yte))
        rows.append({"train_movies": movies, "train_windows": movies * SHOTS, "crn_steps": steps,
                     "crn_ap": crn, "probe_ap": probe})
        print(rows[-1], flush=True)
    result = {**measured_on(), "rows": rows,
              "chance": 100 * 4 / SHOTS}
    lines = [f"# CRN from scratch against the similarity probe, toy windows ({result['date']})", "",
             f"Test AP on 40 held-out toy movies, mean ± std over 3 seeds; chance {result['chance']:.0f}.", "",
             "| labelled movies (windows) | CRN steps | CRN from scratch | similarity probe |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['train_movies']} ({r['train_windows']}) | {r['crn_steps']} | {np.mean(r['crn_ap']):.1f} ± "
                     f"{np.std(r['crn_ap']):.1f} | {np.mean(r['probe_ap']):.1f} ± {np.std(r['probe_ap']):.1f} |")
    write_results("crn_vs_probe", result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
