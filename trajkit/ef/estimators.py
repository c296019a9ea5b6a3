"""The Traj layer of :mod:`trajkit.ef`: pure functions ``Traj -> Traj``.

Each function checks its columns with :func:`~trajkit.ef.require` and its
hyper-parameters with :mod:`trajkit.checks`, then calls a kernel of
:mod:`trajkit.ef.kernels` (or a value/Q function) and returns a new Traj that shares
the columns it did not touch. An empty Traj (``bounds = [0]``) gives empty columns,
without calling any model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trajkit.checks import check_float, check_int, check_unit
from trajkit.devices import module_device
from trajkit.ef.columns import require
from trajkit.ef.kernels import discounted_returns, gae, nstep_returns
from trajkit.ef.recurrent import recurrent_vs
from trajkit.traj import Traj

__all__ = [
    "compute_vs",
    "compute_rets",
    "compute_advs",
    "centerize_advs",
    "compute_h_masks",
    "add_next_obs",
    "compute_nstep_rets",
    "compute_pris",
]


def _cut(traj: Traj) -> torch.Tensor:
    """``(E,)`` bool: the episode was cut off (not terminated), so it bootstraps."""
    require(traj, "terminated")
    return ~traj.epi_col("terminated").bool()


def _values(out: torch.Tensor, num: int, what: str, needs: str) -> torch.Tensor:
    """``out`` as ``(num,)`` values; ValueError unless it is ``(num,)`` or ``(num, 1)``.

    A scalar is accepted for one input (``net(x).squeeze()`` of a one-row batch).
    """
    ok = ((num,), (num, 1), ()) if num == 1 else ((num,), (num, 1))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) not in ok:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{what} returned values of shape {got} for {num} inputs; {needs} needs ({num},) or ({num}, 1)"
        )
    return out.reshape(num)


def _final_vs(traj: Traj, bootstrap: bool) -> torch.Tensor:
    """``(E,)`` values after each episode's last step (read by the kernels only at cut-offs)."""
    if not bootstrap or not bool(_cut(traj).any()):
        return torch.zeros(traj.num_epi)
    require(traj, "final_vs")
    return traj.epi_col("final_vs")


def compute_vs(traj: Traj, vf: Callable[[torch.Tensor], torch.Tensor], chunk_size: int = 65536) -> Traj:
    """Add ``vs: (N,)`` = V(obs) and the episode column ``final_vs: (E,)``.

    ``final_vs`` is V(final_obs) for truncated episodes and 0 for terminated ones. Both
    come from one pass of ``vf`` without gradients: the observations are fed in chunks
    of ``chunk_size`` rows (bounded memory, cache-friendly), and the final observations
    of the truncated episodes ride along with the last chunk. An empty Traj gives empty
    columns without calling ``vf``.

    A recurrent ``vf`` (``vf.recurrent``) runs each episode as one sequence from
    ``vf.init_hs``, in groups of episodes of at most ``chunk_size`` steps, with the final
    observation of a truncated episode as one more step (so ``final_vs`` uses the state
    the episode built). A piece of a continuing sampler (``continued``) starts from the
    value function's state stored in the step column ``vf_hs`` at its first step
    (:func:`trajkit.ef.recurrent.carry_hs` carries it from call to call); without it,
    a ValueError.

    Args:
        traj: needs ``obs`` and ``terminated``; ``final_obs`` if any episode is truncated.
        vf: maps ``(B, *obs_shape)`` observations to ``(B,)`` or ``(B, 1)`` values
            (any other shape is a ValueError naming it); or a recurrent value function.
        chunk_size: rows per forward pass, an integer ``>= 1``.
    """
    chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    require(traj, "obs")
    obs = traj["obs"]
    cut = _cut(traj)
    if traj.num_step == 0:
        return traj.with_columns(vs=torch.zeros(0, device=obs.device)).with_epi_columns(
            final_vs=torch.zeros(0, device=obs.device)
        )
    if bool(cut.any()):
        require(traj, "final_obs")
    if getattr(vf, "recurrent", False):
        vs, final_vs = recurrent_vs(traj, vf, chunk_size, cut)
        return traj.with_columns(vs=vs).with_epi_columns(final_vs=final_vs)
    device = module_device(vf) if isinstance(vf, torch.nn.Module) else obs.device
    extra = traj.epi_col("final_obs")[cut].to(obs.device, obs.dtype) if bool(cut.any()) else obs[:0]
    chunks = list(obs.split(chunk_size))
    chunks[-1] = torch.cat([chunks[-1], extra])
    with torch.no_grad():
        outs = [_values(vf(c.to(device)), len(c), "vf", "compute_vs") for c in chunks]
    out = torch.cat(outs).to(obs.device, torch.float32)
    n = traj.num_step
    final_vs = torch.zeros(traj.num_epi, device=obs.device)
    final_vs[cut.to(obs.device)] = out[n:]
    return traj.with_columns(vs=out[:n]).with_epi_columns(final_vs=final_vs)


