"""bassl: high-throughput BaSSL (boundary-aware self-supervised video scene segmentation)."""

import os

# OpenMP threads that spin while waiting starve the loader's threads on small CPU machines: on 2 cores, torch
# ops ran 6-17x slower with the default policy (benchmarks/results/pretrain.md). Set before torch loads libgomp;
# an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["Segmenter", "Scenes"]


def __getattr__(name: str):
    """``from bassl import Segmenter``: the Python API, imported on first use (``import bassl`` stays light)."""
    if name == "Segmenter":
        from bassl.scenes.segmenter import Segmenter

        return Segmenter
    if name == "Scenes":
        from bassl.scenes.scene_files import Scenes

        return Scenes
    raise AttributeError(f"module 'bassl' has no attribute {name!r}")
