"""Builders of small synthetic episodes and Trajs for the tests (no environment needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from hypothesis import strategies as st

import trajkit as tk

OBS_DIM = 3
AC_DIM = 2


def make_epis(
    lengths: Sequence[int],
    terminated: Sequence[bool],
    seed: int = 0,
    obs_dim: int = OBS_DIM,
    ac_dim: int = AC_DIM,
    gaussian_params: bool = False,
) -> list[dict]:
    """Episode dicts as a sampler returns them, with random contents.

    Each episode is either terminated or truncated (never both). With
    ``gaussian_params`` the episodes also carry ``mean``/``log_std`` columns, as a
    GaussianPol's rollouts do.
    """
    rng = np.random.default_rng(seed)
    epis = []
    for t, term in zip(lengths, terminated, strict=True):
        epi = {
            "obs": rng.normal(size=(t, obs_dim)).astype(np.float32),
            "acs": rng.normal(size=(t, ac_dim)).astype(np.float32),
            "rews": rng.normal(size=t).astype(np.float32),
            "terminated": bool(term),
            "truncated": not bool(term),
            "final_obs": rng.normal(size=obs_dim).astype(np.float32),
        }
        if gaussian_params:
            epi["mean"] = rng.normal(size=(t, ac_dim)).astype(np.float32)
            epi["log_std"] = rng.uniform(-1.0, 0.5, size=(t, ac_dim)).astype(np.float32)
        epis.append(epi)
    return epis


def make_traj(lengths: Sequence[int], terminated: Sequence[bool], seed: int = 0, **kw) -> tk.Traj:
    """``Traj.from_epis(make_epis(...))``."""
    return tk.Traj.from_epis(make_epis(lengths, terminated, seed, **kw))


def linear_vf(obs_dim: int = OBS_DIM, seed: int = 0) -> torch.nn.Module:
    """A fixed linear value function ``(B, obs_dim) -> (B,)``."""
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(obs_dim, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(1, obs_dim, generator=g))
        lin.bias.copy_(torch.randn(1, generator=g))
    return _Squeeze(lin)


class _Squeeze(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


#: hypothesis: a ragged list of (length, terminated) episode specs, lengths including 1
episode_specs = st.lists(st.tuples(st.integers(1, 9), st.booleans()), min_size=1, max_size=6)

#: hypothesis: discount-like factors in [0, 1] with the end points drawn often
unit_factors = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0, allow_nan=False))


def traj_from_specs(specs: Sequence[tuple[int, bool]], seed: int) -> tk.Traj:
    """A Traj from hypothesis episode specs."""
    return make_traj([t for t, _ in specs], [term for _, term in specs], seed)
