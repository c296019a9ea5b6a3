"""PPO with the clipped surrogate objective (Schulman et al., 2017).

For each epoch, for each minibatch of the Traj: one policy step on ``lf.pg_clip`` and
one value step on ``lf.monte_carlo``. Needs the columns ``obs``, ``acs``, ``advs``,
``rets`` and the sampler's stored distribution parameters (and ``vs`` if the value
loss is clipped). Recurrent models train on sequence minibatches (``common.minibatches``)
through the same losses.
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
    minibatches,
    require_steps,
    step,
)
from trajkit.checks import check_float, check_optional_float
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
    clip_param: float = 0.2,
    ent_coef: float = 0.0,
    vf_clip_param: float | None = None,
    max_grad_norm: float | None = 0.5,
    target_kl: float | None = None,
    seq_len: int | None = None,
    burn_in: int = 0,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``pol`` and ``vf`` in place with PPO-clip on ``traj``.

    Args:
        epoch: passes over the Traj. batch_size: minibatch size in steps (the last
            partial batch of each pass is used too).
        clip_param: the ratio clip ``epsilon`` (>= 0). ent_coef: entropy bonus coefficient.
        vf_clip_param: clip the value prediction around the old ``vs`` (None: no clipping).
        max_grad_norm: gradient-norm clip for each optimizer step (None: none).
        target_kl: the KL per update we aim to stay at: the remaining epochs are skipped
            once an epoch's mean KL exceeds it (None: always run ``epoch`` passes).
        seq_len, burn_in: for recurrent ``pol`` or ``vf`` (detected): minibatches are
            whole episodes (``seq_len`` None) or chunks of ``seq_len`` steps, each after
            ``burn_in`` warm-up steps; about ``batch_size`` steps each. A recurrent
            policy needs the sampler's ``hs`` column, a recurrent value function on
            chunks ``ef.compute_hs(traj, vf, key="vf_hs")``; ``h_masks`` from
            ``ef.compute_h_masks``. See ``docs/recurrent.md``.
        generator: minibatch shuffling (a generator, a seed, or None for torch's default).

    Returns:
        ``losses["pol_loss"]``, ``losses["vf_loss"]``, ``losses["kl"]`` per epoch;
        ``diagnostics`` ``kl``, ``ent``, ``clip_frac`` (last epoch), ``explained_var``
        (of the old ``vs`` if present), ``epochs_run``.
    """
    check_minibatch_args(epoch=epoch, batch_size=batch_size, max_grad_norm=max_grad_norm)
    check_float("clip_param", clip_param, min_value=0.0)
    check_float("ent_coef", ent_coef, min_value=0.0)
    check_optional_float("vf_clip_param", vf_clip_param, min_value=0.0)
    check_optional_float("target_kl", target_kl, min_value=0.0, min_open=True)
    require_steps(traj)
    ef.require(traj, "obs", "acs", "advs", "rets", *pol.pd.param_names)
    if vf_clip_param is not None:
        ef.require(traj, "vs")
    g = as_generator(generator)
    result = TrainResult()
    info: dict[str, torch.Tensor] = {}
    epochs_run = 0
    names = ("pol_loss", "vf_loss", "kl", "ent", "clip_frac")
    for _ in range(epoch):
        # step-weighted sums stay on the device (float64, the arithmetic of Python floats):
        # one host sync per epoch instead of five per minibatch
        sums: torch.Tensor | None = None
        n = 0
        for batch in minibatches(traj, [pol, vf], batch_size, g, seq_len, burn_in):
            pol_loss, info = lf.pg_clip(pol, batch, clip_param, ent_coef)
            step(optim_pol, pol_loss, pol.parameters(), max_grad_norm)
            vf_loss, _ = lf.monte_carlo(vf, batch, vf_clip_param)
            step(optim_vf, vf_loss, vf.parameters(), max_grad_norm)
            w = batch_steps(batch)
            n += w
            row = torch.stack([pol_loss.detach(), vf_loss.detach(), info["kl"], info["ent"], info["clip_frac"]])
            sums = row.double() * w if sums is None else sums + row.double() * w
        assert sums is not None  # require_steps: at least one minibatch
        means = dict(zip(names, (v / n for v in sums.tolist()), strict=True))
        epochs_run += 1
        result.append(pol_loss=means["pol_loss"], vf_loss=means["vf_loss"], kl=means["kl"])
        result.diagnostics.update(kl=means["kl"], ent=means["ent"], clip_frac=means["clip_frac"])
        if target_kl is not None and means["kl"] > target_kl:
            break
    if "vs" in traj:
        result.diagnostics["explained_var"] = explained_variance(traj["vs"], traj["rets"])
    result.diagnostics["epochs_run"] = float(epochs_run)
    return result
