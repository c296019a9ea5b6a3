"""Estimators for recurrent models: values over whole episodes, and hidden states recomputed.

A recurrent model (one with ``recurrent`` True, ``init_hs(B)`` and a forward
``model(obs, hs=hs) -> (out, hs)``, as :mod:`trajkit.recurrent` defines) sees each
episode as one sequence from its first step. Episodes are run in groups of at most
``chunk_size`` steps (at least one episode per group), padded to the group's longest,
so memory is bounded by the group. Nothing here mutates its input.
"""

from __future__ import annotations

from typing import Any

import torch

from trajkit._rnn_batches import Windows, gather_index, windows
from trajkit.checks import check_int, check_unit
from trajkit.devices import module_device
from trajkit.ef.columns import require
from trajkit.traj import Traj

__all__ = ["carry_hs", "compute_hs", "compute_seq_pris", "recurrent_vs"]


def _groups(lens: torch.Tensor, chunk_size: int) -> list[torch.Tensor]:
    """Consecutive episode indices in groups of at most ``chunk_size`` steps (one episode at least)."""
    groups: list[list[int]] = [[]]
    total = 0
    for e, n in enumerate(lens.tolist()):
        if groups[-1] and total + n > chunk_size:
            groups.append([])
            total = 0
        groups[-1].append(e)
        total += n
    return [torch.tensor(g, dtype=torch.int64) for g in groups if g]


def _padded_obs(obs: torch.Tensor, w: Windows, g: torch.Tensor, extra: int) -> tuple[torch.Tensor, tuple]:
    """The observations of episodes ``g`` time first ``(T + extra, B, *obs_shape)`` and their gather index."""
    time, col, steps = gather_index(w, g)
    seq = obs.new_zeros((int(w.lens[g].max()) + extra, len(g), *obs.shape[1:]))
    dev = obs.device
    seq[time.to(dev), col.to(dev)] = obs[steps.to(dev)]
    return seq, (time, col, steps)


def _continued(traj: Traj) -> torch.Tensor:
    """``(E,)`` bool: the piece continues an episode of an earlier sampler call."""
    if "continued" not in traj.epi:
        return torch.zeros(traj.num_epi, dtype=torch.bool)
    return traj.epi_col("continued").bool().cpu()


