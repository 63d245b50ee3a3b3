"""YAML to typed dataclasses, knowing nothing of bassl's sections: read a file, parse ``key=value``, deep-merge
layers while remembering which source set each key, and build a dataclass tree that rejects unknown keys (naming
the nearest valid one), wrong types and impossible choices, each error naming the dotted key and its source."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from bassl.errors import BasslError


class ConfigError(BasslError, ValueError):
    """A configuration problem; the message names the key, where it came from and what is allowed."""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a", "b", "c"], value). The value is parsed as YAML (``1e-4``, ``[1, 2]``, ``true``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. pretrain.epochs=2)")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for part in path[:-1]:
        cur = cur.setdefault(part, {})
    cur[path[-1]] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any], origins: dict[str, str], source: str, prefix: str = "") -> None:
    """Deep-merge ``update`` into ``base``, recording for each leaf key the source that set it last."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value, origins, source, dotted + ".")
        else:
            base[key] = value
            origins[dotted] = source
            if isinstance(value, dict):
                for sub in _leaf_keys(value, dotted + "."):
                    origins[sub] = source


def dotted_leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": value}`` for every leaf of a nested dict (a config as ``to_dict`` gives it), in order."""
    return {k: v for key, value in d.items()
            for k, v in (dotted_leaves(value, f"{prefix}{key}.") if isinstance(value, dict)
                         else {f"{prefix}{key}": value}).items()}


def _leaf_keys(d: dict[str, Any], prefix: str) -> list[str]:
    """Every dotted key under ``d``, sections included (each section after the keys inside it)."""
    keys = []
    for k, v in d.items():
        if isinstance(v, dict):
            keys += _leaf_keys(v, f"{prefix}{k}.")
        keys.append(f"{prefix}{k}")
    return keys


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str, origins: dict[str, str]) -> Any:
    where = origins.get(key.split("[")[0], "defaults")  # a list item comes from where its list was set
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} (from {where}): expected a mapping of keys, got {value!r}")
        return build(tp, value, key + ".", origins)
    if origin in (typing.Union, types.UnionType):  # e.g. float | Literal["auto"]: the first alternative that fits
        errors = []
        for alternative in get_args(tp):
            try:
                return _coerce(alternative, value, key, origins)
            except ConfigError as e:
                errors.append(str(e).split(": ", 1)[-1])
        raise ConfigError(f"{key} (from {where}): {value!r} fits none of: {'; or '.join(errors)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key} (from {where}): {value!r} is not allowed; choose one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} (from {where}): expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]", origins) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} (from {where}): expected {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]", origins) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} (from {where}): expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} (from {where}): expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} (from {where}): expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} (from {where}): expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # a schema bug, not a user error


def build(cls: type, data: dict[str, Any], prefix: str, origins: dict[str, str]) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            dotted = prefix + str(key)
            close = _closest(str(key), names)
            hint = f"; did you mean {prefix}{close}?" if close else f"; valid keys here: {', '.join(sorted(names))}"
            raise ConfigError(f"unknown key {dotted} (from {origins.get(dotted, 'defaults')}){hint}")
    missing = [prefix + f.name for f in dataclasses.fields(cls) if f.name not in data]
    if missing:  # every key has its default in default.yaml; a saved config may predate a key (config_from_dict)
        raise ConfigError(f"keys {', '.join(missing)} have no value; configs/default.yaml must define every key")
    return cls(**{f.name: _coerce(hints[f.name], data[f.name], prefix + f.name, origins) for f in dataclasses.fields(cls)})


def _closest(word: str, names: typing.Iterable[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return match[0] if match else None


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for YAML/JSON, checkpoint metadata and Parquet metadata."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)
