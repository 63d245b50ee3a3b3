"""Configuration: YAML defaults in the package, presets as diffs, ``key=value`` overrides, strict validation.

Composition order (later wins): ``configs/default.yaml`` < ``configs/method/<method>.yaml`` <
``configs/model/<model_preset>.yaml`` < the user's ``--config FILE`` < command-line ``key=value`` overrides.
The preset names themselves (``method``, ``model_preset``) are read from the same sources first, so
``bassl pretrain method=shotcol`` selects the shotcol preset.

Every section is a typed dataclass. An unknown key, a wrong type or an impossible value is a
:class:`ConfigError` naming the dotted key and the file (or ``command line``) it came from.

``typed_yaml`` turns YAML into typed dataclasses and knows nothing of bassl; ``schema`` holds bassl's sections,
each checking its own values; ``compose`` puts the layers together.
"""

from bassl.config.compose import (
    available_presets,
    config_from_dict,
    dump_config,
    load_config,
    load_saved_config,
    save_config,
    settings_overrides,
)
from bassl.config.schema import (
    AugmentConfig,
    BoundaryConfig,
    BoundaryHead,
    CompatConfig,
    Config,
    CRNConfig,
    DataConfig,
    DistributedConfig,
    EncoderConfig,
    EvalConfig,
    ExtractConfig,
    FinetuneConfig,
    HeadConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    SynthConfig,
    VideoConfig,
    WindowConfig,
)
from bassl.config.typed_yaml import ConfigError, dotted_leaves, parse_override, to_dict

__all__ = [
    "AugmentConfig", "BoundaryConfig", "BoundaryHead", "CRNConfig", "CompatConfig", "Config", "ConfigError", "DataConfig",
    "DistributedConfig", "EncoderConfig", "EvalConfig", "ExtractConfig", "FinetuneConfig", "HeadConfig", "LossConfig",
    "ModelConfig", "OptimConfig", "PretrainConfig", "SynthConfig", "VideoConfig", "WindowConfig", "available_presets",
    "dotted_leaves", "load_saved_config",
    "config_from_dict", "dump_config", "load_config", "parse_override", "save_config", "settings_overrides", "to_dict",
]
