"""What the PP head learns, and why it finds real scene boundaries on one data set and not on another.

For each ``encoder.pt`` that ``benchmarks/long_run.py`` saved (bassl, every seed and step), on the val movies'
eval-mode features that the run extracted, with the export's own CRN and heads:

- the monitors of method.md §6.10: pseudo-boundary hit rate, PP zero-shot AP read at the window's centre, PP's AP
  at its own task (the DTW pseudo-boundary among the window's shots), the mean PP probability at the centre and
  at the edge positions, and the share of windows whose pseudo-boundary is the centre shot;
- ``pp_ap_any_position``: each shot scored by the mean PP probability over every window position it occupies
  (not only the centre), to test whether reading PP at the centre is what fails;
- ``pp_position_share``: the share (%) of the PP probability's variance over all windows and positions that the
  position alone explains (the variance of the per-position means): high means PP answers "where in the window",
  not "what is there";
- ``train_*`` / ``evalaug_*``: PP's self AP and position share in training conditions, on the first
  ``--train-batches`` batches the pre-training loader gives (augmented views, the pseudo-boundary from the two
  separately augmented end shots, as the loss sees them), with the model in training mode (batch statistics,
  dropout: what the PP head was trained on) and in eval mode on the same images. If PP did its task on training
  inputs and not on eval features, the train/eval mismatch would be why it does not transfer;
- ``probe_*``: whether the pseudo-boundary can be read from the CRN's states at all. A linear score ``w . h``
  (PP's head has this form) fitted on the frozen eval-mode states of the train movies' windows to pick each
  window's DTW pseudo-boundary (softmax over the S positions), then read on val: its self AP, position share, and
  zero-shot AP at the centre (where position cannot help). A probe that does PP's task where the PP head does not
  puts the failure in PP's training; a probe that fails too puts it in what the CRN's states hold;
- ``rule_*``: the same readings for a score with no training, from the encoder's own NCE embeddings ``e``:
  ``a_i = e_i . e_first - e_i . e_last`` and the score ``a_i - a_(i+1)`` (where the window's shots stop looking like
  its first shot and start looking like its last): how readable PP's target is from the CRN's input;
- ``moved_*``: how far each part's weight matrices and kernels moved from their initialisation,
  ``||w - w0|| / ||w0||``; the initial weights are rebuilt from the run's seed, as pre-training builds them.

    .venv/bin/python benchmarks/pp_transfer.py [--runs runs/long_run] [--train-batches 8]

Writes ``benchmarks/results/pp_transfer.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
from results_files import measured_on, write_results

from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.metrics import average_precision
from bassl.loaders.build import build_pretrain_loader
from bassl.loaders.windows import neighbor_window
from bassl.models import initial_pretrain_model
from bassl.models.weights import load_pretrain_model
from bassl.train.label_free import pp_probability
from bassl.train.pretext_monitor import labelled_windows, pp_self_ap, split_monitors
from bassl.train.pseudo_boundary import pseudo_boundary


@torch.no_grad()
def window_probs(model, feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(``[n, S]`` window rows, ``[n, S]`` PP probability at every position of every shot's window)."""
    n = len(feats)
    rows = neighbor_window(np.arange(n), n, k)  # [n, S]
    x = torch.from_numpy(feats.astype(np.float32))[torch.from_numpy(rows)]  # [n, S, D]
    h, _ = model.crn(x)
    return rows, pp_probability(model.head_pp, h.flatten(0, 1)).view(n, -1).numpy()


