"""Losses of adversarial imitation (GAIL, AIRL) and skill discovery (DIAYN); re-exported by :mod:`trajkit.lf`.

Pure functions of ``(modules, batches, hyper-parameters)`` returning ``(loss, info)``
like every loss of :mod:`trajkit.lf`, plus the two kernels they are built from:

* :func:`discrim_bce`: ``-mean_B log sigma(l_E) - mean_B log(1 - sigma(l_A))`` over
  expert logits ``l_E: (B_E,)`` and agent logits ``l_A: (B_A,)``;
* :func:`gradient_penalty`: ``mean_B (||grad_x D(x^)||_2 - 1)^2`` at points
  ``x^ = u x_E + (1 - u) x_A`` between expert and agent inputs (Gulrajani et al., 2017,
  as DAC uses it for GAIL);
* :func:`airl_logits`: ``f(s, a, s') - log pi(a|s)`` with
  ``f = g(s) + gamma (1 - d) h(s') - h(s)``;
* :func:`diayn_rews`: ``log q(z|s) - log p(z)`` with ``p(z)`` uniform over ``K`` skills.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from trajkit.checks import check_float

if TYPE_CHECKING:
    from trajkit.discrims import AIRLDiscrim, SADiscrim, SkillDiscrim
    from trajkit.pols import BasePol

Batch = dict[str, torch.Tensor]
Info = dict[str, torch.Tensor]

__all__ = ["airl_discrim", "airl_logits", "diayn_discrim", "diayn_rews", "discrim_bce", "gail_discrim",
           "gradient_penalty"]


def discrim_bce(expert_logits: torch.Tensor, agent_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a discriminator: expert rows labelled 1, agent rows 0 (each side's mean, summed).

    ``expert_logits: (B_E,)``, ``agent_logits: (B_A,)``; the result is a scalar,
    ``softplus(-l_E).mean() + softplus(l_A).mean()``.
    """
    if expert_logits.dim() != 1 or agent_logits.dim() != 1:
        raise ValueError(f"logits must be (B,), got {tuple(expert_logits.shape)} and {tuple(agent_logits.shape)}")
    return F.softplus(-expert_logits).mean() + F.softplus(agent_logits).mean()


def gradient_penalty(
    fn: torch.nn.Module | object,
    expert_x: torch.Tensor,
    agent_x: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``mean_B (||grad_x fn(x^)||_2 - 1)^2`` at ``x^ = u expert_x + (1 - u) agent_x``, ``u ~ U(0, 1)`` per row.

    ``fn`` maps inputs ``(B, D)`` to logits ``(B,)``; ``expert_x`` and ``agent_x`` are
    ``(B, D)`` (the same ``B``). The graph is kept, so the penalty's gradient reaches ``fn``.
    """
    if expert_x.shape != agent_x.shape or expert_x.dim() != 2:
        raise ValueError(f"expert_x and agent_x must both be (B, D), got {tuple(expert_x.shape)} "
                         f"and {tuple(agent_x.shape)}")
    u = torch.rand(len(expert_x), 1, generator=generator, device=expert_x.device)
    x = (u * expert_x.detach() + (1.0 - u) * agent_x.detach()).requires_grad_(True)
    out = fn(x)  # type: ignore[operator]
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return (grad.norm(2, dim=-1) - 1.0).pow(2).mean()


def _accuracies(expert_logits: torch.Tensor, agent_logits: torch.Tensor) -> Info:
    return {"expert_acc": (expert_logits > 0).float().mean().detach(),
            "agent_acc": (agent_logits < 0).float().mean().detach()}


def gail_discrim(
    discrim: SADiscrim,
    expert: Batch,
    agent: Batch,
    gp_coef: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, Info]:
    """GAIL's discriminator loss: :func:`discrim_bce` plus ``gp_coef`` times :func:`gradient_penalty`.

    ``expert`` and ``agent`` batches hold ``obs: (B, ...)`` and ``acs: (B, ...)`` (the
    same ``B`` when ``gp_coef > 0``). ``info``: ``discrim_loss`` (the BCE), ``gp``,
    ``expert_acc`` and ``agent_acc`` (fractions classified right at threshold 0.5).
    """
    check_float("gp_coef", gp_coef, min_value=0.0)
    xe, xa = discrim.features(expert["obs"], expert["acs"]), discrim.features(agent["obs"], agent["acs"])
    le, la = discrim.from_features(xe), discrim.from_features(xa)
    bce = discrim_bce(le, la)
    gp = gradient_penalty(discrim.from_features, xe, xa, generator) if gp_coef > 0 else torch.zeros(())
    info = {"discrim_loss": bce.detach(), "gp": gp.detach(), **_accuracies(le, la)}
    return bce + gp_coef * gp, info


def airl_logits(discrim: AIRLDiscrim, pol: BasePol, batch: Batch) -> torch.Tensor:
    """AIRL's logits ``f(s, a, s') - log pi(a|s): (B,)``; ``log pi`` is the current policy's, without gradient.

    ``batch`` holds ``obs``, ``acs``, ``next_obs`` and ``terminals`` (``(B, ...)``).
    """
    with torch.no_grad():
        llh = pol.pd.llh(batch["acs"], pol(batch["obs"]))
    return discrim.f(batch["obs"], batch["next_obs"], batch["terminals"]) - llh


def airl_discrim(discrim: AIRLDiscrim, pol: BasePol, expert: Batch, agent: Batch) -> tuple[torch.Tensor, Info]:
    """AIRL's discriminator loss: :func:`discrim_bce` of :func:`airl_logits` of both batches.

    ``info``: ``discrim_loss``, ``expert_acc``, ``agent_acc``, ``g_expert`` and
    ``g_agent`` (the mean recovered reward of each side).
    """
    le, la = airl_logits(discrim, pol, expert), airl_logits(discrim, pol, agent)
    loss = discrim_bce(le, la)
    with torch.no_grad():
        g = {"g_expert": discrim.g(expert["obs"]).mean(), "g_agent": discrim.g(agent["obs"]).mean()}
    return loss, {"discrim_loss": loss.detach(), **_accuracies(le, la), **g}


def diayn_rews(logits: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """DIAYN's reward ``log q(z|s) - log p(z): (B,)`` of logits ``q: (B, K)`` and skills ``z: (B,)``, ``p = 1/K``."""
    if logits.dim() != 2 or skills.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (B, K) and skills (B,), got {tuple(logits.shape)} and {tuple(skills.shape)}")
    logq = F.log_softmax(logits, -1).gather(-1, skills.long().unsqueeze(-1)).squeeze(-1)
    return logq + math.log(logits.shape[-1])


def diayn_discrim(discrim: SkillDiscrim, batch: Batch) -> tuple[torch.Tensor, Info]:
    """Cross-entropy of ``q(z|s')`` at the reached states ``next_obs: (B, S + K)`` (skill read from their one-hot).

    ``info``: ``discrim_loss`` and ``skill_acc`` (the fraction whose argmax is the skill).
    """
    logits = discrim(batch["next_obs"])
    z = discrim.split(batch["next_obs"])[1]
    loss = F.cross_entropy(logits, z)
    return loss, {"discrim_loss": loss.detach(), "skill_acc": (logits.argmax(-1) == z).float().mean().detach()}
