"""Diversity is all you need: the skill discriminator's update (Eysenbach et al., 2019).

A policy over :class:`~trajkit.envs.SkillEnv` observations (state plus the skill's
one-hot, skills drawn uniformly per episode) is trained by SAC on DIAYN's intrinsic
reward ``log q(z|s') - log p(z)`` (:func:`trajkit.ef.compute_diayn_rews`, or a
:class:`~trajkit.algos.reward_source.RewardSource` with ``kind="diayn"`` under SAC's
replay batches); this ``train()`` fits the skill discriminator ``q(z|s')`` on the same
transitions with ``lf.diayn_discrim``. The trained policy with a fixed skill
(``reset(options={"skill": k})``) is a starting point for a task. ``examples/run_diayn.py`` is the loop.
"""

from __future__ import annotations

import torch

from trajkit import lf
from trajkit.algos.common import BatchSource, TrainResult, as_generator, result_from_series, step
from trajkit.algos.gail import check_sources
from trajkit.checks import check_int
from trajkit.discrims import SkillDiscrim


def train(
    *,
    traj: BatchSource,
    discrim: SkillDiscrim,
    optim_discrim: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    max_grad_norm: float | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``discrim`` in place: ``num_steps`` cross-entropy steps of ``q(z|s')`` on ``(B,)`` batches of ``traj``.

    Args:
        traj: ``SkillEnv`` transitions (a replay buffer or Traj) with ``next_obs``.

    Returns:
        ``losses`` per step: ``discrim_loss``, ``skill_acc``; ``diagnostics``: their means.
    """
    check_int("num_steps", num_steps, min_value=0)
    check_int("batch_size", batch_size, min_value=1)
    check_sources(("next_obs",), traj=traj)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {"discrim_loss": [], "skill_acc": []}
    for _ in range(num_steps):
        loss, info = lf.diayn_discrim(discrim, traj.random_batch(batch_size, g))
        step(optim_discrim, loss, discrim.parameters(), max_grad_norm)
        for k in series:
            series[k].append(info[k])
    return result_from_series(series)
