"""Loss functions: pure functions of ``(modules, batch, hyper-parameters)``.

Each returns ``(loss, info)``: a scalar tensor to minimize and a dict of detached
scalar diagnostics. A batch is a dict of ``(B, ...)`` tensors from a Traj iterator.
Policy-gradient losses read the old distribution's parameters from the batch (the
columns the sampler stored, ``pol.pd.param_names``), so no copy of the old policy is
needed.

The on-policy losses (:func:`pg_clip`, :func:`pg_kl`, :func:`pg`, :func:`surrogate`,
:func:`monte_carlo`) also take a sequence batch from ``traj.iterate_rnn``: columns
``(T, B, ...)`` with ``mask: (T, B)``. ``forward_rows`` (:mod:`trajkit.seq_rows`) runs the model (a
recurrent one over the sequences, from the stored state at their first step; an MLP
one on the steps) and keeps the ``M`` masked-in steps as flat rows ``(M, ...)``; the
rest of each loss is the same code as for a batch of steps, so a mean over rows is
the masked mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit.checks import check_float, check_optional_float, check_unit
from trajkit.pds import Params, SquashedGaussianPd
from trajkit.seq_rows import forward_rows, is_seq_batch, start_hs  # noqa: F401 - lf.forward_rows etc.

if TYPE_CHECKING:
    from trajkit.pols import BasePol

Batch = dict[str, torch.Tensor]
Info = dict[str, torch.Tensor]


def per_sample(values: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """``values`` of a value or Q-function for ``n`` samples as ``(n,)``.

    ``(n,)`` and ``(n, 1)`` heads are accepted; any other shape (e.g. ``(n, 2)``, which
    would silently broadcast against ``(n,)`` targets) is a ValueError naming it.
    """
    if values.shape == (n,):
        return values
    if values.shape == (n, 1):
        return values.squeeze(-1)
    raise ValueError(f"{what} must return one value per sample, shape ({n},) or ({n}, 1); got {tuple(values.shape)}")


def old_params(pol: BasePol, batch: Batch) -> Params:
    """The behaviour policy's distribution parameters stored in ``batch``."""
    return {k: batch[k] for k in pol.pd.param_names}


def _ratio(pol: BasePol, batch: Batch) -> tuple[torch.Tensor, Params, Params, Batch]:
    """The likelihood ratios ``(M,)``, new and old parameters, and the batch as rows (see :func:`forward_rows`)."""
    params, batch = forward_rows(pol, batch, ("acs", "advs", *pol.pd.param_names))
    old = old_params(pol, batch)
    llh = pol.pd.llh(batch["acs"], params)
    old_llh = pol.pd.llh(batch["acs"], old)
    return torch.exp(llh - old_llh), params, old, batch


def pg_clip(pol: BasePol, batch: Batch, clip_param: float, ent_coef: float = 0.0) -> tuple[torch.Tensor, Info]:
    """PPO's clipped surrogate: ``-mean(min(r A, clip(r, 1-c, 1+c) A)) - ent_coef * mean(H)``.

    Needs ``obs``, ``acs``, ``advs`` and the old distribution parameters.
    """
    check_float("clip_param", clip_param, min_value=0.0)
    check_float("ent_coef", ent_coef, min_value=0.0)
    ratio, params, old, batch = _ratio(pol, batch)
    advs = batch["advs"]
    surr = torch.min(ratio * advs, ratio.clamp(1.0 - clip_param, 1.0 + clip_param) * advs)
    ent = pol.pd.ent(params).mean()
    loss = -surr.mean() - ent_coef * ent
    with torch.no_grad():
        info = {
            "kl": pol.pd.kl_pq(old, params).mean(),
            "ent": ent.detach(),
            "clip_frac": ((ratio - 1.0).abs() > clip_param).float().mean(),
        }
    return loss, info


