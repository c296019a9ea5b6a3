"""Loss functions: pure functions of ``(modules, batch, hyper-parameters)``.

Each returns ``(loss, info)``: a scalar tensor to minimize and a dict of detached
scalar diagnostics. A batch is a dict of ``(B, ...)`` tensors from a Traj iterator.
Policy-gradient losses read the old distribution's parameters from the batch (the
columns the sampler stored, ``pol.pd.param_names``), so no copy of the old policy is
needed.
"""

from __future__ import annotations

import torch

from trajkit.pds import Params

Batch = dict[str, torch.Tensor]
Info = dict[str, torch.Tensor]


def old_params(pol: torch.nn.Module, batch: Batch) -> Params:
    """The behaviour policy's distribution parameters stored in ``batch``."""
    return {k: batch[k] for k in pol.pd.param_names}


def _ratio(pol: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Params, Params]:
    params = pol(batch["obs"])
    old = old_params(pol, batch)
    llh = pol.pd.llh(batch["acs"], params)
    old_llh = pol.pd.llh(batch["acs"], old)
    return torch.exp(llh - old_llh), params, old


def pg_clip(pol: torch.nn.Module, batch: Batch, clip_param: float, ent_beta: float = 0.0) -> tuple[torch.Tensor, Info]:
    """PPO's clipped surrogate: ``-mean(min(r A, clip(r, 1-c, 1+c) A)) - ent_beta * mean(H)``.

    Needs ``obs``, ``acs``, ``advs`` and the old distribution parameters.
    """
    ratio, params, old = _ratio(pol, batch)
    advs = batch["advs"]
    surr = torch.min(ratio * advs, ratio.clamp(1.0 - clip_param, 1.0 + clip_param) * advs)
    ent = pol.pd.ent(params).mean()
    loss = -surr.mean() - ent_beta * ent
    with torch.no_grad():
        info = {
            "kl": pol.pd.kl_pq(old, params).mean(),
            "ent": ent.detach(),
            "clip_frac": ((ratio - 1.0).abs() > clip_param).float().mean(),
        }
    return loss, info


def pg_kl(pol: torch.nn.Module, batch: Batch, kl_beta: float, ent_beta: float = 0.0) -> tuple[torch.Tensor, Info]:
    """PPO's KL-penalized surrogate: ``-mean(r A) + kl_beta * mean(KL(old || new)) - ent_beta * mean(H)``."""
    ratio, params, old = _ratio(pol, batch)
    kl = pol.pd.kl_pq(old, params).mean()
    ent = pol.pd.ent(params).mean()
    loss = -(ratio * batch["advs"]).mean() + kl_beta * kl - ent_beta * ent
    return loss, {"kl": kl.detach(), "ent": ent.detach()}


def pg(pol: torch.nn.Module, batch: Batch, ent_beta: float = 0.0) -> tuple[torch.Tensor, Info]:
    """Vanilla policy gradient: ``-mean(log pi(a|s) A) - ent_beta * mean(H)``."""
    params = pol(batch["obs"])
    llh = pol.pd.llh(batch["acs"], params)
    ent = pol.pd.ent(params).mean()
    loss = -(llh * batch["advs"]).mean() - ent_beta * ent
    return loss, {"ent": ent.detach()}


def surrogate(pol: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Importance-weighted surrogate ``-mean(r A)`` (TRPO's objective) with the mean KL(old || new)."""
    ratio, params, old = _ratio(pol, batch)
    loss = -(ratio * batch["advs"]).mean()
    return loss, {"kl": pol.pd.kl_pq(old, params).mean()}


def monte_carlo(vf: torch.nn.Module, batch: Batch, clip_param: float | None = None) -> tuple[torch.Tensor, Info]:
    """Value regression ``0.5 * mean((V(s) - rets)**2)``.

    With ``clip_param`` the new prediction is also clipped to ``vs +- clip_param`` around
    the old one (``batch["vs"]``) and the larger of the two errors is used, as in PPO2.
    """
    vs = vf(batch["obs"])
    if vs.shape != batch["rets"].shape:  # a (B, 1) head, as compute_vs accepts: never broadcast to (B, B)
        vs = vs.reshape(batch["rets"].shape)
    err = (vs - batch["rets"]).pow(2)
    if clip_param is not None:
        old = batch["vs"]
        clipped = old + (vs - old).clamp(-clip_param, clip_param)
        err = torch.max(err, (clipped - batch["rets"]).pow(2))
    loss = 0.5 * err.mean()
    return loss, {}
