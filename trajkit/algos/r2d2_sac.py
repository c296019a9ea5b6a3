"""R2D2-style soft actor-critic: SAC over stored sequences with burn-in and sequence priorities.

Recurrent SAC as R2D2 (Kapturowski et al., 2019) trains recurrent Q-learning: replay
holds fixed-length overlapping sequences with the policy's stored start state
(:class:`trajkit.seq_buffer.SeqReplayBuffer`); each sequence's burn-in steps only warm
the states; the loss is over its training steps (``lf_seq.r2d2_sac``); its priority is
R2D2's mix of the largest and the mean ``|TD error|`` (``ef.compute_seq_pris``).

For each of ``num_steps`` gradient steps: draw ``batch_size`` sequences by priority,
minimize the loss (critics, policy and temperature in one backward pass, each optimizer
stepping its own part), set the drawn sequences' priorities, and move the target
critics towards the critics by ``tau``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import lf_seq
from trajkit.algos.common import (
    TrainResult,
    as_generator,
    check_log_alpha,
    check_off_policy_args,
    polyak_tensors,
    polyak_update,
    result_from_series,
)
from trajkit.checks import check_optional_float, check_unit
from trajkit.ef import compute_seq_pris
from trajkit.pols import flat_dim
from trajkit.seq_buffer import SeqReplayBuffer

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def train(
    *,
    buffer: SeqReplayBuffer,
    pol: BasePol,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    log_alpha: torch.Tensor,
    optim_pol: torch.optim.Optimizer,
    optim_qf: torch.optim.Optimizer,
    optim_alpha: torch.optim.Optimizer | None,
    num_steps: int,
    batch_size: int,
    gamma: float = 0.99,
    tau: float = 0.005,
    target_ent: float | None = None,
    per_beta: float = 0.6,
    per_eta: float = 0.9,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol``, ``qf1``, ``qf2`` (and ``log_alpha``) in place from ``buffer``'s sequences.

    Args:
        buffer: a :class:`SeqReplayBuffer` (``per_alpha=0`` for uniform draws).
        pol: a ``SquashedGaussianPol``, recurrent (``nets.lstm``/``gru``) or not; a
            recurrent one starts each sequence from the state the sampler stored.
        qf1, qf2: Q functions (recurrent ones start from zeros and are warmed by burn-in;
            build them with ``late_dim`` = action size, see :mod:`trajkit.lf_seq`).
        log_alpha: ``()`` tensor with ``requires_grad``; ``optim_alpha`` steps it (None: fixed).
        optim_qf: one optimizer over both critics' parameters.
        batch_size: sequences per gradient step (each with ``buffer.seq_len`` training steps).
        target_ent: the entropy target (default ``-A``).
        per_beta: importance-weight exponent of the prioritized draws.
        per_eta: priority ``eta * max |TD| + (1 - eta) * mean |TD|`` over a sequence (R2D2: 0.9).
        generator: sequence draws and the policy's reparameterization noise.

    Returns:
        ``losses`` per gradient step: ``pol_loss``, ``qf_loss``, ``alpha_loss``, ``alpha``,
        ``q1_mean``, ``ent``; ``diagnostics``: their means and ``td_abs`` (mean ``|TD|``
        over the training steps).
    """
    check_off_policy_args(num_steps=num_steps, batch_size=batch_size, gamma=gamma, tau=tau, per_beta=per_beta)
    check_unit("per_eta", per_eta)
    target_ent = check_optional_float("target_ent", target_ent)
    if not isinstance(buffer, SeqReplayBuffer):
        raise TypeError(f"buffer must be a SeqReplayBuffer, got {type(buffer).__name__}")
    if len(buffer) == 0:
        raise ValueError("the buffer holds no sequences; add a Traj before train()")
    check_log_alpha(log_alpha)
    hs_dim = pol.net.hs_dim if getattr(pol, "recurrent", False) else 0
    if buffer.hs_dim != hs_dim:
        raise ValueError(f"the buffer keeps policy states of size hs_dim={buffer.hs_dim}, the policy's are {hs_dim}: "
                         f"build it with SeqReplayBuffer(..., hs_dim={hs_dim})")
    g = as_generator(generator)
    if target_ent is None:
        target_ent = -float(flat_dim(pol.ac_space))
    target, source = polyak_tensors(target_qf1, target_qf2), polyak_tensors(qf1, qf2)
    optims = [o for o in (optim_qf, optim_pol, optim_alpha) if o is not None]
    names = ("pol_loss", "qf_loss", "alpha_loss", "alpha", "q1_mean", "ent")
    series: dict[str, list[torch.Tensor]] = {k: [] for k in (*names, "td_abs")}
    for _ in range(num_steps):
        batch = buffer.sample(batch_size, per_beta, g)
        loss, info = lf_seq.r2d2_sac(pol, qf1, qf2, target_qf1, target_qf2, log_alpha, batch, gamma, target_ent, g)
        for o in optims:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in optims:
            o.step()
        td_abs = info["td_errors"].abs()
        buffer.update_pris(batch["idx"], compute_seq_pris(td_abs, batch["mask"], per_eta))
        polyak_update(target, source, tau)
        for k in names:
            series[k].append(info[k])
        series["td_abs"].append(td_abs.sum() / batch["mask"].sum().clamp(min=1.0))
    td = series.pop("td_abs")
    result = result_from_series(series)
    result.diagnostics["td_abs"] = float(torch.stack(td).mean())
    return result
