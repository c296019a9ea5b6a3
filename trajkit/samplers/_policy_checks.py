"""Checks of what a policy hands the rollout, before any env sees it.

The rollout checks every batch of ``B`` actions ``acs: (B, *ac_shape)`` and every
distribution parameter ``params[name]: (B, ...)``: a float action must be finite, a
parameter must not be NaN (infinite parameters are allowed: ``-inf`` logits mask an
action out). An error names the policy, the output, the env and its step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch


class NonFiniteActionError(ValueError):
    """A policy produced a NaN or infinite action, or NaN distribution parameters."""


def policy_ac_shape(space: gym.Space) -> tuple[int, ...]:
    """The shape of one policy action for ``space`` (``()`` for Discrete)."""
    if isinstance(space, gym.spaces.Discrete):
        return ()
    if isinstance(space, gym.spaces.MultiDiscrete | gym.spaces.Box | gym.spaces.MultiBinary):
        return tuple(space.shape)
    raise TypeError(f"unsupported action space {space}")


def _where(envs: Sequence[int], steps: Sequence[int], j: int) -> str:
    return f"env {envs[j]} at step {steps[j]} of its episode"


def _obs_hint(obs: np.ndarray, j: int) -> str:
    """A pointer to a non-finite observation row ``obs[j]`` as the likely cause, else ''."""
    row = obs[j]
    if row.dtype.kind == "f" and not np.isfinite(row).all():
        return f"; the observation it acted on is not finite either ({row!r}): the env produced it"
    return ""


def check_policy_output(
    pol_name: str,
    acs: np.ndarray,
    params: Mapping[str, np.ndarray],
    ac_shape: tuple[int, ...],
    space: gym.Space,
    envs: Sequence[int],
    steps: Sequence[int],
    obs: np.ndarray,
) -> None:
    """Raise before the envs step if the policy's batch is unusable.

    ``acs: (B, *ac_shape)``, ``params[name]: (B, ...)``, ``obs: (B, *obs_shape)``;
    row ``j`` belongs to env ``envs[j]`` at episode step ``steps[j]``. ValueError for a
    wrong action shape, :class:`NonFiniteActionError` for NaN/inf actions or NaN parameters.
    """
    if acs.shape[1:] != ac_shape:
        raise ValueError(
            f"policy {pol_name} produced actions of shape {acs.shape[1:]}; "
            f"the env's action space {space} needs {ac_shape}"
        )
    if not _maybe_bad(acs, params):
        return
    if acs.dtype.kind == "f" and not np.isfinite(acs).all():
        j = int(np.flatnonzero(~np.isfinite(acs.reshape(len(acs), -1)).all(axis=1))[0])
        raise NonFiniteActionError(
            f"policy {pol_name} produced the non-finite action {acs[j]!r} (its output 'acs') for "
            f"{_where(envs, steps, j)}; it was not sent to the env{_obs_hint(obs, j)}"
        )
    for name, v in params.items():
        if v.dtype.kind == "f" and np.isnan(v).any():
            j = int(np.flatnonzero(np.isnan(v.reshape(len(v), -1)).any(axis=1))[0])
            raise NonFiniteActionError(
                f"policy {pol_name}'s output {name!r} is NaN ({v[j]!r}) for {_where(envs, steps, j)}; "
                f"no action was sent to the env{_obs_hint(obs, j)}"
            )


def _maybe_bad(acs: np.ndarray, params: Mapping[str, np.ndarray]) -> bool:
    """A per-step fast test (one sum per array): False means every action is finite and no parameter NaN.

    True may be a false alarm (a sum that overflows, or ``+inf`` and ``-inf`` together);
    the exact test follows only then.
    """
    if acs.dtype.kind == "f" and not math.isfinite(acs.sum()):
        return True
    return any(v.dtype.kind == "f" and math.isnan(v.sum()) for v in params.values())


def explain_act_failure(
    pol: Any, obs_t: torch.Tensor, envs: Sequence[int], steps: Sequence[int], obs: np.ndarray, error: Exception,
    hs: torch.Tensor | None = None,
) -> None:
    """After ``pol.act`` raised ``error``: raise :class:`NonFiniteActionError` if NaN parameters caused it.

    Sampling from NaN parameters fails inside the policy (``torch.multinomial`` refuses
    NaN probabilities); re-running the forward pass names the output instead. Returns
    (the caller re-raises ``error``) when the parameters are fine or cannot be computed.
    ``hs``: a recurrent policy's hidden states ``(B, S)`` the failed step was taken from.
    """
    try:
        out = pol(obs_t) if hs is None else pol(obs_t, hs=hs)[0]
        params = {k: v.detach().cpu().numpy() for k, v in out.items()}
    except Exception:  # noqa: BLE001 - the original error is the one to report
        return
    for name, v in params.items():
        if v.dtype.kind == "f" and len(v) == len(envs) and np.isnan(v).any():
            j = int(np.flatnonzero(np.isnan(v.reshape(len(v), -1)).any(axis=1))[0])
            raise NonFiniteActionError(
                f"policy {type(pol).__name__}'s output {name!r} is NaN ({v[j]!r}) for {_where(envs, steps, j)}, "
                f"so no action could be drawn; no action was sent to the env{_obs_hint(obs, j)}"
            ) from error
