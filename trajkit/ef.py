"""Estimators: pure functions ``Traj -> Traj``.

Every function here returns a new :class:`~trajkit.traj.Traj` that shares the columns
it did not touch; the input is never modified, so re-running a cell gives the same
answer. None of them loops over steps in Python: discounted sums over ragged episodes
are one vectorized linear filter (:func:`discount_cumsum`).

Termination versus truncation: an episode that ended in a true terminal state
(``traj.epi_col("terminated")``) has value 0 after its last step; an episode that was
cut off (time limit, or the sampler's ``max_steps``) bootstraps from
``V(final_obs)``, stored by :func:`compute_vs` as the episode column ``final_vs``.

The module only needs ``torch``, ``numpy`` and ``scipy`` and can be used without the
rest of trajkit: build a ``Traj`` from tensors and call the functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from trajkit.traj import MissingColumnError, Traj

__all__ = [
    "PRODUCERS",
    "require",
    "discount_cumsum",
    "compute_vs",
    "compute_rets",
    "compute_advs",
    "centerize_advs",
    "compute_h_masks",
    "add_next_obs",
    "compute_nstep_rets",
    "compute_pris",
]


#: which estimator adds which column (what to run when it is missing)
PRODUCERS: dict[str, str] = {
    "vs": "ef.compute_vs(traj, vf)",
    "final_vs": "ef.compute_vs(traj, vf)",
    "rets": "ef.compute_rets(traj, gamma)",
    "advs": "ef.compute_advs(traj, gamma, lam)",
    "h_masks": "ef.compute_h_masks(traj)",
    "next_obs": "ef.add_next_obs(traj)",
    "terminals": "ef.add_next_obs(traj)",
    "nstep_rets": "ef.compute_nstep_rets(traj, gamma, n)",
    "nstep_next_obs": "ef.compute_nstep_rets(traj, gamma, n)",
    "nstep_discounts": "ef.compute_nstep_rets(traj, gamma, n)",
    "pris": "ef.compute_pris(traj, qf, targ_qf, targ_pol, gamma)",
}

#: episode columns (``(E, ...)``) by name; every other name is a step column
EPI_COLUMNS = frozenset({"terminated", "truncated", "final_obs", "sampler_cut", "final_vs"})

_SAMPLER_HINT = "build the Traj with Traj.from_epis from sampler episodes, which record it"


def _hint(name: str) -> str:
    if name in PRODUCERS:
        return f"run {PRODUCERS[name]} first"
    if name in EPI_COLUMNS:
        return _SAMPLER_HINT
    return ""


def require(traj: Traj, *names: str) -> None:
    """Raise :class:`~trajkit.traj.MissingColumnError` for the first of ``names`` the Traj lacks.

    Names in :data:`EPI_COLUMNS` are looked up among the episode columns, all others
    among the step columns. The error says what to run to add the column, from
    :data:`PRODUCERS` (e.g. ``run ef.compute_vs(traj, vf) first``).
    """
    for name in names:
        where = "episode" if name in EPI_COLUMNS else "step"
        cols = traj.epi if where == "episode" else traj.data
        if name not in cols:
            raise MissingColumnError(name, list(cols), where=where, hint=_hint(name))


def discount_cumsum(x: np.ndarray | torch.Tensor, discount: float, bounds: torch.Tensor) -> np.ndarray:
    """Per-episode reverse discounted cumulative sum.

    ``y[t] = x[t] + discount * y[t + 1]`` inside each episode, with ``y = x`` at each
    episode's last step.

    Args:
        x: ``(N,)`` values.
        discount: the factor, in ``[0, 1]``.
        bounds: ``(E + 1,)`` episode offsets into ``x``.

    Returns:
        ``(N,)`` float64 array.

    The whole array is filtered once, backwards, with ``scipy.signal.lfilter``; what
    leaks across an episode boundary is ``discount**k * y[boundary]`` and is subtracted
    in closed form.
    """
    xs = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    xs = xs.astype(np.float64, copy=False)
    n = len(xs)
    if n == 0:
        return xs.copy()
    rev = xs[::-1]
    import scipy.signal  # imported here: it costs about as much as torch, and sampler workers never need it

    y = scipy.signal.lfilter([1.0], [1.0, -discount], rev)
    b = bounds.cpu().numpy()
    lens = np.diff(b)[::-1]
    # reversed order: episode e starts at n - b[e + 1]; steps after its start leak in
    # discount**k * y[start - 1], k = 1, 2, ... (a table of powers, not np.power per step)
    rev_starts = (n - b[1:])[::-1]
    seg_start = np.repeat(rev_starts, lens)
    k = np.arange(1, n + 1) - seg_start
    powers = discount ** np.arange(int(lens.max()) + 1, dtype=np.float64)
    leak = powers[k]
    leak *= np.repeat(np.concatenate([[0.0], y[rev_starts[1:] - 1]]), lens)
    y -= leak
    return y[::-1].copy()


def _module_device(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _final_obs_needed(traj: Traj) -> torch.Tensor:
    trunc = traj.epi_col("truncated")
    if bool(trunc.any()) and "final_obs" not in traj.epi:
        raise MissingColumnError("final_obs", list(traj.epi), where="episode")
    return trunc


def compute_vs(traj: Traj, vf: Callable[[torch.Tensor], torch.Tensor], chunk_size: int = 65536) -> Traj:
    """Add ``vs: (N,)`` = V(obs) and the episode column ``final_vs: (E,)``.

    ``final_vs`` is V(final_obs) for truncated episodes and 0 for terminated ones. Both
    come from one pass of ``vf`` without gradients: the observations are fed in chunks
    of ``chunk_size`` rows (bounded memory, cache-friendly), and the final observations
    of the truncated episodes ride along with the last chunk.

    Args:
        traj: needs ``obs``; ``final_obs`` if any episode is truncated.
        vf: maps ``(B, *obs_shape)`` observations to ``(B,)`` values.
    """
    obs = traj["obs"]
    trunc = _final_obs_needed(traj)
    device = _module_device(vf) if isinstance(vf, torch.nn.Module) else obs.device
    extra = traj.epi_col("final_obs")[trunc] if bool(trunc.any()) else obs[:0]
    with torch.no_grad():
        chunks = list(obs.split(chunk_size)) if len(obs) > 0 else [obs]
        chunks[-1] = torch.cat([chunks[-1], extra])
        out = torch.cat([vf(c.to(device)).reshape(-1) for c in chunks]).to(obs.device, torch.float32)
    n = traj.num_step
    final_vs = torch.zeros(traj.num_epi, device=obs.device)
    final_vs[trunc.to(obs.device)] = out[n:]
    return traj.with_columns(vs=out[:n]).with_epi_columns(final_vs=final_vs)


def _final_vs(traj: Traj, bootstrap: bool) -> torch.Tensor:
    """``(E,)`` value after each episode's last step: 0 if terminated, V(final_obs) if cut."""
    trunc = traj.epi_col("truncated")
    if not bootstrap or not bool(trunc.any()):
        return torch.zeros(traj.num_epi, device=traj.device)
    if "final_vs" not in traj.epi:
        raise MissingColumnError("final_vs", list(traj.epi), where="episode")
    return torch.where(trunc.to(traj.device), traj.epi_col("final_vs"), 0.0)


