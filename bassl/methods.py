"""The five pre-training methods as one table: what a sample holds, whether a CRN is trained, the fine-tuning lr.

Everything else about a method is config data (its loss terms, in ``configs/method/<name>.yaml``); this table
holds the structural facts the loaders, models, objectives and fine-tuning branch on (method.md §3.6, §6.4, §8.4).

============== ====================== ===== ============== =================================
method         sample                 CRN   images (K=8)   fine-tuning base lr at batch 256
============== ====================== ===== ============== =================================
instance       2 views of one shot    no    2              2.5e-5
temporal       shot + a neighbour     no    2              2.5e-5
shotcol        window + first/last/c  no    20             2.5e-5
bassl          window + first/last    yes   19             2.5e-6
bassl_shotcol  window + first/last/c  yes   20             2.5e-6
============== ====================== ===== ============== =================================
"""

from __future__ import annotations

from dataclasses import dataclass

# Sparse views of a window, named by where they sit in it; positions() turns names into indices for a given K.
FIRST, LAST, CENTRE = "first", "last", "centre"


@dataclass(frozen=True)
class Method:
    name: str
    # Sparse views of the 2K+1-shot window, separately augmented, in the original's order. Empty for the pair
    # methods (instance, temporal), whose sample is two views and no window.
    sparse: tuple[str, ...]
    crn: bool  # pre-trains a CRN (with MSM/PP/CGM); fine-tuning then starts from it instead of from scratch
    finetune_base_lr: float  # method.md §8.4: Adam lr at batch 256 (x effective/256), the authors' search

    @property
    def is_window(self) -> bool:
        return bool(self.sparse)

    def sparse_positions(self, k: int) -> tuple[int, ...]:
        """Indices into the dense window of the sparse views: first = 0, last = 2K, centre = K."""
        if not self.sparse:
            raise ValueError(f"method {self.name!r} has no sparse views; window methods are "
                             f"{', '.join(m.name for m in METHODS.values() if m.is_window)}")
        at = {FIRST: 0, LAST: 2 * k, CENTRE: k}
        return tuple(at[s] for s in self.sparse)

    def images_per_sample(self, k: int) -> int:
        """T of the batch ``images [B, T, 3, H, W]``: 2 for a pair method, sparse views + 2K+1 for a window one."""
        return len(self.sparse) + 2 * k + 1 if self.sparse else 2


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("instance", (), crn=False, finetune_base_lr=2.5e-5),
        Method("temporal", (), crn=False, finetune_base_lr=2.5e-5),
        Method("shotcol", (FIRST, LAST, CENTRE), crn=False, finetune_base_lr=2.5e-5),
        Method("bassl", (FIRST, LAST), crn=True, finetune_base_lr=2.5e-6),
        Method("bassl_shotcol", (FIRST, LAST, CENTRE), crn=True, finetune_base_lr=2.5e-6),
    )
}
METHOD_NAMES = tuple(METHODS)


def method_info(name: str) -> Method:
    """The table row of ``name``; an unknown name is an error listing the methods."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"method {name!r} is not one of {', '.join(METHOD_NAMES)}") from None
