"""Argument checks shared by estimators, losses and ``train()`` functions.

Each check raises at the call, before any work, with a message that names the argument
and the bad value. ``bool`` is refused where a number is expected (``True`` is an int in
Python, but never a meaningful batch size or discount).
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def check_int(name: str, x: object, *, min_value: int | None = None) -> int:
    """``x`` as an ``int``; TypeError for a non-integer (``16.5``, ``"3"``, ``True``), ValueError below the minimum."""
    if not _is_int(x):
        raise TypeError(f"{name} must be an integer, got {x!r} ({type(x).__name__})")
    v = int(x)  # type: ignore[call-overload]
    if min_value is not None and v < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {v}")
    return v


def check_float(
    name: str,
    x: object,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_open: bool = False,
) -> float:
    """``x`` as a finite ``float`` in ``[min_value, max_value]`` (``(min_value, ...`` with ``min_open``).

    TypeError for a non-number (``None``, a string), ValueError for NaN, infinity or a
    value out of range.
    """
    if not _is_real(x):
        raise TypeError(f"{name} must be a number, got {x!r} ({type(x).__name__})")
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if min_value is not None and (v <= min_value if min_open else v < min_value):
        raise ValueError(f"{name} must be {'>' if min_open else '>='} {min_value}, got {v}")
    if max_value is not None and v > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {v}")
    return v


def check_unit(name: str, x: object) -> float:
    """A discount or mixing factor such as ``gamma``, ``lam`` or ``tau``: a float in ``[0, 1]``."""
    return check_float(name, x, min_value=0.0, max_value=1.0)


def check_optional_float(name: str, x: object, **bounds: float | bool | None) -> float | None:
    """None, or what :func:`check_float` accepts with the same bounds."""
    return None if x is None else check_float(name, x, **bounds)  # type: ignore[arg-type]