def recurrent_vs(traj: Traj, vf: Any, chunk_size: int, cut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(vs: (N,), final_vs: (E,))`` of a recurrent state-value function, each episode from ``vf.init_hs``.

    The final observation of a cut episode (``cut: (E,)``) is fed as one more step, so
    ``final_vs`` is V after the episode's last step with the state the episode built.
    A continued piece (episode column ``continued``) starts from the state in the
    Traj's ``vf.hs_key`` column (``vf_hs``) at its first step, which :func:`carry_hs`
    puts there; without that column it is a ValueError (the sampler stores the policy's
    state only).
    """
    cont = _continued(traj)
    key = getattr(vf, "hs_key", "vf_hs")
    if bool(cont.any()) and key not in traj:
        e = int(torch.nonzero(cont)[0])
        raise ValueError(
            f"compute_vs: episode {e} continues an episode of an earlier sampler call (continued=True), and the "
            f"recurrent value function's hidden state at its start is unknown: the Traj has no {key!r} column. "
            f"Carry it with `traj, carried = ef.carry_hs(traj, vf, carried)` (or sample whole episodes, or use "
            "an MLP value function)"
        )
    obs = traj["obs"]
    device = module_device(vf)
    w = windows(traj.bounds, None, 0)
    final_obs = traj.epi_col("final_obs").to(obs.device, obs.dtype) if bool(cut.any()) else None
    vs = torch.zeros(traj.num_step, device=obs.device)
    final_vs = torch.zeros(traj.num_epi, device=obs.device)
    cut = cut.cpu()
    for g in _groups(w.lens, chunk_size):
        seq, (time, col, steps) = _padded_obs(obs, w, g, extra=1)
        lens, cols = w.lens[g], torch.arange(len(g))
        if final_obs is not None:
            seq[lens.to(obs.device), cols.to(obs.device)] = final_obs[g.to(obs.device)]
        with torch.no_grad():
            out, _ = vf(seq.to(device), hs=_start_states(traj, vf, key, w.starts[g], cont[g]))
        if tuple(out.shape) != tuple(seq.shape[:2]):
            raise ValueError(f"vf returned values of shape {tuple(out.shape)} for a {tuple(seq.shape[:2])} sequence; "
                             "compute_vs needs (T, B)")
        out = out.to(obs.device, torch.float32)
        vs[steps.to(obs.device)] = out[time.to(out.device), col.to(out.device)]
        last = out[lens.to(out.device), cols.to(out.device)]
        keep = cut[g].to(out.device)
        final_vs[g.to(obs.device)] = torch.where(keep, last, torch.zeros_like(last))
    return vs, final_vs


def _start_states(traj: Traj, model: Any, key: str, starts: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
    """``(B, S)``: ``model.init_hs(B)``, with the stored ``traj[key]`` at the first step of the continued pieces."""
    hs = model.init_hs(len(starts))
    if bool(cont.any()):
        stored = traj[key]
        hs[cont.to(hs.device)] = stored[starts[cont].to(stored.device)].to(hs.device, hs.dtype)
    return hs


def carry_hs(
    traj: Traj, model: Any, carried: dict[tuple[int, int], torch.Tensor] | None = None, key: str | None = None,
    chunk_size: int = 65536,
) -> tuple[Traj, dict[tuple[int, int], torch.Tensor]]:
    """A recurrent model's states over the pieces of a continuing sampler, carried from call to call.

    The sampler carries the *policy's* hidden state across its calls; this does the same
    for another recurrent model (a value function, ``key`` ``vf_hs`` by default from its
    ``hs_key``). Each piece runs from ``model.init_hs``, or, if it is ``continued``, from
    ``carried[epi_key]``, the state its previous piece ended in.

    Args:
        traj: one sampler call's pieces (``obs``; the episode columns ``continued``,
            ``epi_key``, ``sampler_cut`` of a continuing sampler; without them every
            piece is a whole episode).
        model: the recurrent model. carried: what the previous call returned (None: nothing).

    Returns:
        ``(traj with key: (N, S), carried)``: the state entering each step
        (:func:`compute_hs`), and, for every piece its sampler cut, the state after its
        last step keyed by ``epi_key`` (pass it to the next call's ``carry_hs``); the
        carried states of episodes this call did not step are kept.

    Raises:
        ValueError: a continued piece whose previous piece is not in ``carried``.
    """
    key = str(key or getattr(model, "hs_key", "vf_hs"))
    carried = carried or {}
    cont = _continued(traj)
    keys = ([(int(k[0]), int(k[1])) for k in traj.epi_col("epi_key").cpu()] if "epi_key" in traj.epi
            else [])
    if bool(cont.any()):
        size = int(model.init_hs(1).shape[-1])
        col = torch.zeros(traj.num_step, size, device=traj["obs"].device)
        for e in torch.nonzero(cont).flatten().tolist():
            if keys[e] not in carried:
                raise ValueError(f"carry_hs: episode {e} continues episode {keys[e]}, whose state was not carried "
                                 f"(carried holds {sorted(carried)[:5]}...); pass what the previous call returned")
            col[int(traj.bounds[e])] = carried[keys[e]].to(col.device, col.dtype)
        traj = traj.with_columns(**{key: col})
    traj = compute_hs(traj, model, key=key, chunk_size=chunk_size)
    # an episode this call did not step (its env's share was 0) keeps its carried state
    out = {k: v for k, v in carried.items() if k not in set(keys)}
    if "sampler_cut" in traj.epi and traj.num_step:
        cut = torch.nonzero(traj.epi_col("sampler_cut").bool().cpu()).flatten()
        if len(cut):
            last = traj.bounds[1:][cut] - 1
            device = module_device(model)
            obs, hs = traj["obs"][last.to(traj["obs"].device)], traj[key][last.to(traj[key].device)]
            with torch.no_grad():
                _, after = model(obs.to(device), hs=hs.to(device))
            out.update({keys[e]: after[i].detach() for i, e in enumerate(cut.tolist())})
    return traj, out


def compute_hs(traj: Traj, model: Any, key: str = "hs", chunk_size: int = 65536) -> Traj:
    """Add (or replace) ``key: (N, S)``, the hidden state ``model`` enters each step with, recomputed.

    Each episode is run step by step with the current ``model`` (a recurrent policy or
    value function) from ``model.init_hs``, or, for a piece that continues an episode of
    an earlier call (episode column ``continued``), from the Traj's stored ``key`` at its
    first step. The sampler stores ``hs`` this way for the policy it acted with; use this
    after the policy changed (fresher states for replay) or for another model, e.g.
    ``ef.compute_hs(traj, vf, key="vf_hs")``. No gradients; the input is not modified.

    Raises:
        TypeError: ``model`` is not recurrent.
        MissingColumnError: ``obs`` is missing, or ``key`` is while some piece is continued.
    """
    chunk_size = check_int("chunk_size", chunk_size, min_value=1)
    if not getattr(model, "recurrent", False):
        raise TypeError(f"compute_hs needs a recurrent model (built on nets.lstm/gru), got {type(model).__name__}")
    require(traj, "obs")
    cont = _continued(traj)
    if bool(cont.any()):
        require(traj, key)
    obs = traj["obs"]
    if traj.num_step == 0:
        return traj.with_columns(**{key: model.init_hs(0).to(obs.device)})
    device = module_device(model)
    w = windows(traj.bounds, None, 0)
    out: torch.Tensor | None = None
    for g in _groups(w.lens, chunk_size):
        seq, (time, col, steps) = _padded_obs(obs, w, g, extra=0)
        hs = _start_states(traj, model, key, w.starts[g], cont[g])
        states = []
        with torch.no_grad():
            for t in range(seq.shape[0]):
                states.append(hs)
                _, hs = model(seq[t].to(device), hs=hs)
        stacked = torch.stack(states).to(obs.device)
        if out is None:
            out = stacked.new_zeros((traj.num_step, stacked.shape[-1]))
        out[steps.to(obs.device)] = stacked[time.to(obs.device), col.to(obs.device)]
    assert out is not None  # the Traj has at least one episode here
    return traj.with_columns(**{key: out})


def compute_seq_pris(td_abs: torch.Tensor, mask: torch.Tensor, eta: float = 0.9) -> torch.Tensor:
    """R2D2's sequence priorities: ``eta * max_t |td| + (1 - eta) * mean_t |td|`` over each sequence's training steps.

    Args:
        td_abs: ``(L, B)`` absolute TD errors of ``B`` sequences of ``L`` slots.
        mask: ``(L, B)``, 1.0 on the training steps (padding and anything else 0.0).
        eta: the weight of the largest error (R2D2: 0.9; 0 is the mean, 1 the max).

    Returns:
        ``(B,)`` priorities; a sequence without training steps gets 0.
    """
    check_unit("eta", eta)
    if td_abs.shape != mask.shape or td_abs.dim() != 2:
        raise ValueError(f"td_abs and mask must both be (L, B), got {tuple(td_abs.shape)} and {tuple(mask.shape)}")
    m = mask.to(td_abs.dtype)
    x = td_abs.abs() * m
    mean = x.sum(0) / m.sum(0).clamp(min=1.0)
    return eta * x.max(0).values + (1.0 - eta) * mean