def compute_rets(traj: Traj, gamma: float, bootstrap: bool = True) -> Traj:
    """Add ``rets: (N,)``, the discounted return from each step to the episode's end.

    At a truncated episode the return bootstraps from ``final_vs`` (run
    :func:`compute_vs` first); at a terminated one it ends at 0. ``bootstrap=False``
    treats cut-offs as ending at 0 too (plain Monte-Carlo returns).
    """
    rews = traj["rews"]
    x = rews.detach().to("cpu", torch.float64, copy=True)  # never write into the Traj
    x[traj.last_idx().cpu()] += gamma * _final_vs(traj, bootstrap).cpu().double()
    rets = discount_cumsum(x, gamma, traj.bounds)
    return traj.with_columns(rets=torch.as_tensor(rets, dtype=torch.float32).to(rews.device))


def compute_advs(traj: Traj, gamma: float, lam: float) -> Traj:
    """Add ``advs: (N,)``, generalized advantage estimates (GAE(gamma, lam)).

    ``delta[t] = r[t] + gamma * V(s[t+1]) - V(s[t])`` with ``V(s[T]) = final_vs`` (0 at a
    terminal state), and ``advs = discount_cumsum(delta, gamma * lam)`` per episode.
    Needs ``vs`` and ``final_vs`` from :func:`compute_vs`.
    """
    vs = traj["vs"].detach().cpu().double()
    rews = traj["rews"].detach().cpu().double()
    next_vs = torch.empty_like(vs)
    next_vs[:-1] = vs[1:]
    next_vs[traj.last_idx().cpu()] = _final_vs(traj, True).cpu().double()
    deltas = rews + gamma * next_vs - vs
    advs = discount_cumsum(deltas, gamma * lam, traj.bounds)
    return traj.with_columns(advs=torch.as_tensor(advs, dtype=torch.float32).to(traj["rews"].device))


def centerize_advs(traj: Traj, eps: float = 1e-8) -> Traj:
    """Replace ``advs`` by ``(advs - mean) / (std + eps)`` over the whole Traj."""
    advs = traj["advs"]
    std = advs.std() if advs.numel() > 1 else advs.new_tensor(0.0)
    return traj.with_columns(advs=(advs - advs.mean()) / (std + eps))


