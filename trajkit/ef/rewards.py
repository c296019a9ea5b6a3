"""Reward scaling as a Traj estimator: :func:`scale_rews`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trajkit.ef.columns import require
from trajkit.traj import Traj

__all__ = ["scale_rews"]


def scale_rews(traj: Traj, scaler: Callable[[torch.Tensor], torch.Tensor]) -> Traj:
    """Replace ``rews: (N,)`` by ``scaler(rews)``, keeping the originals as ``raw_rews: (N,)``.

    ``scaler`` maps rewards to rewards of the same shape, typically a
    :class:`~trajkit.RewScaler` after ``scaler.update(traj)``. Run it before
    :func:`compute_rets` and :func:`compute_advs`, so returns, advantages and value
    targets are in the scaled units. A Traj that already has ``raw_rews`` is refused
    (ValueError): scaling twice would divide twice. Pure: the input Traj is unchanged.
    """
    require(traj, "rews")
    if "raw_rews" in traj:
        raise ValueError("scale_rews: the Traj's rewards are already scaled (it has raw_rews); scale the raw Traj once")
    rews = traj["rews"]
    with torch.no_grad():
        scaled = scaler(rews)
    if not isinstance(scaled, torch.Tensor) or scaled.shape != rews.shape:
        got = tuple(scaled.shape) if isinstance(scaled, torch.Tensor) else type(scaled).__name__
        raise ValueError(f"scale_rews: the scaler must return a tensor of the rewards' shape {tuple(rews.shape)}, "
                         f"got {got}")
    return traj.with_columns(rews=scaled.to(rews.dtype), raw_rews=rews)
