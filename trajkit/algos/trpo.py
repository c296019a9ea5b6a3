"""Trust-region policy optimization (Schulman et al., 2015).

The policy step solves ``F x = g`` by conjugate gradient, where ``g`` is the gradient of
the surrogate (``lf.surrogate``) and ``F v`` a Fisher-vector product (the Hessian of the
mean KL to the old policy, by double backpropagation, plus ``cg_damping * v``). The
full step ``sqrt(2 max_kl / x^T F x) x`` is then halved until the surrogate improves and
the KL is within ``max_kl``; if no fraction qualifies the policy is left unchanged.
The value function is fitted with ``lf.monte_carlo`` in minibatches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from trajkit import ef, lf
from trajkit.algos.common import (
    TrainResult,
    as_generator,
    check_minibatch_args,
    explained_variance,
    fit_vf,
    full_batch,
    require_steps,
)
from trajkit.checks import check_float, check_int
from trajkit.traj import Traj

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def conjugate_gradient(
    fvp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10, tol: float = 1e-10
) -> torch.Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given as ``fvp(v) = A v``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        ap = fvp(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def train(
    *,
    traj: Traj,
    pol: BasePol,
    vf: torch.nn.Module,
    optim_vf: torch.optim.Optimizer,
    max_kl: float = 0.01,
    cg_iters: int = 10,
    cg_damping: float = 0.1,
    backtrack_steps: int = 10,
    vf_epoch: int = 5,
    vf_batch_size: int = 64,
    max_grad_norm: float | None = None,
    seq_len: int | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """One trust-region step of ``pol`` and ``vf_epoch`` passes of value regression on ``traj``.

    Args:
        seq_len: for a recurrent ``pol`` or ``vf`` (detected): the sequences are whole
            episodes (None) or chunks of ``seq_len`` steps; all of them form the full
            batch (chunks bound its padding). See ``docs/recurrent.md``.

    Returns:
        ``losses["pol_loss"]`` (surrogate before and after), ``losses["vf_loss"]`` per
        value epoch; ``diagnostics`` ``kl`` (of the accepted step), ``step_frac`` (the
        accepted fraction of the full step, 0 if rejected), ``ent``, ``explained_var``.
    """
    check_float("max_kl", max_kl, min_value=0.0, min_open=True)
    check_int("cg_iters", cg_iters, min_value=1)
    check_float("cg_damping", cg_damping, min_value=0.0)
    check_int("backtrack_steps", backtrack_steps, min_value=1)
    check_minibatch_args(epoch=vf_epoch, batch_size=vf_batch_size, max_grad_norm=max_grad_norm, prefix="vf_")
    require_steps(traj)
    ef.require(traj, "obs", "acs", "advs", *pol.pd.param_names, "rets")
    full = full_batch(traj, [pol], seq_len)
    params = [p for p in pol.parameters() if p.requires_grad]
    loss, _ = lf.surrogate(pol, full)
    grads = parameters_to_vector(torch.autograd.grad(loss, params))

    def fvp(v: torch.Tensor) -> torch.Tensor:
        _, info = lf.surrogate(pol, full)
        kl_grads = parameters_to_vector(torch.autograd.grad(info["kl"], params, create_graph=True))
        hv = parameters_to_vector(torch.autograd.grad(kl_grads @ v, params))
        return hv + cg_damping * v

    direction = conjugate_gradient(fvp, -grads, cg_iters)
    shs = direction @ fvp(direction)
    full_step = torch.sqrt(2.0 * max_kl / shs.clamp_min(1e-12)) * direction
    old = parameters_to_vector(params).detach()
    accepted, kl, new_loss = 0.0, 0.0, float(loss.detach())
    with torch.no_grad():
        for frac in (0.5**i for i in range(backtrack_steps)):
            vector_to_parameters(old + frac * full_step, params)
            trial_loss, info = lf.surrogate(pol, full)
            if float(info["kl"]) <= max_kl and float(trial_loss) < float(loss):
                accepted, kl, new_loss = frac, float(info["kl"]), float(trial_loss)
                break
        else:
            vector_to_parameters(old, params)
    result = TrainResult()
    result.append(pol_loss=loss)
    result.append(pol_loss=new_loss)
    vf_losses = fit_vf(traj=traj, vf=vf, optim_vf=optim_vf, epoch=vf_epoch, batch_size=vf_batch_size,
                       max_grad_norm=max_grad_norm, generator=as_generator(generator), seq_len=seq_len)
    result.losses["vf_loss"] = vf_losses
    with torch.no_grad():
        ent = float(pol.pd.ent(lf.forward_rows(pol, full, ())[0]).mean())
    result.diagnostics.update(kl=kl, step_frac=accepted, ent=ent)
    if "vs" in traj:
        result.diagnostics["explained_var"] = explained_variance(traj["vs"], traj["rets"])
    return result
