"""Adversarial inverse reinforcement learning, the discriminator's update (Fu et al., 2018).

AIRL's discriminator is ``D = sigma(f(s, a, s') - log pi(a|s))`` with the disentangled
``f = g(s) + gamma (1 - d) h(s') - h(s)``: ``g`` is the recovered, state-only reward,
``h`` a shaping potential. This ``train()`` takes ``num_steps`` gradient steps of
``lf.airl_discrim`` on expert and agent transitions; the learner trains on ``f`` (its
entropy term supplies ``-log pi``) through :func:`trajkit.ef.compute_pseudo_rews` or a
:class:`~trajkit.algos.reward_source.RewardSource`. Afterwards ``discrim.g`` (a
:class:`~trajkit.discrims.StateReward`) is the reward a fresh policy can be trained on;
save it with ``torch.save(discrim.g.state_dict(), FILE)``. ``examples/run_airl.py`` is the loop.
"""

from __future__ import annotations

import torch

from trajkit import lf
from trajkit.algos.common import BatchSource, TrainResult, as_generator, result_from_series, step
from trajkit.algos.gail import check_sources
from trajkit.checks import check_int
from trajkit.discrims import AIRLDiscrim
from trajkit.pols import BasePol

NEEDS = ("obs", "acs", "next_obs", "terminals")


def train(
    *,
    expert: BatchSource,
    agent: BatchSource,
    discrim: AIRLDiscrim,
    pol: BasePol,
    optim_discrim: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    max_grad_norm: float | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``discrim`` in place: ``num_steps`` steps of ``lf.airl_discrim`` on ``(B,)`` batches of each side.

    Args:
        expert: expert transitions with ``obs``, ``acs``, ``next_obs``, ``terminals``
            (``ef.add_next_obs(tk.load_traj(FILE))``).
        agent: the learner's transitions (a replay buffer or Traj) with the same columns.
        pol: the current policy, for ``log pi(a|s)`` (no gradient reaches it).
        batch_size: rows drawn from each side per step.

    Returns:
        ``losses`` per step: ``discrim_loss``, ``expert_acc``, ``agent_acc``, ``g_expert``,
        ``g_agent``; ``diagnostics``: their means.
    """
    check_int("num_steps", num_steps, min_value=0)
    check_int("batch_size", batch_size, min_value=1)
    check_sources(NEEDS, expert=expert, agent=agent)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("discrim_loss", "expert_acc", "agent_acc", "g_expert", "g_agent")}
    for _ in range(num_steps):
        e, a = expert.random_batch(batch_size, g), agent.random_batch(batch_size, g)
        loss, info = lf.airl_discrim(discrim, pol, e, a)
        step(optim_discrim, loss, discrim.parameters(), max_grad_norm)
        for k in series:
            series[k].append(info[k])
    return result_from_series(series)
