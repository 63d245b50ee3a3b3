"""Every method end to end at the tiny preset: forward, backward into every trained part, loss goes down."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bassl.config import load_config
from bassl.loaders.sampling import msm_mask
from bassl.methods import method_info
from bassl.models import build_pretrain_model
from bassl.train.lars import build_lars
from bassl.train.objectives import PretextLoss

TERMS = {
    "instance": {"simclr"},
    "temporal": {"simclr"},
    "shotcol": {"simclr"},
    "bassl": {"ssm", "cgm", "pp", "msm"},
    "bassl_shotcol": {"shotcol", "ssm", "cgm", "pp", "msm"},
}

# Zero-init residual blocks the gradient into residual branches at step 0; these must get one anyway.
MUST_LEARN = ["encoder.conv1.weight", "encoder.layer4.0.bn2.weight", "head_nce.mlp.0.weight", "head_nce.mlp.2.bias"]
CRN_MUST_LEARN = [
    "crn.embed.proj.weight",
    "crn.embed.mask_token.weight",
    "crn.layers.1.ffn.down.weight",
    "head_msm.decoder.weight",
    "head_pp.weight",
    "head_cgm.weight",
]


@pytest.mark.parametrize("method", list(TERMS))
def test_method_trains_on_a_fixed_batch(method):
    cfg = load_config(["model_preset=tiny", f"method={method}"])
    torch.manual_seed(0)
    model = build_pretrain_model(cfg).train()
    objective = PretextLoss(cfg)
    B = 6
    images = torch.randn(B, method_info(method).images_per_sample(cfg.window.neighbor_size), 3, 32, 32)
    rng = np.random.default_rng(0)
    mask = torch.from_numpy(np.stack([msm_mask(rng, cfg.window_size, cfg.loss.msm_mask_prob) for _ in range(B)]))
    opt = build_lars(model, cfg.optim, lr=1.0)

    totals = []
    for step in range(6):
        torch.manual_seed(1)  # the same dropout draws each step
        out = objective(model, images, mask, torch.Generator().manual_seed(1))
        assert set(out) == TERMS[method] | {"total"}
        assert all(torch.isfinite(v) for v in out.values())
        opt.zero_grad()
        out["total"].backward()
        if step == 0:
            grads = {n: p.grad for n, p in model.named_parameters()}
            for name in MUST_LEARN + (CRN_MUST_LEARN if method_info(cfg.method).crn else []):
                assert grads[name] is not None and grads[name].abs().sum() > 0, name
        opt.step()
        totals.append(out["total"].item())
    assert totals[-1] < totals[0], totals


def test_wrong_layout_is_an_error_naming_the_shape():
    cfg = load_config(["model_preset=tiny", "method=bassl"])
    with pytest.raises(ValueError, match="expects 19 images per sample"):
        PretextLoss(cfg)(build_pretrain_model(cfg), torch.randn(2, 20, 3, 32, 32), None)
