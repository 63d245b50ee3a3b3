"""Config composition, precedence and validation."""

from __future__ import annotations

import dataclasses
import typing
from importlib import resources

import pytest
import yaml

from bassl.config import (
    Config,
    ConfigError,
    available_presets,
    config_from_dict,
    dump_config,
    load_config,
    save_config,
    settings_overrides,
    to_dict,
)
from bassl.methods import METHOD_NAMES, method_info


def _sections(cls=Config):
    yield cls
    for tp in typing.get_type_hints(cls).values():
        if dataclasses.is_dataclass(tp):
            yield from _sections(tp)


def test_every_default_lives_in_default_yaml_alone(monkeypatch):
    # The dataclasses hold the types only, so no default can drift from its commented YAML value.
    sections = list(_sections())
    assert len(sections) > 15  # every section was found
    for cls in sections:
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (cls, f.name)
    import bassl.config.compose as config_mod

    real = config_mod.read_yaml

    def without_epochs(path):
        data = real(path)
        if path.name == "default.yaml":
            del data["finetune"]["epochs"]
        return data

    monkeypatch.setattr(config_mod, "read_yaml", without_epochs)
    with pytest.raises(ConfigError, match=r"finetune\.epochs have no value; configs/default.yaml must define"):
        load_config()


def test_a_config_saved_before_a_key_existed_loads_with_its_default():
    saved = to_dict(load_config(["model_preset=tiny", "finetune.epochs=3"]))
    del saved["synth"]["jpeg_quality"]  # as if written by a bassl that had no such key
    cfg = config_from_dict(saved)
    assert cfg.synth.jpeg_quality == load_config().synth.jpeg_quality and cfg.finetune.epochs == 3


def test_paper_values_by_default():
    cfg = load_config()
    assert cfg.method == "bassl" and cfg.model.encoder.arch == "resnet50"
    assert cfg.window_size == 17 and cfg.model.crn.num_positions == 18
    assert cfg.augment.crop_scale == (0.14, 1.0) and cfg.augment.image_size == 224
    assert cfg.optim.base_lr == 0.3 and cfg.optim.weight_decay == 1e-6 and cfg.pretrain.effective_batch == 256
    assert (cfg.loss.ssm, cfg.loss.cgm, cfg.loss.pp, cfg.loss.msm, cfg.loss.simclr) == (True, True, True, True, False)
    assert cfg.finetune.effective_batch == 1024 and cfg.finetune.epochs == 20


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_preset_loads(method):
    cfg = load_config([f"method={method}"])
    assert cfg.method == method
    baseline = method in ("instance", "temporal", "shotcol")
    assert cfg.loss.simclr is baseline
    assert method_info(cfg.method).crn is (not baseline)
    assert cfg.loss.shotcol is (method == "bassl_shotcol")


@pytest.mark.parametrize("preset", ["resnet50", "small", "tiny"])
def test_model_presets(preset):
    assert preset in available_presets("model")
    cfg = load_config([f"model_preset={preset}"])
    assert cfg.model_preset == preset
    assert cfg.model.crn.hidden_size % cfg.model.crn.num_heads == 0


def test_override_precedence(tmp_path):
    # defaults < method preset < model preset < --config file < command line
    user = tmp_path / "mine.yaml"
    user.write_text("model_preset: tiny\naugment: {image_size: 48, eval_resize: 56}\npretrain: {epochs: 3}\n")
    cfg = load_config(["pretrain.epochs=5", "method=instance"], config_file=user)
    assert cfg.pretrain.epochs == 5  # command line beats the file
    assert cfg.augment.image_size == 48  # file beats the model preset (tiny says 64)
    assert cfg.model.encoder.arch == "resnet_tiny"  # preset chosen in the file applies
    assert cfg.loss.simclr  # method preset applied over defaults
    cfg = load_config(["loss.ssm=false"])  # command line beats the method preset
    assert cfg.loss.ssm is False and cfg.loss.cgm is True


