"""bassl's configuration composed: the packaged YAML files, presets, the user's file and ``key=value`` overrides
in that order, built into the typed sections of ``bassl.config.schema`` and checked; saving and reloading."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from bassl.config.schema import Config
from bassl.config.typed_yaml import ConfigError, build, dotted_leaves, merge, nest, parse_override, read_yaml, to_dict
from bassl.data.atomic import write_atomic
from bassl.data.storage import Store, is_remote
from bassl.methods import METHOD_NAMES


def package_yaml(*parts: str) -> Path:
    return Path(str(resources.files("bassl.configs").joinpath(*parts)))


def available_presets(kind: Literal["method", "model"]) -> list[str]:
    return sorted(p.stem for p in package_yaml(kind).glob("*.yaml"))


def settings_overrides(name: str) -> list[str]:
    """A packaged settings file (``configs/<name>.yaml``, e.g. ``short_run``) as ``key=value`` overrides, so that
    a caller (the demo, a benchmark) lists its own keys after it and they win."""
    def text(v: Any) -> str:  # what parse_override reads back as v: plain where YAML keeps it, else JSON
        return v if isinstance(v, str) and yaml.safe_load(v) == v else json.dumps(v)

    return [f"{k}={text(v)}" for k, v in dotted_leaves(read_yaml(package_yaml(f"{name}.yaml"))).items()]


def load_config(
    overrides: list[str] | tuple[str, ...] = (),
    config_file: str | Path | None = None,
    world_size: int | None = None,
) -> Config:
    """Compose, type-check and validate the configuration (see the module docstring for the order)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    default_path = package_yaml("default.yaml")
    layers.append((str(default_path), read_yaml(default_path)))
    user: tuple[str, dict[str, Any]] | None = None
    if config_file is not None:
        user = (str(config_file), read_yaml(Path(config_file)))
    cli: dict[str, Any] = {}
    cli_origins: dict[str, str] = {}
    for text in overrides:
        path, value = parse_override(text)
        merge(cli, nest(path, value), cli_origins, "command line")

    # Preset names: command line > user file > defaults.
    def pick(name: str) -> Any:
        for layer in (cli, user[1] if user else {}, layers[0][1]):
            if name in layer:
                return layer[name]
        return None

    method, model_preset = pick("method"), pick("model_preset")
    if method not in METHOD_NAMES:
        raise ConfigError(f"method: {method!r} is not a method; choose one of {', '.join(METHOD_NAMES)}")
    layers.append((f"method preset {method}", read_yaml(package_yaml("method", f"{method}.yaml"))))
    models = available_presets("model")
    if model_preset not in models:
        raise ConfigError(f"model_preset: {model_preset!r} is not a model preset; choose one of {', '.join(models)}")
    layers.append((f"model preset {model_preset}", read_yaml(package_yaml("model", f"{model_preset}.yaml"))))
    if user:
        layers.append(user)
    layers.append(("command line", cli))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source, data in layers:
        merge(merged, data, origins, source)
    cfg = build(Config, merged, "", origins)
    cfg.check(world_size)
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, directory: str | Path, name: str = "config.yaml") -> Path | str:
    """Write the resolved config next to an output, atomically (a local folder, or a store's URL: one PUT); returns
    its path (or URL)."""
    if is_remote(directory):
        store = Store(directory)
        store.write(name, dump_config(cfg).encode())
        return store.url(name)
    return write_atomic(Path(directory) / name, dump_config(cfg))


def load_saved_config(directory: str | Path, name: str = "config.yaml") -> Config:
    """The config :func:`save_config` wrote into ``directory`` (keys added to bassl since take their default)."""
    path = Path(directory) / name
    return config_from_dict(read_yaml(path), source=str(path))


# Keys added after configs were saved without them, whose default is not what those runs did: such a config reads
# back as the run was (fine-tuning clipped at 1.0, DeepSpeed's own default, until the key existed).
SAVED_BEFORE = {("finetune", "gradient_clipping"): 1.0}


def config_from_dict(data: dict[str, Any], source: str = "saved config") -> Config:
    """Rebuild a Config from a saved resolved config (e.g. the one stored in a checkpoint). Keys added to bassl
    after it was saved take their default, or what the run did when that differs (:data:`SAVED_BEFORE`)."""
    default_path = package_yaml("default.yaml")
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    merge(merged, read_yaml(default_path), origins, str(default_path))
    merge(merged, data, origins, source)
    for (section, key), then in SAVED_BEFORE.items():
        if isinstance(data.get(section), dict) and key not in data[section]:
            merged[section][key] = then
            origins[f"{section}.{key}"] = f"{source} (saved before {section}.{key} existed)"
    cfg = build(Config, merged, "", origins)
    cfg.check()
    return cfg
