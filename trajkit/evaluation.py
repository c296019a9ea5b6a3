"""Policy evaluation: undiscounted returns of whole episodes.

This is trajkit's one evaluator: the examples, the training loops of the run layer and
``trajkit eval`` all call :func:`evaluate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trajkit.samplers import DEFAULT_TIMEOUT, EpiSampler

#: default env seed of evaluations, far from the small seeds training runs use
EVAL_SEED = 10_000


def evaluate(
    env: Any,
    pol: torch.nn.Module,
    num_epis: int = 10,
    seed: int = EVAL_SEED,
    deterministic: bool = True,
    num_parallel: int = 1,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> np.ndarray:
    """Undiscounted returns ``(num_epis,)`` of ``num_epis`` whole episodes of ``pol`` in ``env``.

    ``env`` is anything :class:`~trajkit.samplers.EpiSampler` accepts (an id, an env, a
    factory). Episodes use the policy's mode by default (``deterministic``) and env
    resets seeded from ``seed``: keep it apart from the training seeds (the run layer
    uses ``EVAL_SEED + seed``) so evaluation episodes are not training episodes.
    ``timeout`` bounds every env reset, env step and policy forward, as in
    :class:`~trajkit.samplers.EpiSampler` (None: no limit).
    """
    if isinstance(num_epis, bool) or not isinstance(num_epis, int) or num_epis < 1:
        raise ValueError(f"num_epis must be a positive integer, got {num_epis!r}")
    with torch.no_grad(), EpiSampler(env, pol, num_parallel=num_parallel, seed=seed, timeout=timeout) as sampler:
        epis = sampler.sample(pol, max_epis=num_epis, deterministic=deterministic)
    return np.array([float(np.sum(e["rews"], dtype=np.float64)) for e in epis])