def any_position_scores(rows: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """``[n]``: each shot's PP probability averaged over the 2K+1 windows (and positions) that hold it."""
    n = len(rows)
    total, count = np.zeros(n), np.zeros(n)
    np.add.at(total, rows.ravel(), prob.ravel())
    np.add.at(count, rows.ravel(), 1)
    return total / np.maximum(count, 1)


def position_share(prob: np.ndarray) -> float:
    """% of the variance of ``prob [N, S]`` that the position alone explains (the variance of the column means)."""
    return 100.0 * float(prob.mean(axis=0).var() / max(prob.var(), 1e-12))


@torch.no_grad()
def training_view(model, cfg, batches: int) -> dict[str, float]:
    """PP on the pre-training loader's own batches, in training mode and in eval mode (same images)."""
    from bassl.methods import method_info

    loader = build_pretrain_loader(cfg, cfg.data.shards, device="cpu", loader="torch", split="pretrain")
    loader.set_epoch(0)
    n = len(method_info(cfg.method).sparse_positions(cfg.window.neighbor_size))
    trained = copy.deepcopy(model).train()  # its BN running statistics move; the eval copy stays as saved
    out: dict[str, list] = {"train": [], "evalaug": []}
    for i, batch in enumerate(loader):
        if i == batches:
            break
        for mode, m in (("evalaug", model), ("train", trained)):
            torch.manual_seed(i)  # dropout
            feats = m.encode(batch["images"])  # [B, T, D]
            emb = m.head_nce(feats)  # [B, T, E]
            bd = pseudo_boundary(emb[:, :2], emb[:, n:]).bd  # as the loss: the two sparse end views
            h, _ = m.crn(feats[:, n:])  # [B, S, H]
            out[mode].append((pp_probability(m.head_pp, h.flatten(0, 1)).view(h.shape[:2]).numpy(), bd.numpy()))
    res = {}
    for mode, parts in out.items():
        prob, bd = np.concatenate([p for p, _ in parts]), np.concatenate([b for _, b in parts])
        res[f"{mode}_self_ap"], res[f"{mode}_position_share"] = pp_self_ap(prob, bd), position_share(prob)
    res["train_windows"] = float(len(bd))
    return res


@torch.no_grad()
def states_and_targets(model, win) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For labelled windows: CRN states ``[N, S, H]``, NCE embeddings ``[N, S, E]`` and the eval-mode DTW
    pseudo-boundaries ``[N]`` (as the monitors find them)."""
    h, emb, bd = [], [], []
    for i in range(0, len(win), 1024):
        x = win.x[i : i + 1024]  # [n, S, D]
        emb.append(model.head_nce(x))
        bd.append(pseudo_boundary(emb[-1][:, [0, -1]], emb[-1]).bd)
        h.append(model.crn(x)[0])
    return torch.cat(h), torch.cat(emb), torch.cat(bd)


def pp_probe(model, cfg, source: MovieNetSource, fm, steps: int = 300, max_windows: int = 8000) -> dict[str, float]:
    """A linear score fitted on the train movies' frozen CRN states to find the pseudo-boundary, read on val;
    beside it, the same readings of :func:`edge_contrast_rule` on the val windows' embeddings."""
    def windows(split: str):
        anns = source.split(split)
        return labelled_windows([(fm.rows(v), a.shot_ids, a.boundary_labels(cfg.data.negative_label))
                                 for v, a in anns.items()], cfg.window.neighbor_size)

    train = windows("train")
    h, _, bd = states_and_targets(model, train)
    keep = torch.randperm(len(bd), generator=torch.Generator().manual_seed(0))[:max_windows]
    h, bd = h[keep], bd[keep]
    torch.manual_seed(0)
    probe = torch.nn.Linear(h.shape[-1], 1)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):  # full batch: softmax over each window's S positions, target its pseudo-boundary
        loss = torch.nn.functional.cross_entropy(probe(h)[..., 0], bd)
        opt.zero_grad()
        loss.backward()
        opt.step()
    val = windows("val")
    hv, ev, bdv = states_and_targets(model, val)
    with torch.no_grad():
        score = probe(hv)[..., 0].numpy()  # [N, S]
    rule = edge_contrast_rule(ev)
    k, scored, bdv = score.shape[1] // 2, val.label >= 0, bdv.numpy()
    return {"probe_self_ap": pp_self_ap(score, bdv), "probe_position_share": position_share(score),
            "probe_ap": average_precision(val.label[scored], score[scored, k]), "probe_train_loss": float(loss),
            "rule_self_ap": pp_self_ap(rule, bdv), "rule_position_share": position_share(rule),
            "rule_ap": average_precision(val.label[scored], rule[scored, k])}