def test_override_values_parse_as_yaml():
    cfg = load_config(["optim.base_lr=1e-4", "augment.crop_scale=[0.2, 0.9]", "compat.temporal_same_shot=true"])
    assert cfg.optim.base_lr == pytest.approx(1e-4)
    assert cfg.augment.crop_scale == (0.2, 0.9)
    assert cfg.compat.temporal_same_shot is True


def test_settings_file_as_overrides_loads_as_written_and_later_keys_win(tmp_path):
    # short_run.yaml read back through key=value: every leaf in the file, with its type, lands in the config
    path = tmp_path / "config.yaml"
    save_config(load_config(settings_overrides("short_run")), tmp_path)
    written = yaml.safe_load(path.read_text())
    short = yaml.safe_load(resources.files("bassl.configs").joinpath("short_run.yaml").read_text())
    for section, values in short.items():
        if isinstance(values, dict):
            for key, value in values.items():
                assert written[section][key] == value, f"{section}.{key}"
                assert type(written[section][key]) is type(value)
        else:
            assert written[section] == values
    assert load_config(settings_overrides("short_run")).optim.trust_coefficient != load_config([]).optim.trust_coefficient
    cfg = load_config([*settings_overrides("short_run"), "optim.trust_coefficient=0.05", "model_preset=small"])
    assert cfg.optim.trust_coefficient == 0.05 and cfg.model_preset == "small"


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        ("pretrain.epcohs=3", "pretrain.epcohs"),  # typo in a leaf
        ("pretrian.epochs=3", "pretrian"),  # typo in a section
        ("model.encoder.archh=resnet18", "model.encoder.archh"),
    ],
)
def test_unknown_key_is_an_error_naming_it(override, must_name):
    with pytest.raises(ConfigError) as e:
        load_config([override])
    assert must_name in str(e.value) and "command line" in str(e.value)


def test_typo_suggests_the_right_key():
    with pytest.raises(ConfigError, match="did you mean pretrain.epochs"):
        load_config(["pretrain.epcohs=3"])


def test_unknown_key_in_user_file_names_the_file(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("optim:\n  baes_lr: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(config_file=user)
    assert "optim.baes_lr" in str(e.value) and str(user) in str(e.value)


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        ("pretrain.epochs=ten", "pretrain.epochs"),
        ("pretrain.epochs=2.5", "pretrain.epochs"),
        ("loss.ssm=3", "loss.ssm"),
        ("augment.crop_scale=0.5", "augment.crop_scale"),
        ("augment.mean=[0.1, 0.2]", "augment.mean"),
        ("model.encoder.arch=vgg16", "model.encoder.arch"),
        ("method=simclr", "method"),
        ("model_preset=huge", "model_preset"),
    ],
)
def test_wrong_type_or_choice_names_the_key(override, must_name):
    with pytest.raises(ConfigError) as e:
        load_config([override])
    assert str(e.value).startswith(must_name) or f" {must_name}" in str(e.value)


@pytest.mark.parametrize(
    ("overrides", "must_name"),
    [
        (["window.neighbor_size=6"], "window.neighbor_size"),  # CRN has 18 positions: needs K = 8
        (["window.neighbor_size=1", "model.crn.num_positions=4"], "window.neighbor_size"),
        (["model.crn.num_heads=7"], "model.crn.num_heads"),
        (["augment.crop_scale=[0.9, 0.1]"], "augment.crop_scale"),
        (["augment.flip_prob=1.5"], "augment.flip_prob"),
        (["loss.temperature=0"], "loss.temperature"),
        (["method=instance", "loss.simclr=false"], "loss.simclr"),
        (["loss.ssm=false", "loss.cgm=false", "loss.pp=false", "loss.msm=false"], "loss"),
        (["pretrain.zero_stage=4"], "pretrain.zero_stage"),
        (["extract.batch_size=0"], "extract.batch_size"),
        (["video.workers=-3"], "video.workers"),
        (["synth.workers=-1"], "synth.workers"),
    ],
)
def test_impossible_values_name_the_key(overrides, must_name):
    with pytest.raises(ConfigError) as e:
        load_config(overrides)
    assert str(e.value).startswith(must_name)


