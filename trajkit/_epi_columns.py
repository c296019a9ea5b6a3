"""Episode dicts -> Traj columns: the checks and conversions behind ``Traj.from_epis``.

Shapes: ``T`` steps of one episode, ``N`` steps of all episodes, ``E`` episodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

#: episode-level keys of the episode dicts produced by samplers (``continued`` and
#: ``epi_key`` only by a continuing sampler: see ``EpiSampler(..., continuing=True)``)
EPI_KEYS = ("terminated", "truncated", "final_obs", "sampler_cut", "continued", "epi_key")


def to_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` as a tensor (float64 NumPy becomes float32); TypeError for object arrays."""
    if isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype == object:
        raise TypeError(f"column {name!r} has object dtype; columns must be numeric arrays")
    return torch.from_numpy(np.ascontiguousarray(arr))


def cat_column(parts: Sequence[Any], name: str) -> torch.Tensor:
    """``(N, ...)``: the ``(T, ...)`` parts stacked along steps; ValueError on differing per-step shapes."""
    arrays = [to_tensor(p, name) for p in parts]
    shapes = {tuple(a.shape[1:]) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"column {name!r} has different per-step shapes across episodes: {sorted(shapes)}")
    return torch.cat(arrays)


def first_non_finite(x: Any) -> tuple[int, float | complex] | None:
    """``(row, value)`` of the first non-finite entry of a ``(T, ...)`` array or tensor, or None.

    Integer and bool data are always finite.
    """
    t = x if isinstance(x, torch.Tensor) else to_tensor(x, "value")
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return None
    flat = t.reshape(len(t), -1)
    bad = ~torch.isfinite(flat)
    if not bool(bad.any()):
        return None
    row = int(torch.nonzero(bad.any(dim=1))[0])
    return row, flat[row][bad[row]][0].item()


def check_episode(epi: Mapping[str, Any], keys: Sequence[str], i: int) -> int:
    """Validate episode ``i`` (its columns ``keys``, lengths, finite rewards and observations); return ``T``."""
    present = sorted(k for k in epi if k not in EPI_KEYS)
    if set(present) != set(keys):
        raise ValueError(
            f"episode {i} has columns {present}, episode 0 has {sorted(keys)}; all episodes need the same columns"
        )
    t = len(epi["rews"])
    if t == 0:
        raise ValueError(f"episode {i} has no steps")
    for k in keys:
        if len(epi[k]) != t:
            raise ValueError(
                f"episode {i}: column {k!r} has {len(epi[k])} rows but 'rews' has {t}; "
                "all step columns of an episode must have the same length"
            )
    for k, what in (("rews", "reward"), ("obs", "observation")):
        bad = first_non_finite(epi[k])
        if bad is not None:
            raise ValueError(f"episode {i} has a non-finite {what} {bad[1]} at step {bad[0]}")
    if "final_obs" in epi:
        bad = first_non_finite(to_tensor(epi["final_obs"], "final_obs")[None])
        if bad is not None:
            raise ValueError(
                f"episode {i} has a non-finite final_obs {bad[1]} (the observation after its last step {t - 1})"
            )
    return t


def _epi_key(key: Any, i: int) -> torch.Tensor:
    """``(2,)`` int64: episode ``i``'s ``epi_key`` (env index, episode number); ValueError otherwise."""
    arr = np.asarray(key)
    if arr.shape != (2,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"episode {i}: epi_key must be two integers (env, episode number), got {key!r}")
    return torch.from_numpy(arr.astype(np.int64))


def columns_from_epis(
    epis: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Step columns ``(N, ...)``, episode columns ``(E, ...)`` and bounds ``(E + 1,)`` of checked episodes."""
    if len(epis) == 0:
        raise ValueError("from_epis needs at least one episode, got an empty list")
    keys = [k for k in epis[0] if k not in EPI_KEYS]
    for required in ("obs", "acs", "rews"):
        if required not in keys:
            raise ValueError(f"episode 0 has no {required!r} column; episodes need obs, acs and rews")
    lens = [check_episode(epi, keys, i) for i, epi in enumerate(epis)]
    data = {k: cat_column([epi[k] for epi in epis], k) for k in keys}
    data["rews"] = data["rews"].to(torch.float32)
    terminated = torch.tensor([bool(epi.get("terminated", False)) for epi in epis])
    truncated = torch.tensor([bool(epi.get("truncated", not epi.get("terminated", False))) for epi in epis])
    if bool((terminated & truncated).any()):
        i = int(torch.nonzero(terminated & truncated)[0])
        raise ValueError(f"episode {i} is marked both terminated and truncated")
    epi_cols = {"terminated": terminated, "truncated": truncated}
    if all("sampler_cut" in epi for epi in epis):
        epi_cols["sampler_cut"] = torch.tensor([bool(epi["sampler_cut"]) for epi in epis])
    if all("continued" in epi for epi in epis):
        epi_cols["continued"] = torch.tensor([bool(epi["continued"]) for epi in epis])
    if all("epi_key" in epi for epi in epis):
        epi_cols["epi_key"] = torch.stack([_epi_key(epi["epi_key"], i) for i, epi in enumerate(epis)])
    if all("final_obs" in epi for epi in epis):
        finals = [to_tensor(epi["final_obs"], "final_obs")[None] for epi in epis]
        epi_cols["final_obs"] = cat_column(finals, "final_obs")
    bounds = torch.zeros(len(lens) + 1, dtype=torch.int64)
    bounds[1:] = torch.cumsum(torch.tensor(lens), 0)
    return data, epi_cols, bounds
