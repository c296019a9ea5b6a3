"""Policy evaluation: returns of whole episodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trajkit.samplers import EpiSampler


def evaluate(
    env: Any, pol: torch.nn.Module, num_epis: int = 10, seed: int = 10_000, deterministic: bool = True
) -> np.ndarray:
    """Undiscounted returns ``(num_epis,)`` of ``num_epis`` whole episodes of ``pol`` in ``env``.

    ``env`` is anything :class:`~trajkit.samplers.EpiSampler` accepts (an id, an env, a
    factory). Episodes run in this process, with the policy's mode by default
    (``deterministic``) and env resets seeded from ``seed`` (keep it apart from the
    training seeds so evaluation episodes are not training episodes).
    """
    with EpiSampler(env, pol, num_parallel=1, seed=seed) as sampler:
        epis = sampler.sample(pol, max_epis=num_epis, deterministic=deterministic)
    return np.array([float(np.sum(e["rews"])) for e in epis])
