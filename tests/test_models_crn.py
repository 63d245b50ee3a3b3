"""Shot encoder, CRN and heads: names, shapes, init, and numerical equality with the original's HF modules."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision
from original_bassl import OriginalCRN, bert_config
from transformers.models.bert.modeling_bert import BertEncoder, BertOnlyMLMHead

from bassl.config import load_config
from bassl.models import ContextualRelationNetwork, MaskedShotHead, build_encoder, build_pretrain_model
from bassl.models.official_checkpoint import convert_state_dict


@pytest.fixture(scope="module")
def cfg():
    return load_config(["model_preset=tiny", "method=bassl"])


def _map_layers(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF BertEncoder names -> our CRN layer names, via the checkpoint importer's rules."""
    from bassl.models.official_checkpoint import our_name

    return {our_name("crn.encoder." + k).removeprefix("crn.layers."): v for k, v in hf_state.items()}


def test_resnet50_keeps_torchvision_names_without_fc():
    ours = build_encoder(load_config([]).model.encoder)
    ref = torchvision.models.resnet50()
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_shapes
    assert ours.feature_dim == 2048
    # zero-init residual: the last BN of every bottleneck starts at 0, the others at 1
    assert all(torch.all(b.bn3.weight == 0) for layer in (ours.layer1, ours.layer4) for b in layer)
    assert torch.all(ours.layer1[0].downsample[1].weight == 1) and torch.all(ours.bn1.weight == 1)


@pytest.mark.parametrize("arch,dim", [("resnet_tiny", 128), ("resnet18", 512)])
def test_small_encoders_output_their_feature_dim(cfg, arch, dim):
    enc_cfg = dataclasses.replace(cfg.model.encoder, arch=arch)
    enc = build_encoder(enc_cfg).eval()
    assert enc.feature_dim == dim
    assert enc(torch.randn(2, 3, 64, 64)).shape == (2, dim)
    assert "layer4.0.downsample.1.weight" in enc.state_dict()
    assert all(torch.all(b.bn2.weight == 0) for b in enc.layer2)


def test_bert_layers_equal_hf_bert_encoder(cfg):
    torch.manual_seed(0)
    hf = BertEncoder(bert_config(cfg, 128)).eval()
    ours = ContextualRelationNetwork(128, cfg.model.crn).eval()
    ours.layers.load_state_dict(_map_layers(hf.state_dict()), strict=True)
    x = torch.randn(3, 18, cfg.model.crn.hidden_size)
    ref = hf(x).last_hidden_state
    h = x
    for layer in ours.layers:
        h = layer(h)
    torch.testing.assert_close(h, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_full_crn_equals_original_construction(cfg, masked):
    torch.manual_seed(1)
    orig = OriginalCRN(cfg, 128).eval()
    with torch.no_grad():  # the original never trains row 0 of the mask table; make row 1 non-trivial
        orig.shot_embedding.mask_embedding.weight[1].normal_()
    model = build_pretrain_model(cfg)
    official = {f"crn.{k}": v for k, v in orig.state_dict().items()}
    expected = {k: v for k, v in model.state_dict().items() if k.startswith("crn.")}
    model.crn.load_state_dict({k.removeprefix("crn."): v for k, v in convert_state_dict(official, expected).items()})
    crn = model.crn.eval()
    x = torch.randn(4, 17, 128)
    mask = torch.zeros(4, 17, dtype=torch.bool)
    mask[:, [2, 8]] = True
    ref_states, ref_pooled = orig(x, mask if masked else None)
    states, pooled = crn(x, mask if masked else None)
    torch.testing.assert_close(states, ref_states[:, 1:], atol=1e-5, rtol=1e-5)  # ours excludes CLS
    torch.testing.assert_close(pooled, ref_pooled, atol=1e-5, rtol=1e-5)
    assert torch.equal(pooled, states[:, 8])  # centre pooling = shot position 8


def test_masked_shots_do_not_reach_the_crn(cfg):
    crn = ContextualRelationNetwork(128, cfg.model.crn).eval()
    x = torch.randn(2, 17, 128)
    mask = torch.zeros(2, 17, dtype=torch.bool)
    mask[:, 5] = True
    y = x.clone()
    y[:, 5] = 100.0  # a masked shot's features are replaced, CLS (the mean) included
    torch.testing.assert_close(crn(x, mask)[0], crn(y, mask)[0])
    assert not torch.allclose(crn(x)[0], crn(y)[0])


@pytest.mark.parametrize("pooling", ["cls", "avg", "max"])
def test_other_poolings(cfg, pooling):
    c = type(cfg.model.crn)(**{**vars(cfg.model.crn), "pooling": pooling})
    crn = ContextualRelationNetwork(128, c).eval()
    states, pooled = crn(torch.randn(2, 17, 128))
    assert states.shape == (2, 17, c.hidden_size) and pooled.shape == (2, c.hidden_size)
    if pooling == "avg":
        torch.testing.assert_close(pooled, states.mean(1))
    if pooling == "max":
        torch.testing.assert_close(pooled, states.max(1).values)


def test_msm_head_equals_hf_mlm_head(cfg):
    torch.manual_seed(2)
    hf = BertOnlyMLMHead(bert_config(cfg, 128)).eval()
    hf.predictions.decoder.bias = hf.predictions.bias  # tied, as in transformers 4.9.1
    with torch.no_grad():
        hf.predictions.bias.normal_()
    ours = MaskedShotHead(cfg.model.crn.hidden_size, 128)
    sd = hf.state_dict()
    ours.load_state_dict({
        "transform.weight": sd["predictions.transform.dense.weight"],
        "transform.bias": sd["predictions.transform.dense.bias"],
        "norm.weight": sd["predictions.transform.LayerNorm.weight"],
        "norm.bias": sd["predictions.transform.LayerNorm.bias"],
        "decoder.weight": sd["predictions.decoder.weight"],
        "bias": sd["predictions.bias"],
    })
    h = torch.randn(5, cfg.model.crn.hidden_size)
    torch.testing.assert_close(ours(h), hf(h), atol=1e-5, rtol=1e-5)
    assert torch.all(MaskedShotHead(8, 4).bias == 0)


def test_model_holds_what_the_method_trains():
    bassl = build_pretrain_model(load_config(["model_preset=tiny", "method=bassl"]))
    assert bassl.crn is not None and bassl.head_msm is not None and bassl.head_cgm.in_features == 128
    assert bassl.head_nce.mlp[0].out_features == 128  # nce_hidden 0 = the encoder's dim
    no_pp = build_pretrain_model(load_config(["model_preset=tiny", "method=bassl", "loss.pp=false"]))
    assert no_pp.head_pp is None
    for method in ("instance", "temporal", "shotcol"):
        m = build_pretrain_model(load_config(["model_preset=tiny", f"method={method}"]))
        assert m.crn is None and m.head_msm is None and m.head_pp is None and m.head_cgm is None
        emb = m.head_nce(m.encode(torch.randn(2, 2, 3, 32, 32)))
        assert emb.shape == (2, 2, 32)
        torch.testing.assert_close(emb.norm(dim=-1), torch.ones(2, 2))
