"""Loaders: shards → planned windows (pre-training) or all keyframes of every shot (evaluation).

``build_pretrain_loader`` / ``build_eval_loader`` return a ``LoaderHandle`` (``set_epoch``, ``steps_per_epoch``,
iteration over batch dicts); ``cfg.pretrain.loader`` picks DALI or the pure-torch reference. DALI is imported
only when the DALI loader is built.
"""

from bassl.loaders.build import LoaderHandle, build_eval_loader, build_pretrain_loader

__all__ = ["LoaderHandle", "build_eval_loader", "build_pretrain_loader"]