def compute_rets(traj: Traj, gamma: float, bootstrap: bool = True) -> Traj:
    """Add ``rets: (N,)``, the discounted return from each step to the episode's end.

    At a truncated episode the return bootstraps from ``final_vs`` (run
    :func:`compute_vs` first); at a terminated one it ends at 0. ``bootstrap=False``
    treats cut-offs as ending at 0 too (plain Monte-Carlo returns). ``gamma`` is checked
    to be in ``[0, 1]``. Kernel: :func:`~trajkit.ef.discounted_returns`.
    """
    gamma = check_unit("gamma", gamma)
    if not isinstance(bootstrap, bool):
        raise TypeError(f"bootstrap must be a bool, got {bootstrap!r}")
    require(traj, "rews")
    rets = discounted_returns(
        traj["rews"], _final_vs(traj, bootstrap), traj.epi_col("terminated"), traj.bounds, gamma=gamma
    )
    return traj.with_columns(rets=rets)


def compute_advs(traj: Traj, gamma: float, lam: float) -> Traj:
    """Add ``advs: (N,)``, generalized advantage estimates (GAE(gamma, lam)).

    ``delta[t] = r[t] + gamma * V(s[t+1]) - V(s[t])`` with ``V(s[T]) = final_vs`` (0 at a
    terminal state), and ``advs = discount_cumsum(delta, gamma * lam)`` per episode.
    Needs ``vs`` and ``final_vs`` from :func:`compute_vs`; ``gamma`` and ``lam`` are
    checked to be in ``[0, 1]``. Kernel: :func:`~trajkit.ef.gae`.
    """
    gamma, lam = check_unit("gamma", gamma), check_unit("lam", lam)
    require(traj, "rews", "vs")
    advs = gae(
        traj["rews"], traj["vs"], _final_vs(traj, True), traj.epi_col("terminated"), traj.bounds,
        gamma=gamma, lam=lam,
    )
    return traj.with_columns(advs=advs)


def centerize_advs(traj: Traj, eps: float = 1e-8) -> Traj:
    """Replace ``advs: (N,)`` by ``(advs - mean) / (std + eps)`` over the whole Traj.

    ``std`` is the unbiased standard deviation. Where it is undefined or the scale is 0
    (a single step, or equal advantages with ``eps = 0``) the result is ``advs - mean``
    (zeros for one step), never NaN. An empty Traj gives an empty column.

    Args:
        eps: added to the standard deviation, a finite number ``>= 0``.
    """
    eps = check_float("eps", eps, min_value=0.0)
    require(traj, "advs")
    advs = traj["advs"]
    if advs.numel() == 0:
        return traj.with_columns(advs=advs.clone())
    centered = advs - advs.mean()
    std = advs.std() if advs.numel() > 1 else advs.new_zeros(())
    scale = std + eps
    return traj.with_columns(advs=torch.where(scale > 0, centered / scale, centered))


