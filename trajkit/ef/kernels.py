"""Estimator kernels over bare tensors: discounted returns, GAE and n-step returns.

These functions know nothing of :class:`~trajkit.traj.Traj`; the Traj estimators in
:mod:`trajkit.ef` are thin wrappers over them. Shape contract, the same for every
kernel (``N`` steps, ``E`` episodes):

* step tensors (``rews``, ``vs``): ``(N,)``, the steps of ``E`` episodes laid end to end;
* ``bounds``: ``(E + 1,)`` integer offsets, ``bounds[0] == 0``, strictly increasing,
  ``bounds[-1] == N``; episode ``e`` owns the steps ``bounds[e]:bounds[e + 1]``;
* episode tensors: ``terminated: (E,)`` bool, True where the episode ended in a true
  terminal state (the value after its last step is 0), False where it was cut off
  (time limit, step budget); ``final_vs: (E,)``, the value of the observation after
  each episode's last step, read only where ``terminated`` is False (so it may hold
  anything, NaN included, at terminated episodes).

Hyper-parameters are keyword-only and checked at the call: ``gamma`` and ``lam`` are
finite numbers in ``[0, 1]``, ``n`` an integer ``>= 1``. Results are on ``rews``'s
device, in ``rews``'s floating dtype (float32 for integer rewards); the sums are
computed in float64 on the CPU. ``N = 0`` (``bounds = [0]``) gives empty results.
Inputs are never modified.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from trajkit.checks import check_int, check_unit

__all__ = ["discount_cumsum", "discounted_returns", "gae", "nstep_returns", "NStepReturns"]


# ---------------------------------------------------------------------- input checks
def _check_bounds(bounds: torch.Tensor | np.ndarray, num_step: int) -> np.ndarray:
    """``bounds`` as an int64 numpy array after checking the contract against ``N = num_step``."""
    b = bounds.detach().cpu().numpy() if isinstance(bounds, torch.Tensor) else np.asarray(bounds)
    if b.ndim != 1 or len(b) < 1 or not np.issubdtype(b.dtype, np.integer):
        raise ValueError(f"bounds must be a 1-D integer tensor of shape (E + 1,), got shape {b.shape} of {b.dtype}")
    if int(b[0]) != 0 or int(b[-1]) != num_step:
        raise ValueError(f"bounds must start at 0 and end at N={num_step}, got {int(b[0])} ... {int(b[-1])}")
    if len(b) > 1 and bool((b[1:] <= b[:-1]).any()):
        e = int(np.nonzero(b[1:] <= b[:-1])[0][0])
        raise ValueError(f"bounds must be strictly increasing: episode {e} has no steps")
    return b.astype(np.int64, copy=False)


def _check_steps(name: str, x: torch.Tensor, num_step: int | None = None) -> int:
    """``N``, after checking that ``x`` is an ``(N,)`` tensor (``N = num_step`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N,), got {type(x).__name__}")
    if x.ndim != 1 or (num_step is not None and len(x) != num_step):
        want = "(N,)" if num_step is None else f"({num_step},)"
        raise ValueError(f"{name} must have shape {want} (one value per step), got {tuple(x.shape)}")
    return len(x)


def _check_epis(name: str, x: torch.Tensor, num_epi: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (E,), got {type(x).__name__}")
    if tuple(x.shape) != (num_epi,):
        raise ValueError(f"{name} must have shape ({num_epi},) (one value per episode), got {tuple(x.shape)}")


def _bootstrap(final_vs: torch.Tensor, terminated: torch.Tensor, num_epi: int) -> torch.Tensor:
    """``(E,)`` float64 CPU values after each episode's last step: 0 if terminated, else ``final_vs``."""
    _check_epis("final_vs", final_vs, num_epi)
    _check_epis("terminated", terminated, num_epi)
    fv = final_vs.detach().to("cpu", torch.float64)
    return torch.where(terminated.detach().cpu().bool(), 0.0, fv)


def _out(x: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` on ``like``'s device in its floating dtype (float32 for an integer ``like``)."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return torch.as_tensor(x).to(like.device, dtype)


# ---------------------------------------------------------------------- kernels
def _discount_cumsum(xs: np.ndarray, discount: float, b: np.ndarray) -> np.ndarray:
    """:func:`discount_cumsum` on checked float64 inputs."""
    n = len(xs)
    if n == 0:
        return xs.copy()
    import scipy.signal  # imported here: it costs about as much as torch, and sampler workers never need it

    y = scipy.signal.lfilter([1.0], [1.0, -discount], xs[::-1])
    lens = np.diff(b)[::-1]
    # reversed order: episode e starts at n - b[e + 1]; steps after its start leak in
    # discount**k * y[start - 1], k = 1, 2, ... (a table of powers, not np.power per step)
    rev_starts = (n - b[1:])[::-1]
    k = np.arange(1, n + 1) - np.repeat(rev_starts, lens)
    leak = (discount ** np.arange(int(lens.max()) + 1, dtype=np.float64))[k]
    leak *= np.repeat(np.concatenate([[0.0], y[rev_starts[1:] - 1]]), lens)
    y -= leak
    return y[::-1].copy()


def discount_cumsum(x: np.ndarray | torch.Tensor, discount: float, bounds: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-episode reverse discounted cumulative sum.

    ``y[t] = x[t] + discount * y[t + 1]`` inside each episode, with ``y = x`` at each
    episode's last step.

    Args:
        x: ``(N,)`` values.
        discount: the factor, a finite number in ``[0, 1]`` (checked: above 1 the
            whole-array filter grows like ``discount**N`` and overflows to NaN across
            episode boundaries even where every episode's own sum is finite).
        bounds: ``(E + 1,)`` episode offsets into ``x``.

    Returns:
        ``(N,)`` float64 array.

    The whole array is filtered once, backwards, with ``scipy.signal.lfilter``; what
    leaks across an episode boundary is ``discount**k * y[boundary]`` and is subtracted
    in closed form.
    """
    discount = check_unit("discount", discount)
    xs = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if xs.ndim != 1:
        raise ValueError(f"x must have shape (N,), got {xs.shape}")
    b = _check_bounds(bounds, len(xs))
    return _discount_cumsum(xs.astype(np.float64, copy=False), discount, b)


def discounted_returns(
    rews: torch.Tensor,
    final_vs: torch.Tensor,
    terminated: torch.Tensor,
    bounds: torch.Tensor,
    *,
    gamma: float,
) -> torch.Tensor:
    """``rets: (N,)``, the discounted return from each step to its episode's end.

    ``rets[t] = rews[t] + gamma * rets[t + 1]`` inside an episode; after the last step
    the value is 0 at a terminated episode and ``final_vs[e]`` at a cut-off one (pass
    ``final_vs = zeros(E)`` for plain Monte-Carlo returns).

    Args:
        rews: ``(N,)`` rewards.
        final_vs: ``(E,)`` values after each episode's last step (read where not terminated).
        terminated: ``(E,)`` bool.
        bounds: ``(E + 1,)`` episode offsets.
        gamma: discount in ``[0, 1]``.
    """
    gamma = check_unit("gamma", gamma)
    n = _check_steps("rews", rews)
    b = _check_bounds(bounds, n)
    boot = _bootstrap(final_vs, terminated, len(b) - 1)
    x = rews.detach().to("cpu", torch.float64, copy=True)
    x[torch.from_numpy(b[1:] - 1)] += gamma * boot
    return _out(_discount_cumsum(x.numpy(), gamma, b), rews)


def gae(
    rews: torch.Tensor,
    vs: torch.Tensor,
    final_vs: torch.Tensor,
    terminated: torch.Tensor,
    bounds: torch.Tensor,
    *,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """``advs: (N,)``, generalized advantage estimates GAE(gamma, lam).

    ``delta[t] = rews[t] + gamma * V(s[t + 1]) - vs[t]`` with ``V(s[t + 1]) = vs[t + 1]``
    inside an episode and, after its last step, 0 if terminated else ``final_vs[e]``;
    ``advs[t] = delta[t] + gamma * lam * advs[t + 1]`` per episode.

    Args:
        rews: ``(N,)`` rewards.
        vs: ``(N,)`` values V(s[t]).
        final_vs: ``(E,)`` values after each episode's last step (read where not terminated).
        terminated: ``(E,)`` bool.
        bounds: ``(E + 1,)`` episode offsets.
        gamma: discount in ``[0, 1]``.
        lam: GAE mixing factor in ``[0, 1]`` (1: return minus value; 0: one-step TD error).
    """
    gamma, lam = check_unit("gamma", gamma), check_unit("lam", lam)
    n = _check_steps("rews", rews)
    _check_steps("vs", vs, n)
    b = _check_bounds(bounds, n)
    boot = _bootstrap(final_vs, terminated, len(b) - 1)
    v = vs.detach().to("cpu", torch.float64)
    next_vs = torch.empty_like(v)
    next_vs[:-1] = v[1:]
    next_vs[torch.from_numpy(b[1:] - 1)] = boot
    deltas = rews.detach().to("cpu", torch.float64) + gamma * next_vs - v
    return _out(_discount_cumsum(deltas.numpy(), gamma * lam, b), rews)


class NStepReturns(NamedTuple):
    """What :func:`nstep_returns` gives, every field ``(N,)``.

    The n-step target of step ``t`` is ``rets[t] + discounts[t] * V(s[next_idx[t]])``,
    where ``s[next_idx[t]]`` is the observation of step ``next_idx[t]`` or, where
    ``reaches_end[t]``, the episode's final observation (then ``next_idx[t]`` is the
    episode's end offset ``bounds[e + 1]``).
    """

    rets: torch.Tensor
    """``sum_{k<m} gamma**k rews[t + k]``, ``m = min(n, steps to the episode's end)``."""
    discounts: torch.Tensor
    """``gamma**m``, or 0 where the window reaches a terminal state."""
    next_idx: torch.Tensor
    """int64 ``t + m``, the first step after the window."""
    reaches_end: torch.Tensor
    """bool, the window reaches the episode's end."""


def nstep_returns(
    rews: torch.Tensor,
    terminated: torch.Tensor,
    bounds: torch.Tensor,
    *,
    gamma: float,
    n: int,
) -> NStepReturns:
    """n-step discounted returns truncated at episode ends (see :class:`NStepReturns`).

    Args:
        rews: ``(N,)`` rewards.
        terminated: ``(E,)`` bool.
        bounds: ``(E + 1,)`` episode offsets.
        gamma: discount in ``[0, 1]``.
        n: window length, an integer ``>= 1``.

    ``rets`` and ``discounts`` are on ``rews``'s device in its floating dtype;
    ``next_idx`` and ``reaches_end`` are CPU tensors (indices into the steps).
    """
    gamma, n = check_unit("gamma", gamma), check_int("n", n, min_value=1)
    num = _check_steps("rews", rews)
    b = _check_bounds(bounds, num)
    _check_epis("terminated", terminated, len(b) - 1)
    bt = torch.from_numpy(b)
    lens = bt[1:] - bt[:-1]
    ends = torch.repeat_interleave(bt[1:], lens)  # exclusive end per step
    t = torch.arange(num)
    m = torch.minimum(torch.full_like(t, n), ends - t)
    csum = torch.from_numpy(_discount_cumsum(rews.detach().to("cpu", torch.float64).numpy(), gamma, b))
    after = t + m
    reaches_end = after == ends
    inside = ~reaches_end
    tail = torch.zeros(num, dtype=torch.float64)
    tail[inside] = csum[after[inside]]
    powers = gamma ** m.double()
    rets = csum - powers * tail
    term = torch.repeat_interleave(terminated.detach().cpu().bool(), lens)
    discounts = powers * (~(reaches_end & term)).double()
    return NStepReturns(_out(rets, rews), _out(discounts, rews), after, reaches_end)