def pg_kl(pol: BasePol, batch: Batch, kl_coef: float, ent_coef: float = 0.0) -> tuple[torch.Tensor, Info]:
    """PPO's KL-penalized surrogate: ``-mean(r A) + kl_coef * mean(KL(old || new)) - ent_coef * mean(H)``."""
    check_float("kl_coef", kl_coef, min_value=0.0)
    check_float("ent_coef", ent_coef, min_value=0.0)
    ratio, params, old, batch = _ratio(pol, batch)
    kl = pol.pd.kl_pq(old, params).mean()
    ent = pol.pd.ent(params).mean()
    loss = -(ratio * batch["advs"]).mean() + kl_coef * kl - ent_coef * ent
    return loss, {"kl": kl.detach(), "ent": ent.detach()}


def pg(pol: BasePol, batch: Batch, ent_coef: float = 0.0) -> tuple[torch.Tensor, Info]:
    """Vanilla policy gradient: ``-mean(log pi(a|s) A) - ent_coef * mean(H)``."""
    check_float("ent_coef", ent_coef, min_value=0.0)
    params, batch = forward_rows(pol, batch, ("acs", "advs"))
    llh = pol.pd.llh(batch["acs"], params)
    ent = pol.pd.ent(params).mean()
    loss = -(llh * batch["advs"]).mean() - ent_coef * ent
    return loss, {"ent": ent.detach()}