def compute_h_masks(traj: Traj) -> Traj:
    """Add ``h_masks: (N,)``: 1.0 at each episode's first step (reset a recurrent state), else 0.0.

    A piece that continues an episode from an earlier call (episode column
    ``continued``, from a continuing sampler) gets 0.0 at its first step: its state
    goes on from the stored ``hs`` there instead of being reset.
    """
    h_masks = torch.zeros(traj.num_step, device=traj.device)
    first = traj.first_idx()
    if "continued" in traj.epi:
        first = first[~traj.epi_col("continued").bool().to(first.device)]
    h_masks[first] = 1.0
    return traj.with_columns(h_masks=h_masks)


def add_next_obs(traj: Traj) -> Traj:
    """Add ``next_obs: (N, *obs_shape)`` and ``terminals: (N,)``.

    ``next_obs[t] = obs[t + 1]`` inside an episode; at an episode's last step it is the
    real final observation (``final_obs``), never the next episode's first one.
    ``terminals`` is 1.0 only at the last step of a terminated episode, so a Bellman
    target ``r + gamma * (1 - terminals) * V(next_obs)`` bootstraps at cut-offs.
    """
    require(traj, "obs", "terminated", "final_obs")
    obs = traj["obs"]
    next_obs = torch.empty_like(obs)
    next_obs[:-1] = obs[1:]
    last = traj.last_idx()
    next_obs[last] = traj.epi_col("final_obs").to(obs.device, obs.dtype)
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
    ``gamma`` is checked to be in ``[0, 1]`` and ``n`` to be an integer ``>= 1``.
    Kernel: :func:`~trajkit.ef.nstep_returns`.
    """
    require(traj, "obs", "rews", "terminated", "final_obs")
    obs = traj["obs"]
    dev = obs.device
    k = nstep_returns(traj["rews"], traj.epi_col("terminated"), traj.bounds, gamma=gamma, n=n)
    inside = ~k.reaches_end
    final_obs = traj.epi_col("final_obs")
    epi_ids = traj.epi_ids().cpu()[k.reaches_end]
    nxt = torch.empty_like(obs)
    nxt[inside.to(dev)] = obs[k.next_idx[inside].to(dev)]
    nxt[k.reaches_end.to(dev)] = final_obs[epi_ids.to(final_obs.device)].to(dev, obs.dtype)
    return traj.with_columns(
        nstep_rets=k.rets.to(dev, torch.float32),
        nstep_next_obs=nxt,
        nstep_discounts=k.discounts.to(dev, torch.float32),
    )


def compute_pris(
    traj: Traj,
    qf: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    target_qf: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    target_pol: Callable[[torch.Tensor], torch.Tensor],
    gamma: float,
    eps: float = 1e-6,
) -> Traj:
    """Add ``pris: (N,)``, TD-error priorities ``|r + gamma (1 - terminal) Q'(s', pi'(s')) - Q(s, a)| + eps``.

    Args:
        qf, target_qf: map ``(B, *obs_shape), (B, *ac_shape)`` to ``(B,)`` or ``(B, 1)`` Q-values.
        target_pol: maps ``(B, *obs_shape)`` observations to ``(B, *ac_shape)`` actions
            (for example ``lambda obs: target_pol.pd.mode(target_pol(obs))``).
        gamma: discount in ``[0, 1]``.
        eps: added to every priority, a finite number ``>= 0``.
    Needs ``next_obs`` and ``terminals`` from :func:`add_next_obs`. An empty Traj gives
    an empty column without calling the Q functions.
    """
    gamma = check_unit("gamma", gamma)
    eps = check_float("eps", eps, min_value=0.0)
    require(traj, "obs", "acs", "rews", "next_obs", "terminals")
    rews = traj["rews"]
    if traj.num_step == 0:
        return traj.with_columns(pris=torch.zeros(0, device=rews.device))
    b = traj.num_step
    with torch.no_grad():
        obs, acs = traj["obs"], traj["acs"]
        next_obs, terminals = traj["next_obs"], traj["terminals"]
        q_next = _values(target_qf(next_obs, target_pol(next_obs)), b, "target_qf", "compute_pris")
        q = _values(qf(obs, acs), b, "qf", "compute_pris")
        pris = (rews + gamma * (1.0 - terminals) * q_next - q).abs() + eps
    return traj.with_columns(pris=pris)