@torch.no_grad()
def edge_contrast_rule(e: torch.Tensor) -> np.ndarray:
    """``[N, S]``: ``a_i - a_(i+1)`` with ``a_i = e_i . e_first - e_i . e_last`` on unit embeddings ``e [N, S, E]``
    (no training)."""
    a = (e * e[:, :1]).sum(-1) - (e * e[:, -1:]).sum(-1)  # [N, S]
    return (a - torch.cat([a[:, 1:], a[:, -1:]], dim=1)).numpy()


@torch.no_grad()
def moved(model, cfg) -> dict[str, float]:
    """``moved_<part>``: ``||w - w0|| / ||w0||`` over each part's matrices and kernels (dim >= 2: no biases or norms)."""
    init = dict(initial_pretrain_model(cfg).named_parameters())
    sq: dict[str, list[float]] = {}
    for name, w in model.named_parameters():
        if w.dim() < 2:
            continue
        d = sq.setdefault(name.split(".")[0], [0.0, 0.0])
        d[0] += float((w - init[name]).pow(2).sum())
        d[1] += float(init[name].pow(2).sum())
    return {f"moved_{part}": (a / b) ** 0.5 for part, (a, b) in sq.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs/long_run"))
    p.add_argument("--name", default="pp_transfer")
    p.add_argument("--train-batches", type=int, default=8, help="pre-training batches for the train_* columns")
    args = p.parse_args()
    rows = []
    for enc in sorted(args.runs.glob("bassl/seed*/step*/encoder.pt")):
        at = enc.parent
        model, cfg = load_pretrain_model(enc)
        fm = load_features(at / "features")
        source = MovieNetSource.from_config(cfg.data)
        movies = {v: fm.rows(v) for v in source.split("val")}
        m = split_monitors(cfg, model, movies, source, "val", torch.device("cpu"))
        gts, scores, probs = [], [], []
        for vid, ann in source.split("val").items():
            labels = ann.boundary_labels(cfg.data.negative_label)
            keep = labels >= 0
            windows, prob = window_probs(model, movies[vid], cfg.window.neighbor_size)
            gts.append(labels[keep])
            scores.append(any_position_scores(windows, prob)[ann.shot_ids[keep]])
            probs.append(prob)
        m["pp_ap_any_position"] = average_precision(np.concatenate(gts), np.concatenate(scores))
        prob = np.concatenate(probs)  # [N, S]
        # how much of PP's output is the position in the window rather than what the window holds
        m["pp_position_share"] = position_share(prob)
        m.update(pp_probe(model, cfg, source, fm))
        m.update(moved(model, cfg))
        if args.train_batches:
            m.update(training_view(model, cfg, args.train_batches))
        row = {"seed": int(at.parent.name.removeprefix("seed")), "step": int(at.name.removeprefix("step")), **m}
        print(json.dumps(row), flush=True)
        rows.append(row)
    keys = ["pb_exact", "pb_within1", "pb_at_centre", "pp_ap", "pp_ap_any_position", "pp_chance", "pp_self_ap",
            "pp_centre_mean", "pp_edge_mean", "pp_position_share", "train_self_ap", "train_position_share",
            "evalaug_self_ap", "evalaug_position_share", "probe_self_ap", "probe_position_share", "probe_ap",
            "rule_self_ap", "rule_ap", "moved_crn", "moved_head_pp", "moved_head_cgm", "cgm_acc", "adjacent_ap"]
    result = {**measured_on(), "rows": rows}
    lines = [f"# What PP learns, against real boundaries ({result['date']}, {result['machine']})", "",
             f"bassl encoders saved by `benchmarks/long_run.py` ({args.runs}); val movies, eval-mode features unless "
             "the column says otherwise (each column: the script's docstring). "
             "PP self AP: chance 1/17 = 5.9 %. "
             f"`.venv/bin/python benchmarks/pp_transfer.py --runs {args.runs} --name {args.name}`", "",
             "| seed | step | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for r in sorted(rows, key=lambda r: (r["seed"], r["step"])):
        lines.append(f"| {r['seed']} | {r['step']} | " + " | ".join(f"{r.get(k, float('nan')):.2f}" for k in keys) + " |")
    write_results(args.name, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