def surrogate(pol: BasePol, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Importance-weighted surrogate ``-mean(r A)`` (TRPO's objective) with the mean KL(old || new)."""
    ratio, params, old, batch = _ratio(pol, batch)
    loss = -(ratio * batch["advs"]).mean()
    return loss, {"kl": pol.pd.kl_pq(old, params).mean()}


def monte_carlo(vf: torch.nn.Module, batch: Batch, clip_param: float | None = None) -> tuple[torch.Tensor, Info]:
    """Value regression ``0.5 * mean((V(s) - rets)**2)``.

    With ``clip_param`` the new prediction is also clipped to ``vs +- clip_param`` around
    the old one (``batch["vs"]``) and the larger of the two errors is used, as in PPO2.
    """
    check_optional_float("clip_param", clip_param, min_value=0.0)
    out, batch = forward_rows(vf, batch, ("rets", "vs"))
    vs = per_sample(out, len(batch["rets"]), "the value function")
    err = (vs - batch["rets"]).pow(2)
    if clip_param is not None:
        old = batch["vs"]
        clipped = old + (vs - old).clamp(-clip_param, clip_param)
        err = torch.max(err, (clipped - batch["rets"]).pow(2))
    loss = 0.5 * err.mean()
    return loss, {}


# ---------------------------------------------------------------------------- off-policy
# Off-policy losses read transitions: ``obs``, ``acs``, ``rews``, ``next_obs``,
# ``terminals`` (from ``ef.add_next_obs``), or with ``nstep=True`` the n-step columns
# ``nstep_rets``, ``nstep_next_obs``, ``nstep_discounts`` (from ``ef.compute_nstep_rets``).
# When the batch has ``weights`` (a prioritized buffer's importance weights), each
# sample's squared TD error is weighted by it. Actions are in the policy's own space.


def _transition(batch: Batch, gamma: float, nstep: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rews: (B,), next_obs: (B, ...), discounts: (B,))`` so that ``y = rews + discounts * V(next_obs)``."""
    check_unit("gamma", gamma)
    if nstep:
        return batch["nstep_rets"], batch["nstep_next_obs"], batch["nstep_discounts"]
    return batch["rews"], batch["next_obs"], gamma * (1.0 - batch["terminals"])


def _min_q(
    qf1: torch.nn.Module, qf2: torch.nn.Module, obs: torch.Tensor, acs: torch.Tensor, n: int, what: str
) -> torch.Tensor:
    """``min(Q1(s, a), Q2(s, a)): (B,)``, each head checked by :func:`per_sample`."""
    return torch.min(per_sample(qf1(obs, acs), n, f"{what}1"), per_sample(qf2(obs, acs), n, f"{what}2"))


def _q_table(q: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """A discrete Q-function's ``(B, num_actions)`` output; any other shape is a ValueError naming it."""
    if q.ndim != 2 or q.shape[0] != n:
        raise ValueError(f"{what} must return ({n}, num_actions) Q-values, got shape {tuple(q.shape)}")
    return q


def _weighted_sq(td: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``0.5 * mean(w * td**2)`` with ``w = batch["weights"]`` if present, else 1."""
    sq = td.pow(2)
    if "weights" in batch:
        sq = sq * batch["weights"]
    return 0.5 * sq.mean()


class _frozen:
    """Context manager: modules' parameters do not require grad inside (so a loss term
    built inside sends no gradient to them), restored on exit."""

    def __init__(self, *modules: torch.nn.Module) -> None:
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.params:
            p.requires_grad_(True)


def _mode(pol: BasePol, obs: torch.Tensor) -> torch.Tensor:
    return pol.pd.mode(pol(obs))


def bellman(
    qf: torch.nn.Module,
    target_qf: torch.nn.Module,
    target_pol: BasePol,
    batch: Batch,
    gamma: float,
    nstep: bool = False,
) -> tuple[torch.Tensor, Info]:
    """DDPG's critic loss ``0.5 * mean(w * (Q(s, a) - y)**2)``, ``y = r + gamma (1 - d) Q'(s', mu'(s'))``.

    ``mu'`` is the mode of ``target_pol``'s distribution. ``info["td_errors"]`` is the
    ``(B,)`` detached ``y - Q(s, a)`` (for priorities); ``info["q_mean"]`` the mean Q.
    """
    rews, next_obs, disc = _transition(batch, gamma, nstep)
    n = len(rews)
    with torch.no_grad():
        y = rews + disc * per_sample(target_qf(next_obs, _mode(target_pol, next_obs)), n, "target_qf")
    q = per_sample(qf(batch["obs"], batch["acs"]), n, "qf")
    td = y - q
    return _weighted_sq(td, batch), {"q_mean": q.detach().mean(), "td_errors": td.detach()}


def target_smoothing(
    target_pol: BasePol,
    obs: torch.Tensor,
    noise_std: float,
    noise_clip: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TD3's smoothed target action ``clip(mu'(s) + clip(eps, -c, c), -1, 1)``: ``(B, A)``.

    ``eps ~ N(0, noise_std**2)``, drawn from ``generator``.
    """
    check_float("noise_std", noise_std, min_value=0.0)
    check_float("noise_clip", noise_clip, min_value=0.0)
    with torch.no_grad():
        acs = _mode(target_pol, obs)
        noise = torch.randn(acs.shape, generator=generator, device=acs.device, dtype=acs.dtype)
        return (acs + (noise * noise_std).clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def clipped_double_bellman(
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    next_acs: torch.Tensor,
    batch: Batch,
    gamma: float,
    nstep: bool = False,
) -> tuple[torch.Tensor, Info]:
    """Twin critics' loss ``sum_i 0.5 * mean(w * (Q_i(s, a) - y)**2)``.

    ``y = r + gamma (1 - d) min(Q1'(s', a'), Q2'(s', a'))`` with ``next_acs = a': (B, A)``
    chosen by the caller (TD3: :func:`target_smoothing`; QT-Opt: the CEM maximizer).
    ``info``: ``q1_mean``, ``q2_mean``, ``td_errors: (B,)`` of ``Q1``.
    """
    rews, next_obs, disc = _transition(batch, gamma, nstep)
    n = len(rews)
    with torch.no_grad():
        y = rews + disc * _min_q(target_qf1, target_qf2, next_obs, next_acs, n, "target_qf")
    q1 = per_sample(qf1(batch["obs"], batch["acs"]), n, "qf1")
    q2 = per_sample(qf2(batch["obs"], batch["acs"]), n, "qf2")
    td1 = y - q1
    loss = _weighted_sq(td1, batch) + _weighted_sq(y - q2, batch)
    return loss, {"q1_mean": q1.detach().mean(), "q2_mean": q2.detach().mean(), "td_errors": td1.detach()}


def ag(pol: BasePol, qf: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Deterministic policy gradient loss ``-mean_B Q(s, mu(s))`` over the whole batch.

    ``qf``'s parameters are frozen while the term is built, so the loss's gradient
    reaches only the policy (it can be summed with a critic loss and backpropagated once).
    """
    acs = _mode(pol, batch["obs"])
    with _frozen(qf):
        q = per_sample(qf(batch["obs"], acs), len(acs), "qf")
    return -q.mean(), {}


def sac(
    pol: BasePol,
    qf1: torch.nn.Module,
    qf2: torch.nn.Module,
    target_qf1: torch.nn.Module,
    target_qf2: torch.nn.Module,
    log_alpha: torch.Tensor,
    batch: Batch,
    gamma: float,
    target_ent: float,
    generator: torch.Generator | None = None,
    nstep: bool = False,
) -> tuple[torch.Tensor, Info]:
    """Soft actor-critic, all three terms in one scalar whose gradient is each part's own.

    With ``alpha = exp(log_alpha)`` (detached in the first two terms), ``a~ ~ pi(.|s)``
    and ``a~' ~ pi(.|s')`` reparameterized tanh-squashed Gaussian samples and their
    log-likelihoods (with the tanh log-det correction, ``pol.pd.rsample_with_llh``):

    * critics: ``sum_i 0.5 * mean(w * (Q_i(s, a) - y)**2)``,
      ``y = r + gamma (1 - d) (min_i Q_i'(s', a~') - alpha log pi(a~'|s'))``;
    * policy: ``mean(alpha log pi(a~|s) - min_i Q_i(s, a~))``, with the critics' parameters
      frozen so no gradient reaches them;
    * temperature: ``-mean(log_alpha * (log pi(a~|s) + target_ent))`` (detached log pi).

    The sum is minimized with one backward pass and one step of each optimizer. Shapes:
    ``log_alpha: ()``; batch columns ``(B, ...)``. ``info``: ``q1_mean``, ``q2_mean``,
    ``pol_loss``, ``qf_loss``, ``alpha_loss``, ``alpha``, ``ent`` (``-mean log pi``),
    ``td_errors: (B,)``.
    """
    pd = pol.pd
    if not isinstance(pd, SquashedGaussianPd):
        raise TypeError(
            f"the SAC loss needs a tanh-squashed Gaussian policy (SquashedGaussianPol), got {type(pol).__name__}"
        )
    check_float("target_ent", target_ent)
    rews, next_obs, disc = _transition(batch, gamma, nstep)
    obs, n = batch["obs"], len(rews)
    pi_acs, llh = pd.rsample_with_llh(pol(obs), generator)
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        next_acs, next_llh = pd.rsample_with_llh(pol(next_obs), generator)
        next_q = _min_q(target_qf1, target_qf2, next_obs, next_acs, n, "target_qf")
        y = rews + disc * (next_q - alpha * next_llh)
    q1 = per_sample(qf1(obs, batch["acs"]), n, "qf1")
    q2 = per_sample(qf2(obs, batch["acs"]), n, "qf2")
    td1 = y - q1
    qf_loss = _weighted_sq(td1, batch) + _weighted_sq(y - q2, batch)
    with _frozen(qf1, qf2):
        q_pi = _min_q(qf1, qf2, obs, pi_acs, n, "qf")
    pol_loss = (alpha * llh - q_pi).mean()
    alpha_loss = -(log_alpha * (llh.detach() + target_ent)).mean()
    info = {
        "q1_mean": q1.detach().mean(),
        "q2_mean": q2.detach().mean(),
        "pol_loss": pol_loss.detach(),
        "qf_loss": qf_loss.detach(),
        "alpha_loss": alpha_loss.detach(),
        "alpha": alpha,
        "ent": -llh.detach().mean(),
        "td_errors": td1.detach(),
    }
    return qf_loss + pol_loss + alpha_loss, info


def dqn(
    qf: torch.nn.Module,
    target_qf: torch.nn.Module,
    batch: Batch,
    gamma: float,
    double: bool = True,
    huber: bool = True,
    nstep: bool = False,
) -> tuple[torch.Tensor, Info]:
    """(Double) DQN loss over a discrete Q-function ``qf: (B, *obs_shape) -> (B, n)``.

    ``y = r + gamma (1 - d) Q'(s', argmax_a Q(s', a))`` with ``double`` (van Hasselt et
    al., 2016), else ``max_a Q'(s', a)``. The loss is the mean (importance-weighted)
    Huber loss of ``Q(s, a) - y`` with ``huber``, else ``0.5 * mean(w * td**2)``.
    ``info``: ``q_mean``, ``td_errors: (B,)``.
    """
    rews, next_obs, disc = _transition(batch, gamma, nstep)
    with torch.no_grad():
        next_targ = _q_table(target_qf(next_obs), len(rews), "target_qf")
        if double:
            next_acs = qf(next_obs).argmax(-1, keepdim=True)
            next_q = next_targ.gather(-1, next_acs).squeeze(-1)
        else:
            next_q = next_targ.max(-1).values
        y = rews + disc * next_q
    q = _q_table(qf(batch["obs"]), len(rews), "qf").gather(-1, batch["acs"].long().reshape(-1, 1)).squeeze(-1)
    td = y - q
    if huber:
        per = torch.nn.functional.smooth_l1_loss(q, y, reduction="none")
        loss = (per * batch["weights"]).mean() if "weights" in batch else per.mean()
    else:
        loss = _weighted_sq(td, batch)
    return loss, {"q_mean": q.detach().mean(), "td_errors": td.detach()}


# ---------------------------------------------------------------------------- imitation
# Imitation losses read ``obs`` and the expert's ``acs`` (in the policy's own space:
# ``[-1, 1]`` for rescaled Box policies, indices for Discrete ones); the distillation loss
# reads the teacher's distribution parameters from the batch (``teacher_<name>``).


def bc_llh(pol: BasePol, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Behaviour cloning of a stochastic policy: ``-mean(log pi(a_expert | s))`` over the rows."""
    params, batch = forward_rows(pol, batch, ("acs",))
    llh = pol.pd.llh(batch["acs"], params)
    return -llh.mean(), {"ent": pol.pd.ent(params).mean().detach()}


def bc_mse(pol: BasePol, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Behaviour cloning by regression: ``mean(sum_a (mode(pi(s)) - a_expert)**2)`` over the rows.

    For deterministic policies (the mode is the action) and continuous stochastic ones
    (the mode of a Gaussian is its mean, of a squashed Gaussian ``tanh(mean)``).
    """
    params, batch = forward_rows(pol, batch, ("acs",))
    pred = pol.pd.mode(params)
    target = batch["acs"].to(pred.dtype).reshape(pred.shape)
    return (pred - target).pow(2).reshape(len(pred), -1).sum(-1).mean(), {}


def distill_kl(pol: BasePol, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Teacher distillation: ``mean(KL(teacher(s) || student(s)))`` over the rows.

    The teacher's parameters are the batch columns ``teacher_<name>`` for each
    ``name`` of ``pol.pd.param_names`` (computed on the student's states, see
    :func:`trajkit.algos.on_pol_teacher_distill.add_teacher_params`).
    """
    names = pol.pd.param_names
    teacher_cols = tuple(f"teacher_{k}" for k in names)
    params, batch = forward_rows(pol, batch, teacher_cols)
    teacher = {k: batch[f"teacher_{k}"] for k in names}
    kl = pol.pd.kl_pq(teacher, params)
    return kl.mean(), {"ent": pol.pd.ent(params).mean().detach()}


# the losses of adversarial imitation and skill discovery live in their own module
from trajkit.lf_imitation import (  # noqa: E402, F401 - lf.gail_discrim etc.
    airl_discrim,
    airl_logits,
    diayn_discrim,
    diayn_rews,
    discrim_bce,
    gail_discrim,
    gradient_penalty,
)

