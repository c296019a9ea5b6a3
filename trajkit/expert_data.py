"""Expert data: record episodes of a policy into a Traj, and read an expert given as a Traj or a file.

Shapes: ``N`` steps, ``E`` episodes. A recorded Traj has the sampler's step columns
(``obs: (N, *obs_shape)``, ``acs: (N, *ac_shape)`` in the policy's own space, ``rews: (N,)``
and the distribution parameters) and its episode columns (``terminated``, ``truncated``,
``final_obs``), so a true terminal state stays apart from a time-limit cut.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trajkit.checks import check_int
from trajkit.io import load_traj, save_traj
from trajkit.samplers import EpiSampler
from trajkit.traj import Traj

__all__ = ["as_expert_traj", "record_epis", "steps_only"]


def record_epis(
    env: Any,
    pol: torch.nn.Module,
    num_epis: int,
    *,
    seed: int = 0,
    deterministic: bool = True,
    path: str | Path | None = None,
) -> Traj:
    """``num_epis`` whole episodes of ``pol`` in ``env`` as a Traj (also written to ``path`` if given).

    ``env`` is anything :class:`~trajkit.samplers.EpiSampler` accepts. Episodes use the
    policy's mode by default (``deterministic``); env resets and action sampling are
    seeded from ``seed``. The file (if any) is :func:`trajkit.io.save_traj`'s format,
    read back exactly by :func:`as_expert_traj` or :func:`trajkit.io.load_traj`.
    """
    num_epis = check_int("num_epis", num_epis, min_value=1)
    with torch.no_grad(), EpiSampler(env, pol, num_parallel=1, seed=seed) as sampler:
        epis = sampler.sample(pol, max_epis=num_epis, deterministic=deterministic)
    traj = Traj.from_epis(epis)
    if path is not None:
        save_traj(traj, path)
    return traj


def as_expert_traj(expert: Traj | str | Path) -> Traj:
    """``expert`` as a Traj: a Traj itself, or a file written by ``save_traj``/``trajkit record``.

    Raises:
        TypeError: for anything else. ValueError: for a Traj without ``obs`` and ``acs``.
    """
    if isinstance(expert, str | Path):
        expert = load_traj(expert)
    if not isinstance(expert, Traj):
        raise TypeError(f"expert data must be a Traj or the path of a saved one, got {type(expert).__name__}")
    missing = [k for k in ("obs", "acs") if k not in expert]
    if missing:
        raise ValueError(f"expert data needs the step columns 'obs' and 'acs'; missing {missing} (has {expert.keys()})")
    return expert


def steps_only(traj: Traj, keep: tuple[str, ...] = ("obs", "acs")) -> Traj:
    """``traj`` with only the step columns ``keep`` (and all its episode columns).

    Used before training another policy on expert data: the expert's stored
    distribution parameters and hidden states (``hs``) belong to the expert, not the learner.
    """
    return Traj({k: traj[k] for k in keep}, traj.epi, traj.bounds)
