"""PPO with an adaptive KL penalty (Schulman et al., 2017, section 4).

Minibatch steps on ``lf.pg_kl`` and ``lf.monte_carlo``. After the epochs the KL to the
old policy is measured on the whole Traj and the coefficient adapted: doubled if the
KL is above ``1.5 * target_kl``, halved if below ``target_kl / 1.5``: ``target_kl`` is
the KL per update the algorithm aims to stay at (PPO-clip's ``target_kl`` has the same
meaning; there it stops the remaining epochs once exceeded). The new coefficient is
returned (``diagnostics["kl_coef"]``); pass it in next time. Nothing is kept between
calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import ef, lf
from trajkit.algos.common import (
    TrainResult,
    as_generator,
    batch_steps,
    check_minibatch_args,
    explained_variance,
    full_batch,
    minibatches,
    require_steps,
    step,
)
from trajkit.checks import check_float
from trajkit.traj import Traj

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def train(
    *,
    traj: Traj,
    pol: BasePol,
    vf: torch.nn.Module,
    optim_pol: torch.optim.Optimizer,
    optim_vf: torch.optim.Optimizer,
    epoch: int,
    batch_size: int,
    kl_coef: float = 1.0,
    target_kl: float = 0.01,
    ent_coef: float = 0.0,
    max_grad_norm: float | None = 0.5,
    seq_len: int | None = None,
    burn_in: int = 0,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol`` and ``vf`` in place with PPO-KL on ``traj``.

    Args:
        epoch: passes over the Traj. batch_size: minibatch size in steps.
        kl_coef: the KL-penalty coefficient for this call (pass the returned
            ``diagnostics["kl_coef"]`` next time).
        target_kl: the KL per update we aim to stay at; the coefficient is adapted
            towards it after the epochs.
        ent_coef: entropy bonus coefficient. max_grad_norm: gradient-norm clip (None: none).
        seq_len, burn_in: for recurrent ``pol`` or ``vf`` (detected): minibatches of whole
            episodes (``seq_len`` None) or of chunks of ``seq_len`` steps after ``burn_in``
            warm-up steps (see ``ppo_clip.train`` and ``docs/recurrent.md``).
        generator: minibatch shuffling.

    Returns:
        ``losses["pol_loss"]``, ``losses["vf_loss"]`` per epoch; ``diagnostics``
        ``kl`` (whole Traj, after the update), ``ent``, ``kl_coef`` (the adapted
        coefficient for the next call), ``explained_var``.
    """
    check_minibatch_args(epoch=epoch, batch_size=batch_size, max_grad_norm=max_grad_norm)
    check_float("kl_coef", kl_coef, min_value=0.0)
    check_float("target_kl", target_kl, min_value=0.0, min_open=True)
    check_float("ent_coef", ent_coef, min_value=0.0)
    require_steps(traj)
    ef.require(traj, "obs", "acs", "advs", "rets", *pol.pd.param_names)
    g = as_generator(generator)
    result = TrainResult()
    for _ in range(epoch):
        pol_sum = vf_sum = 0.0
        n = 0
        for batch in minibatches(traj, [pol, vf], batch_size, g, seq_len, burn_in):
            pol_loss, _ = lf.pg_kl(pol, batch, kl_coef, ent_coef)
            step(optim_pol, pol_loss, pol.parameters(), max_grad_norm)
            vf_loss, _ = lf.monte_carlo(vf, batch)
            step(optim_vf, vf_loss, vf.parameters(), max_grad_norm)
            w = batch_steps(batch)
            pol_sum, vf_sum, n = pol_sum + float(pol_loss.detach()) * w, vf_sum + float(vf_loss.detach()) * w, n + w
        result.append(pol_loss=pol_sum / n, vf_loss=vf_sum / n)
    with torch.no_grad():
        full = full_batch(traj, [pol], seq_len)
        params, rows = lf.forward_rows(pol, full, pol.pd.param_names)
        kl = float(pol.pd.kl_pq(lf.old_params(pol, rows), params).mean())
        ent = float(pol.pd.ent(params).mean())
    if kl > 1.5 * target_kl:
        kl_coef *= 2.0
    elif kl < target_kl / 1.5:
        kl_coef /= 2.0
    result.diagnostics.update(kl=kl, ent=ent, kl_coef=kl_coef)
    if "vs" in traj:
        result.diagnostics["explained_var"] = explained_variance(traj["vs"], traj["rets"])
    return result