def compute_h_masks(traj: Traj) -> Traj:
    """Add ``h_masks: (N,)``: 1.0 at each episode's first step (reset a recurrent state), else 0.0."""
    h_masks = torch.zeros(traj.num_step, device=traj.device)
    h_masks[traj.first_idx()] = 1.0
    return traj.with_columns(h_masks=h_masks)


def add_next_obs(traj: Traj) -> Traj:
    """Add ``next_obs: (N, *obs_shape)`` and ``terminals: (N,)``.

    ``next_obs[t] = obs[t + 1]`` inside an episode; at an episode's last step it is the
    real final observation (``final_obs``), never the next episode's first one.
    ``terminals`` is 1.0 only at the last step of a terminated episode, so a Bellman
    target ``r + gamma * (1 - terminals) * V(next_obs)`` bootstraps at cut-offs.
    """
    obs = traj["obs"]
    final_obs = traj.epi_col("final_obs")
    next_obs = torch.empty_like(obs)
    next_obs[:-1] = obs[1:]
    last = traj.last_idx()
    next_obs[last] = final_obs.to(obs.dtype)
    terminals = torch.zeros(traj.num_step, device=obs.device)
    terminals[last] = traj.epi_col("terminated").to(obs.device, torch.float32)
    return traj.with_columns(next_obs=next_obs, terminals=terminals)


def compute_nstep_rets(traj: Traj, gamma: float, n: int) -> Traj:
    """Add n-step targets for off-policy learning.

    Adds ``nstep_rets: (N,)`` = ``sum_{k<m} gamma**k r[t+k]`` with ``m = min(n, steps to
    the episode's end)``, ``nstep_next_obs: (N, *obs_shape)`` the observation after those
    ``m`` steps (``final_obs`` when the window reaches the end), and
    ``nstep_discounts: (N,)`` = ``gamma**m``, or 0 when the window reaches a terminal
    state. The target is ``nstep_rets + nstep_discounts * V(nstep_next_obs)``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    obs = traj["obs"]
    dev = obs.device
    rews = traj["rews"].detach().cpu().double()
    N = traj.num_step
    ends = torch.repeat_interleave(traj.bounds[1:], traj.epi_lens)  # exclusive end per step
    t = torch.arange(N)
    m = torch.minimum(torch.full_like(t, n), ends - t)
    csum = discount_cumsum(rews, gamma, traj.bounds)  # full return to the episode end
    after = t + m  # first step after the window (== end when it reaches the end)
    reaches_end = after == ends
    tail = torch.zeros(N, dtype=torch.float64)
    inside = ~reaches_end
    tail[inside] = torch.as_tensor(csum)[after[inside]]
    nstep = torch.as_tensor(csum) - (gamma ** m.double()) * tail
    final_obs = traj.epi_col("final_obs")
    epi_ids = traj.epi_ids().cpu()
    nxt = torch.empty_like(obs)
    nxt[inside.to(dev)] = obs[after[inside].to(dev)]
    nxt[reaches_end.to(dev)] = final_obs[epi_ids[reaches_end].to(final_obs.device)].to(dev, obs.dtype)
    term = traj.epi_col("terminated").cpu()[epi_ids]
    discounts = (gamma ** m.double()) * (~(reaches_end & term)).double()
    return traj.with_columns(
        nstep_rets=nstep.to(dev, torch.float32),
        nstep_next_obs=nxt,
        nstep_discounts=discounts.to(dev, torch.float32),
    )


def compute_pris(
    traj: Traj,
    qf: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    targ_qf: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    targ_pol: Callable[[torch.Tensor], torch.Tensor],
    gamma: float,
    eps: float = 1e-6,
) -> Traj:
    """Add ``pris: (N,)``, TD-error priorities ``|r + gamma (1 - terminal) Q'(s', pi'(s')) - Q(s, a)| + eps``.

    Args:
        qf, targ_qf: map ``(B, *obs_shape), (B, *ac_shape)`` to ``(B,)`` Q-values.
        targ_pol: maps ``(B, *obs_shape)`` observations to ``(B, *ac_shape)`` actions
            (for example ``lambda obs: targ_pol.pd.mode(targ_pol(obs))``).
    Needs ``next_obs`` and ``terminals`` from :func:`add_next_obs`.
    """
    with torch.no_grad():
        obs, acs = traj["obs"], traj["acs"]
        next_obs, terminals = traj["next_obs"], traj["terminals"]
        targ = traj["rews"] + gamma * (1.0 - terminals) * targ_qf(next_obs, targ_pol(next_obs)).reshape(-1)
        pris = (targ - qf(obs, acs).reshape(-1)).abs() + eps
    return traj.with_columns(pris=pris)
