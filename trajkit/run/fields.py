"""Typed configuration fields: declaring them, reading values into them, checking them.

A config is a dataclass whose fields carry their documentation and bounds in
``metadata`` (made by :func:`hp`). Values reach a field from three places, all through
:func:`coerce`: a preset or config file (already-typed YAML/JSON values), ``--hp
KEY=VALUE`` on the command line (text, parsed by the field's type), and Python. Nothing
here imports torch, so the command line's ``--help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin


class ConfigError(ValueError):
    """Settings that cannot work: an unknown name, a value of the wrong type or out of range."""


def hp(
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A documented config field; ``low``/``high`` bound numbers (``low_open``: strictly above ``low``).

    Without ``default`` the value must come from a preset, a config file or the caller.
    """
    meta = {"doc": doc, "low": low, "high": high, "low_open": low_open}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def suggest(name: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None`` / ``Optional[X]``, else None."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


def type_name(tp: Any) -> str:
    """A short readable name of a field type, for messages and ``--help``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return f"{type_name(inner)} or none"
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) is list:
        return f"list of {type_name(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _from_text(text: str, tp: Any, where: str) -> Any:
    """A command-line string as a value of type ``tp``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if text.strip().lower() in ("none", "null") else _from_text(text, inner, where)
    if text.strip().lower() in ("none", "null") and tp is not str:
        raise ConfigError(f"{where}: none is not allowed here (expected {type_name(tp)})")
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if get_origin(tp) is list:
        (item,) = get_args(tp)
        return [_from_text(t.strip(), item, where) for t in text.strip("[]").split(",") if t.strip()]
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    return text


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the field type ``tp`` (text is parsed by the type first).

    ``int`` accepts only integers (``16.5`` and ``True`` are refused), ``float`` accepts
    ints and floats, ``none`` only where the field is optional.
    """
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of settings, got {value!r}")
        return build(tp, value, where)
    if isinstance(value, str) and tp is not str and get_origin(tp) is not Literal:
        value = _from_text(value, tp, where)
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else coerce(value, inner, where)
    if value is None:
        raise ConfigError(f"{where}: none is not allowed here (expected {type_name(tp)})")
    if get_origin(tp) is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: expected one of {type_name(tp)}, got {value!r}")
        return value
    if get_origin(tp) is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(tp)
        return [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def check_bounds(obj: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for a number outside its field's ``low``/``high`` (lists: each item)."""
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        if dataclasses.is_dataclass(value):
            check_bounds(value, f"{prefix}{f.name}.")
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            where = f"{prefix}{f.name}"
            if not math.isfinite(v):
                raise ConfigError(f"{where} must be finite, got {v}")
            low, high = meta.get("low"), meta.get("high")
            if low is not None and (v <= low if meta.get("low_open") else v < low):
                raise ConfigError(f"{where} must be {'>' if meta.get('low_open') else '>='} {low}, got {v}")
            if high is not None and v > high:
                raise ConfigError(f"{where} must be <= {high}, got {v}")


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An instance of the dataclass ``cls`` from ``values``, every value coerced to its field's type.

    Unknown names raise with a "did you mean"; missing required fields raise naming them.
    """
    types_ = field_types(cls)
    unknown = [k for k in values if k not in types_]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"{where}: unknown setting {k!r}{suggest(k, list(types_))}; known: {sorted(types_)}")
    kwargs = {k: coerce(v, types_[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing settings {missing}")
    return cls(**kwargs)
