"""Generative adversarial imitation learning, the discriminator's update (Ho & Ermon, 2016).

GAIL alternates two unchanged pieces: this ``train()``, ``num_steps`` gradient steps of
``lf.gail_discrim`` (expert rows labelled 1, the agent's 0, with an optional gradient
penalty) on batches drawn from the expert's and the agent's steps; and any RL learner on
the agent's steps with the rewards the discriminator gives
(:func:`trajkit.ef.compute_pseudo_rews` before PPO/TRPO, or a
:class:`~trajkit.algos.reward_source.RewardSource` under SAC's replay batches).
``examples/run_gail.py`` is the loop.
"""

from __future__ import annotations

import torch

from trajkit import lf
from trajkit.algos.common import BatchSource, TrainResult, as_generator, result_from_series, step
from trajkit.checks import check_float, check_int
from trajkit.discrims import SADiscrim
from trajkit.traj import MissingColumnError


def check_sources(needs: tuple[str, ...], **sources: object) -> None:
    """TypeError unless each source is a Traj or a replay buffer; ValueError if empty;
    MissingColumnError for a column of ``needs`` it lacks."""
    for name, src in sources.items():
        if not isinstance(src, BatchSource):
            raise TypeError(f"{name} must be a Traj or a replay buffer, got {type(src).__name__}")
        if src.num_step == 0:
            raise ValueError(f"{name} has no steps")
        keys = list(src.keys())
        for n in needs:
            if n not in keys:
                hint = "run ef.add_next_obs first" if n in ("next_obs", "terminals") else ""
                raise MissingColumnError(n, keys, hint=hint)


def train(
    *,
    expert: BatchSource,
    agent: BatchSource,
    discrim: SADiscrim,
    optim_discrim: torch.optim.Optimizer,
    num_steps: int,
    batch_size: int,
    gp_coef: float = 0.0,
    max_grad_norm: float | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``discrim`` in place: ``num_steps`` steps of ``lf.gail_discrim`` on ``(B,)`` batches of each side.

    Args:
        expert: the expert's steps (a Traj, e.g. ``tk.load_traj(FILE)``) with ``obs``, ``acs``.
        agent: the learner's steps (this iteration's Traj, or the replay buffer).
        discrim: logits ``(B,)`` of ``(obs, acs)``; high means expert.
        batch_size: rows drawn from each side per step (uniformly, with replacement).
        gp_coef: weight of the gradient penalty (0: none; DAC uses 10).
        generator: batch sampling and the penalty's interpolation.

    Returns:
        ``losses`` per step: ``discrim_loss`` (BCE), ``gp``, ``expert_acc``,
        ``agent_acc``; ``diagnostics``: their means.
    """
    check_int("num_steps", num_steps, min_value=0)
    check_int("batch_size", batch_size, min_value=1)
    check_float("gp_coef", gp_coef, min_value=0.0)
    check_sources(("obs", "acs"), expert=expert, agent=agent)
    g = as_generator(generator)
    series: dict[str, list[torch.Tensor]] = {k: [] for k in ("discrim_loss", "gp", "expert_acc", "agent_acc")}
    for _ in range(num_steps):
        loss, info = lf.gail_discrim(discrim, expert.random_batch(batch_size, g), agent.random_batch(batch_size, g),
                                     gp_coef, g)
        step(optim_discrim, loss, discrim.parameters(), max_grad_norm)
        for k in series:
            series[k].append(info[k])
    return result_from_series(series)
