"""Tuned settings as data: the preset files, and configs resolved from them.

Each algorithm has one YAML file in ``trajkit/run/presets/`` (as rl-zoo's
``hyperparams/*.yml``): a ``default`` block holding every setting, an ``envs`` block whose
entries override some of them for one env, and a ``search`` block, the space
``trajkit tune`` explores. The command line, the examples and the benchmarks all resolve
their configs here, so a setting has one source.

Names in overrides (``--hp KEY=VALUE``, :func:`resolve`) are the config's field names,
with the ``train`` fields reachable directly (``epoch``) or dotted (``train.epoch``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from trajkit.run.config import RunSettings, algo_configs
from trajkit.run.fields import ConfigError, build, check_bounds, coerce, field_types, suggest

#: algorithm name -> its config class
ALGOS: dict[str, type[RunSettings]] = algo_configs()


def config_class(algo: str) -> type[RunSettings]:
    """The config class of ``algo``; an unknown name lists the known ones."""
    if algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}{suggest(algo, list(ALGOS))}; available: {sorted(ALGOS)}")
    return ALGOS[algo]


@cache
def _preset_file(algo: str) -> dict[str, Any]:
    text = resources.files("trajkit.run").joinpath("presets", f"{algo}.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("default"), dict):
        raise ConfigError(f"preset file {algo}.yaml has no 'default' block")
    return data


def preset_envs(algo: str) -> list[str]:
    """The envs ``algo`` has a tuned block for."""
    config_class(algo)
    return sorted(_preset_file(algo).get("envs") or {})


def search_space(algo: str) -> dict[str, dict[str, Any]]:
    """``trajkit tune``'s search space of ``algo``: setting name -> distribution spec."""
    config_class(algo)
    return copy.deepcopy(dict(_preset_file(algo).get("search") or {}))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def preset_values(algo: str, env: str) -> dict[str, Any]:
    """The preset of ``algo`` for ``env`` as nested plain values (``default`` with the env's block applied)."""
    config_class(algo)
    data = _preset_file(algo)
    return copy.deepcopy(_merge(data["default"], (data.get("envs") or {}).get(env, {})))


def _locate(cls: type[RunSettings], key: str) -> tuple[str, ...]:
    """The path of setting ``key`` (``lr`` -> ``("lr",)``, ``epoch`` -> ``("train", "epoch")``)."""
    top = field_types(cls)
    train_types = field_types(top["train"])
    parts = tuple(key.split("."))
    if len(parts) == 1 and parts[0] in top and parts[0] != "train":
        return parts
    if len(parts) == 1 and parts[0] in train_types:
        return ("train", parts[0])
    if len(parts) == 2 and parts[0] == "train" and parts[1] in train_types:
        return parts
    known = [k for k in top if k != "train"] + list(train_types)
    raise ConfigError(f"unknown setting {key!r} for {cls.algo}{suggest(parts[-1], known)}")


def setting_type(cls: type[RunSettings], key: str) -> Any:
    """The field type of setting ``key`` of ``cls`` (as :func:`apply_overrides` names it)."""
    path = _locate(cls, key)
    types_ = field_types(cls)
    return types_[path[0]] if len(path) == 1 else field_types(types_["train"])[path[1]]


def apply_overrides(values: Mapping[str, Any], cls: type[RunSettings], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (nested) with ``overrides`` (flat or dotted names; text or typed values) applied."""
    out = _merge(values, {})
    out["train"] = dict(out.get("train", {}))
    for key, value in overrides.items():
        path = _locate(cls, key)
        value = coerce(value, setting_type(cls, key), key)
        if len(path) == 1:
            out[path[0]] = value
        else:
            out["train"][path[1]] = value
    return out


def from_values(algo: str, values: Mapping[str, Any]) -> RunSettings:
    """A checked config of ``algo`` from nested plain values (a preset, a config file)."""
    cls = config_class(algo)
    values = {k: v for k, v in values.items() if k != "algo"}
    cfg = build(cls, values, algo)
    check_bounds(cfg)
    cfg.check()
    return cfg


def _checked(
    cls: type[RunSettings], values: dict[str, Any], overrides: Mapping[str, Any] | None, run: Mapping[str, Any]
) -> RunSettings:
    """``values`` with the ``run`` settings (None: keep) and then ``overrides`` applied, as a checked config."""
    values.update({k: v for k, v in run.items() if v is not None})
    return from_values(cls.algo, apply_overrides(values, cls, overrides or {}))


def resolve(algo: str, env: str, overrides: Mapping[str, Any] | None = None, **run: Any) -> RunSettings:
    """The config of ``algo`` on ``env``: its preset, then ``run`` settings, then ``overrides``.

    ``run`` takes the shared run settings by name (``steps``, ``seed``, ``num_parallel``,
    ...; None leaves the preset's or the default value); ``overrides`` takes any
    setting, as ``--hp`` does.
    """
    cls = config_class(algo)
    values = preset_values(algo, env)
    values["env"] = env
    return _checked(cls, values, overrides, run)


def load_config_file(path: str | Path, overrides: Mapping[str, Any] | None = None, **run: Any) -> RunSettings:
    """A config from a file written by ``trajkit config``, ``trajkit tune`` or a run (``config.json``).

    ``run`` and ``overrides`` are applied on top, as in :func:`resolve`; the file must
    name its ``algo`` and hold every setting (nothing is filled in from presets, so a run
    repeats exactly).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such file" + (" (it is a directory)" if p.is_dir() else ""))
    try:
        values = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not a YAML/JSON config file ({e})") from None
    if not isinstance(values, dict) or not isinstance(values.get("algo"), str):
        raise ConfigError(f"{p}: a config file is a mapping with an 'algo' entry (write one with 'trajkit config')")
    cls = config_class(values["algo"])
    return _checked(cls, {k: v for k, v in values.items() if k != "algo"}, overrides, run)


def to_values(cfg: RunSettings) -> dict[str, Any]:
    """``cfg`` as nested plain values, ``algo`` first (what ``config.json`` and ``trajkit config`` write)."""
    return {"algo": cfg.algo, **dataclasses.asdict(cfg)}


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["lr=1e-3", "hidden=32,32"]`` -> ``{"lr": "1e-3", "hidden": "32,32"}`` (typed later, by field)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hp expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
