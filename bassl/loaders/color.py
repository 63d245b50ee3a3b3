"""Colour jitter as one per-image affine map, applied in torch to a normalised batch (CPU or GPU).

torchvision's brightness, contrast and saturation are affine in RGB (contrast blends with the image's mean
grey, a linear function of the image's channel means); hue is approximated by a rotation about the grey axis
in YIQ (DALI's and OpenCV-style ``color_twist`` do the same; torchvision rotates in HSV). Composing the four in
the *planned order* gives ``x' = A x + c + V mean(x)``: cheap (one 3×3 per pixel) where DALI's CPU colour ops
are the most expensive stage, and faithful to the random op order. Clamped to [0, 1] once at the end
(torchvision clamps after every op; only saturated pixels differ).
"""

from __future__ import annotations

import math

import numpy as np
import torch

GREY = np.array([0.2989, 0.587, 0.114])  # torchvision rgb_to_grayscale
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = np.linalg.inv(_YIQ)


def _hue_matrix(shift: float) -> np.ndarray:
    a = -2 * math.pi * shift  # HSV hue runs the other way round the I-Q plane
    rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    return _YIQ_INV @ rot @ _YIQ


def jitter_affine(factors: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image ``(A [N,3,3], c [N,3], V [N,3,3])`` with ``x' = A x + c + V m``, ``m`` = channel means of ``x``
    (x in [0, 1]); ``factors`` [N, 4] = brightness, contrast, saturation, hue shift; ``order`` [N, 4]."""
    n = len(factors)
    A = np.repeat(np.eye(3)[None], n, 0)
    c = np.zeros((n, 3))
    V = np.zeros((n, 3, 3))
    ones_w = np.outer(np.ones(3), GREY)  # 1 w^T
    for i in range(n):
        a, cc, v = A[i], c[i], V[i]
        b, con, sat, hue = (float(x) for x in factors[i])
        for op in order[i]:
            if op == 0 and b != 1.0:
                a, cc, v = b * a, b * cc, b * v
            elif op == 1 and con != 1.0:  # blend with the mean grey of the current image
                a, cc, v = con * a, con * cc + (1 - con) * (GREY @ cc), con * v + (1 - con) * ones_w @ (a + v)
            elif op == 2 and sat != 1.0:
                m = sat * np.eye(3) + (1 - sat) * ones_w
                a, cc, v = m @ a, m @ cc, m @ v
            elif op == 3 and hue != 0.0:
                m = _hue_matrix(hue)
                a, cc, v = m @ a, m @ cc, m @ v
        A[i], c[i], V[i] = a, cc, v
    return A, c, V


def apply_jitter(images: torch.Tensor, factors: np.ndarray, order: np.ndarray, mean, std,
                 workspace: dict | None = None) -> torch.Tensor:
    """``images`` [N, 3, H, W] normalised with (mean, std); jittered in place and returned, still normalised.

    Done in the normalised space: with D = diag(std), y = D^-1 (x - mu), the map is
    ``y' = D^-1 A D y + D^-1 (A mu + c + V m - mu)``, ``m = D mean(y) + mu``: one batched 3×3 matmul and one
    clamp over the whole batch (identity rows for images without jitter). ``workspace`` keeps the scratch
    buffer between calls: fresh large CPU buffers cost page faults comparable to the matmul itself.
    """
    if not (factors != np.array([1.0, 1.0, 1.0, 0.0])).any():
        return images
    dev = images.device
    A, c, V = (torch.as_tensor(x, dtype=torch.float32, device=dev) for x in jitter_affine(factors, order))
    mu = torch.as_tensor(mean, dtype=torch.float32, device=dev)
    sd = torch.as_tensor(std, dtype=torch.float32, device=dev)
    y = images.view(images.shape[0], 3, -1)  # [N, 3, H*W]
    m = y.mean(dim=2) * sd + mu  # [N, 3] channel means in [0, 1]
    P = A * sd[None, None, :] / sd[None, :, None]  # D^-1 A D
    q = (A @ mu + c + (V @ m[:, :, None]).squeeze(2) - mu) / sd  # [N, 3]
    ws = workspace if workspace is not None else {}
    scratch = ws.get("scratch")
    if scratch is None or scratch.shape != y.shape or scratch.device != dev:
        scratch = ws["scratch"] = torch.empty_like(y)
    torch.baddbmm(q[:, :, None], P, y, out=scratch)
    torch.clamp(scratch, (-mu / sd)[None, :, None], ((1 - mu) / sd)[None, :, None], out=y)
    return images