def test_window_size_the_crn_can_take_when_positions_match():
    cfg = load_config(["window.neighbor_size=6", "model.crn.num_positions=14"])
    assert cfg.window_size == 13


def test_effective_batch_must_divide_by_world_size():
    with pytest.raises(ConfigError, match=r"pretrain.effective_batch: 256 is not divisible by the world size 3"):
        load_config(world_size=3)
    load_config(world_size=8)
    cfg = load_config(["pretrain.micro_batch=48"])
    with pytest.raises(ConfigError, match="pretrain.micro_batch"):
        cfg.check_world(2)  # per-rank 128 is not a multiple of 48
    load_config(["pretrain.micro_batch=32"]).check_world(2)


def test_malformed_override_and_yaml(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(["pretrain.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(config_file=bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(config_file=tmp_path / "absent.yaml")


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(["method=shotcol", "model_preset=tiny", "optim.base_lr=0.5"])
    path = save_config(cfg, tmp_path / "out")
    assert path.read_text() == dump_config(cfg)
    again = config_from_dict(yaml.safe_load(path.read_text()))
    assert again == cfg
    assert dataclasses.asdict(again) == dataclasses.asdict(cfg)


def test_a_config_saved_before_a_key_existed_reads_back_as_its_run_was():
    """Keys added later take their default, except where that is not what the old run did: fine-tuning clipped
    gradients at 1.0 (DeepSpeed's default) until finetune.gradient_clipping existed, and now clips nothing."""
    saved = to_dict(load_config(["model_preset=tiny"]))
    del saved["finetune"]["gradient_clipping"], saved["loss"]["pp_negatives"]
    old = config_from_dict(saved)
    assert old.finetune.gradient_clipping == 1.0 and old.loss.pp_negatives == load_config().loss.pp_negatives
    assert config_from_dict(to_dict(load_config())).finetune.gradient_clipping == 0.0  # saved with it: as saved


def test_compat_switches_default_to_the_paper():
    cfg = load_config()
    assert cfg.compat.temporal_same_shot is False
    assert cfg.augment.color_jitter_consistent is False
    assert cfg.augment.crop_interpolation == "bicubic"
    assert cfg.finetune.select_on == "val"
    orig = load_config(["compat.temporal_same_shot=true", "augment.color_jitter_consistent=true",
                        "augment.crop_interpolation=bilinear", "finetune.select_on=last_test"])
    assert orig.compat.temporal_same_shot and orig.augment.color_jitter_consistent


def test_overrides_stand_anywhere_and_a_wrong_command_line_gets_the_subcommand_usage(tmp_path, capsys):
    from bassl.cli import parse_args

    video = tmp_path / "take=3.mp4"  # a file whose name looks like an override is still the video
    video.write_bytes(b"")
    for argv in (["segment", "video.threshold=3", str(video), "--model", "m", "--out", "o"],
                 ["segment", str(video), "--model", "m", "video.threshold=3", "--out", "o"]):
        args = parse_args(argv)
        assert args.video == video and args.overrides == ["video.threshold=3"]
    for argv, message in ((["segment", "a.mp4", "b.mp4", "--model", "m", "--out", "o"], "takes one video file, not 2"),
                          (["segment", "--model", "m", "--out", "o", "video.threshold=3"], "give the video file"),
                          (["pretrain", "--bogus"], "unrecognized arguments: --bogus")):
        with pytest.raises(SystemExit):
            parse_args(argv)
        err = capsys.readouterr().err
        assert message in err and f"usage: bassl {argv[0]}" in err


def test_os_errors_a_user_fixes_are_one_line_and_others_keep_their_traceback():
    import errno

    from bassl.cli import is_users_to_fix

    assert is_users_to_fix(NotADirectoryError(errno.ENOTDIR, "Not a directory", "out/a_file"))
    assert is_users_to_fix(OSError(errno.ENOSPC, "No space left on device"))  # raised by write: no file named
    assert is_users_to_fix(OSError(errno.EROFS, "Read-only file system"))
    assert not is_users_to_fix(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
    assert not is_users_to_fix(OSError("a bug somewhere"))
