"""DAgger (Ross et al., 2011): label the learner's own states with the expert, aggregate, retrain.

One DAgger round is: roll out the learner (a sampler's job, outside this module), then
:func:`label` its states with the expert's actions, :func:`aggregate` them with the data
so far, and :func:`train` the learner on the aggregate by behaviour cloning. The expert
is any callable of a batch of observations ``(B, *obs_shape) -> actions (B, *ac_shape)``
in the learner's action space, or a policy (its mode is used).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from trajkit.algos import behavior_clone
from trajkit.algos.common import TrainResult
from trajkit.expert_data import as_expert_traj, steps_only
from trajkit.pol_base import BasePol
from trajkit.traj import Traj, concat

if TYPE_CHECKING:
    Expert = BasePol | Callable[[torch.Tensor], torch.Tensor]


def expert_actions(expert: Expert, obs: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The expert's actions ``(N, *ac_shape)`` for ``obs: (N, *obs_shape)``, without gradients.

    A :class:`~trajkit.pol_base.BasePol` acts deterministically (a recurrent one is refused:
    its state would depend on the learner's trajectory); any other callable is called on
    chunks of ``batch_size`` observations and must return one action per observation.
    """
    if isinstance(expert, BasePol):
        if expert.recurrent:
            raise ValueError("a recurrent expert policy cannot label single states; wrap it in a callable of obs")
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda o: expert.act(o, deterministic=True)[0]  # noqa: E731
    elif callable(expert):
        fn = expert
    else:
        raise TypeError(f"expert must be a policy or a callable of observations, got {type(expert).__name__}")
    outs = []
    with torch.no_grad():
        for chunk in obs.split(batch_size):
            acs = torch.as_tensor(fn(chunk))
            if acs.shape[:1] != chunk.shape[:1]:
                raise ValueError(f"the expert returned {tuple(acs.shape)} for {len(chunk)} observations; "
                                 "it must return one action per observation")
            outs.append(acs)
    return torch.cat(outs)


def label(traj: Traj, expert: Expert) -> Traj:
    """The learner's states of ``traj`` with the expert's actions: ``obs`` and ``acs: (N, *ac_shape)``."""
    acs = expert_actions(expert, traj["obs"])
    return steps_only(traj, ("obs",)).with_columns(acs=acs)


def aggregate(data: Traj | None, new: Traj) -> Traj:
    """``new`` appended to the aggregated data so far (``None``: the first round)."""
    new = steps_only(new)
    return new if data is None else concat([data, new])


def train(
    *,
    traj: Traj | str | Path,
    pol: BasePol,
    optim_pol: torch.optim.Optimizer,
    epoch: int,
    batch_size: int,
    loss: str = "auto",
    max_grad_norm: float | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Retrain ``pol`` in place on the aggregated, expert-labelled data ``traj`` (``obs``, ``acs``).

    The same update as :func:`trajkit.algos.behavior_clone.train` (see its arguments);
    a DAgger round differs only in where the data came from.
    """
    return behavior_clone.train(traj=as_expert_traj(traj), pol=pol, optim_pol=optim_pol, epoch=epoch,
                                batch_size=batch_size, loss=loss, max_grad_norm=max_grad_norm, generator=generator)
