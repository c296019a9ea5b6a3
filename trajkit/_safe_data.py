"""Plain data <-> what ``torch.load(..., weights_only=True)`` accepts, for checkpoints.

Numbers, strings, bools, None, tensors, dtypes, sizes and dicts/lists/tuples of them
pass through; NumPy arrays and scalars become tagged dicts of raw bytes, dtype and
shape (``weights_only`` loading refuses NumPy objects), and come back exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

_NDARRAY_TAG = "__trajkit_ndarray__"
_NPSCALAR_TAG = "__trajkit_npscalar__"
#: ``torch.save`` pickles ``b""`` as a call to ``bytes``, which ``weights_only`` loading refuses
_EMPTY_BYTES_TAG = "__trajkit_empty_bytes__"


def to_safe(x: Any, where: str) -> Any:
    """``x`` with NumPy arrays/scalars replaced by tagged dicts that ``weights_only`` loading accepts."""
    if isinstance(x, bytes) and not x:
        return {_EMPTY_BYTES_TAG: True}
    if x is None or isinstance(x, bool | int | float | str | bytes | torch.Tensor | torch.dtype | torch.Size):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":
            raise TypeError(f"{where}: NumPy array of dtype {x.dtype} cannot be saved without pickle")
        raw = np.ascontiguousarray(x).tobytes()
        return {_NDARRAY_TAG: raw or None, "dtype": x.dtype.str, "shape": list(x.shape)}
    if isinstance(x, np.generic):
        return {_NPSCALAR_TAG: to_safe(np.asarray(x), where)}
    if isinstance(x, Mapping):
        out = {k: to_safe(v, f"{where}[{k!r}]") for k, v in x.items()}
        return OrderedDict(out) if isinstance(x, OrderedDict) else out
    if isinstance(x, list | tuple):
        items = [to_safe(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return items if isinstance(x, list) else tuple(items)
    raise TypeError(
        f"{where}: cannot store a {type(x).__name__} as plain data; give it state_dict()/load_state_dict() "
        "or save with allow_pickle=True"
    )


def from_safe(x: Any) -> Any:
    """Inverse of :func:`to_safe`."""
    if isinstance(x, dict):
        if _NDARRAY_TAG in x:
            arr = np.frombuffer(x[_NDARRAY_TAG] or b"", dtype=np.dtype(x["dtype"]))
            return arr.reshape(x["shape"]).copy()
        if _EMPTY_BYTES_TAG in x:
            return b""
        if _NPSCALAR_TAG in x:
            return from_safe(x[_NPSCALAR_TAG])[()]
        out = {k: from_safe(v) for k, v in x.items()}
        return OrderedDict(out) if isinstance(x, OrderedDict) else out
    if isinstance(x, list):
        return [from_safe(v) for v in x]
    if isinstance(x, tuple):
        return tuple(from_safe(v) for v in x)
    return x
