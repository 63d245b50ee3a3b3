"""`bassl import-checkpoint`: an official-layout Lightning checkpoint -> our weights export, nothing unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from original_bassl import OriginalWrapper

from bassl.cli import main
from bassl.config import ConfigError, load_config
from bassl.methods import method_info
from bassl.models import build_encoder, build_pretrain_model
from bassl.models.official_checkpoint import CheckpointError, import_official_checkpoint, our_name
from bassl.models.weights import load_encoder, load_pretrain_model, load_weights

SENTINEL_NAME = "unpickled.txt"


class AttrDict(dict):
    """Like the original's config class: a dict subclass that plain ``weights_only`` loading rejects."""


class Trap:
    """Unpickling this with plain pickle would create a file (stands for arbitrary code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _official_ckpt(tmp_path: Path, method: str = "bassl", seed: int = 0) -> tuple[Path, dict, object]:
    cfg = load_config(["model_preset=tiny", f"method={method}"])
    torch.manual_seed(seed)
    wrapper = OriginalWrapper(cfg, build_encoder(cfg.model.encoder), with_crn=method_info(cfg.method).crn)
    state = wrapper.state_dict()
    ckpt = {
        "epoch": 9,
        "global_step": 1234,
        "pytorch-lightning_version": "1.3.8",
        "state_dict": state,
        "hyper_parameters": AttrDict(cfg=AttrDict(LOSS={"sampling_method": {"name": method}})),
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5), "trap": Trap(tmp_path / SENTINEL_NAME)}},
        "optimizer_states": [{"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.3}]}],
    }
    path = tmp_path / "model-v1.ckpt"
    torch.save(ckpt, path)
    return path, state, cfg


def test_import_round_trip_loads_every_tensor_and_runs_nothing(tmp_path):
    src, official, cfg = _official_ckpt(tmp_path)
    with pytest.raises(pickle.UnpicklingError):  # the file really does hold objects a safe load refuses
        torch.load(src, weights_only=True)

    dst = tmp_path / "out" / "bassl.pt"
    summary = import_official_checkpoint(src, dst, cfg)
    assert not (tmp_path / SENTINEL_NAME).exists(), "the checkpoint's objects were unpickled"

    doc = load_weights(dst)  # our export format, read with weights_only
    assert doc["method"] == "bassl" and doc["step"] == 1234 and doc["source"] == str(src)
    assert summary.num_tensors == len(build_pretrain_model(cfg).state_dict())
    # every official tensor arrives under its new name, bit for bit (buffers and the tied alias aside)
    dropped = {"crn.attention_mask", "crn.shot_embedding.pos_ids", "loss.head_msm.predictions.decoder.bias"}
    for key, value in official.items():
        if key not in dropped:
            part, _, rest = our_name(key).partition(".")
            assert torch.equal(doc[part][rest], value), key
    parts = ("encoder", "crn", "head_nce", "head_msm", "head_pp", "head_cgm")
    assert summary.num_tensors == sum(len(doc[p]) for p in parts)
    assert sorted(summary.skipped) == sorted(dropped)

    # extraction builds the encoder from the config stored in the file and loads it strictly
    encoder, trained = load_encoder(dst, torch.device("cpu"))
    assert trained.method == "bassl" and trained.model_preset == "tiny"
    x = torch.rand(2, 3, 64, 64)
    reference = build_encoder(cfg.model.encoder)
    reference.load_state_dict({k[len("shot_encoder."):]: v for k, v in official.items() if k.startswith("shot_encoder.")})
    torch.testing.assert_close(encoder(x), reference.eval()(x), rtol=0, atol=0)
    model, _ = load_pretrain_model(dst)  # the whole model: every part of the file, every tensor as it was
    assert {n for n, _ in model.named_children()} == set(parts)
    for part in parts:
        for k, v in getattr(model, part).state_dict().items():
            assert torch.equal(v, doc[part][k]), (part, k)

    torch.load(src, weights_only=False)  # the trap is live: a plain unpickle does run it
    assert (tmp_path / SENTINEL_NAME).exists()


def test_renaming_keeps_the_lars_groups_of_the_original(tmp_path):
    # LARS groups by literal substrings ("bn", "bias"): our names must fall in the same group as the original's.
    _, official, _ = _official_ckpt(tmp_path)
    for key in official:
        name = our_name(key)
        if name is not None:
            assert any(s in key for s in ("bn", "bias")) == any(s in name for s in ("bn", "bias")), (key, name)


def test_baseline_checkpoint_has_no_crn(tmp_path):
    src, _, cfg = _official_ckpt(tmp_path, method="shotcol")
    import_official_checkpoint(src, tmp_path / "shotcol.pt", cfg)
    with pytest.raises(CheckpointError, match="missing keys: crn.embed"):
        import_official_checkpoint(src, tmp_path / "x.pt", load_config(["model_preset=tiny", "method=bassl"]))


def test_wrong_keys_and_shapes_are_named(tmp_path):
    src, official, cfg = _official_ckpt(tmp_path)
    bad = dict(official)
    bad["loss.head_extra.weight"] = torch.zeros(2)
    bad["loss.head_pp.weight"] = torch.zeros(3, 3)
    del bad["crn.encoder.layer.1.output.dense.bias"]
    torch.save({"state_dict": bad}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as e:
        import_official_checkpoint(tmp_path / "bad.ckpt", tmp_path / "x.pt", cfg)
    msg = str(e.value)
    assert "unexpected keys" in msg and "loss.head_extra.weight" in msg
    assert "loss.head_pp.weight -> head_pp.weight: (3, 3)" in msg
    assert "missing keys: crn.layers.1.ffn.down.bias" in msg
    assert not (tmp_path / "x.pt").exists()


def test_cli_import_checkpoint(tmp_path, capsys):
    src, _, _ = _official_ckpt(tmp_path)
    dst = tmp_path / "cli.pt"
    assert main(["import-checkpoint", "--ckpt", str(src), "--out", str(dst), "model_preset=tiny", "method=bassl"]) == 0
    assert "imported" in capsys.readouterr().out and dst.is_file()
    assert main(["import-checkpoint", "--ckpt", str(src), "--out", str(dst), "model_preset=tiny", "method=instance"]) == 1
    assert "unexpected keys" in capsys.readouterr().err
    assert main(["import-checkpoint", "--ckpt", str(dst), "--out", str(tmp_path / "again.pt"), "model_preset=tiny"]) == 1
    assert "is already an encoder export of bassl's" in capsys.readouterr().err  # not "'format' is a str"


# --------------------------------------------------------------------------------------------------
# model.encoder.init=imagenet: torchvision's weights API and cache, no network
# --------------------------------------------------------------------------------------------------


def test_imagenet_init_loads_torchvisions_cached_file_and_names_it_when_missing(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    from bassl.errors import DataError
    from bassl.models.encoder import build_encoder

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # no download can happen, network or not
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    cfg = load_config(["model.encoder.arch=resnet18", "model.encoder.init=imagenet"]).model.encoder
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(DataError) as err:
        build_encoder(cfg)
    assert str(cache) in str(err.value) and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(err.value)
    torch.manual_seed(3)
    reference = resnet18(weights=None).state_dict()  # stands for the ImageNet file: torchvision's key layout
    cache.parent.mkdir(parents=True, exist_ok=True)  # torch.hub made it trying
    torch.save(reference, cache)
    encoder = build_encoder(cfg)
    assert all(torch.equal(v, reference[k]) for k, v in encoder.state_dict().items())  # every tensor, fc dropped
    assert not any(k.startswith("fc.") for k in encoder.state_dict())
    assert not torch.equal(build_encoder(cfg, initialise=False).conv1.weight, reference["conv1.weight"])
    with pytest.raises(ConfigError, match="not resnet_tiny"):
        build_encoder(load_config(["model_preset=tiny", "model.encoder.init=imagenet"]).model.encoder)


def test_official_checkpoint_at_full_size_goes_to_segment_and_extract(tmp_path, pretrain_shards):
    """ResNet-50 + CRN 768, the released checkpoints' layout and sizes: imported, then `bassl segment --model`
    (label-free) and `bassl extract` take it as it is."""
    from video_files import write_video

    cfg = load_config(["method=bassl"])  # the paper's sizes
    torch.manual_seed(0)
    wrapper = OriginalWrapper(cfg, build_encoder(cfg.model.encoder), with_crn=True)
    src = tmp_path / "model-v1.ckpt"
    torch.save({"epoch": 9, "state_dict": wrapper.state_dict()}, src)
    dst = tmp_path / "bassl.pt"
    assert main(["import-checkpoint", "--ckpt", str(src), "--out", str(dst), "method=bassl"]) == 0
    video = write_video(tmp_path / "clip.mp4", [12, 12, 12])
    assert main(["segment", str(video), "--model", str(dst), "--out", str(tmp_path / "scenes")]) == 0
    doc = json.loads((tmp_path / "scenes" / "scenes.json").read_text())
    assert doc["mode"].startswith("frozen features") and len(doc["shots"]) == 3
    assert main(["extract", "--weights", str(dst), "--out", str(tmp_path / "features"), f"data.shards={pretrain_shards}",
                 "extract.split=pretrain", "extract.batch_size=8", "augment.eval_resize=64", "augment.image_size=56"]) == 0
    from bassl.data.features import load_features

    fm = load_features(tmp_path / "features")
    assert fm.features.shape == (56, 2048) and fm.metadata["method"] == "bassl"


def test_weights_that_are_not_an_encoder_export_are_named_with_the_file_to_pass(models, tmp_path):
    """A text file, a pickled object and a segmenter each give one line naming the file and what to pass; never
    torch's advice to unpickle with weights_only=False."""
    from bassl.errors import DataError
    from bassl.models.weights import load_weights

    (tmp_path / "notes.pt").write_text("not weights")
    torch.save({"optimizer": Path("/x")}, tmp_path / "pickled.pt")  # an object weights_only refuses
    for name in ("notes.pt", "pickled.pt"):
        with pytest.raises(DataError, match=r"not a bassl model file \(torch\.load with weights_only=True") as err:
            load_weights(tmp_path / name)
        assert "set to `False`" not in str(err.value) and "safe_globals" not in str(err.value)
        assert "\n" not in str(err.value)
        assert "bassl import-checkpoint --ckpt SRC --out DST" in str(err.value)
    with pytest.raises(DataError, match=r"segmenter\.pt is a segmenter .* pass the encoder\.pt written by `bassl pretrain`"):
        load_weights(models["segmenter"])
    with pytest.raises(DataError, match=r"is a folder, not a file; pass the encoder\.pt"):
        load_weights(tmp_path)
