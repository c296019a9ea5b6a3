"""On-policy teacher distillation: on the student's own states, match the teacher's action distribution.

The student is rolled out (a sampler's job), :func:`add_teacher_params` stores the
teacher's distribution parameters for those states (``teacher_<name>: (N, ...)``), and
:func:`train` minimizes ``lf.distill_kl``, the mean ``KL(teacher || student)``, in
minibatches. Student and teacher may differ in architecture (and in what they observe:
the teacher reads the column ``teacher_obs_key``); their distributions must be of one kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from trajkit import lf
from trajkit.algos.common import (
    TrainResult,
    as_generator,
    batch_steps,
    check_minibatch_args,
    minibatches,
    require_steps,
    step,
)
from trajkit.expert_data import steps_only
from trajkit.pds import DeterministicPd
from trajkit.traj import Traj

if TYPE_CHECKING:
    from trajkit.pols import BasePol


def check_pair(student: BasePol, teacher: BasePol) -> None:
    """ValueError unless both distributions are of one stochastic kind (so the KL is defined)."""
    if type(student.pd) is not type(teacher.pd):
        raise ValueError(f"student and teacher need the same kind of distribution for the KL, got "
                         f"{type(student.pd).__name__} (student) and {type(teacher.pd).__name__} (teacher)")
    if isinstance(student.pd, DeterministicPd):
        raise ValueError("deterministic policies have no KL; distill them with behavior_clone (loss='mse') on "
                         "teacher-labelled states instead")
    if teacher.recurrent:
        raise ValueError("a recurrent teacher is not supported: its state on the student's states is undefined")


def add_teacher_params(traj: Traj, teacher: BasePol, teacher_obs_key: str = "obs") -> Traj:
    """``traj``'s ``obs`` with the teacher's parameters ``teacher_<name>: (N, ...)`` on ``traj[teacher_obs_key]``."""
    if teacher_obs_key not in traj:
        raise ValueError(f"the teacher reads the column {teacher_obs_key!r}, which traj lacks (has {traj.keys()})")
    with torch.no_grad():
        params = teacher(traj[teacher_obs_key])
    return steps_only(traj, ("obs",)).with_columns(**{f"teacher_{k}": v for k, v in params.items()})


def train(
    *,
    traj: Traj,
    student: BasePol,
    teacher: BasePol,
    optim: torch.optim.Optimizer,
    epoch: int,
    batch_size: int,
    teacher_obs_key: str = "obs",
    max_grad_norm: float | None = None,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Update ``student`` in place: ``epoch`` passes of ``KL(teacher || student)`` on ``traj``'s states.

    Args:
        traj: the student's own rollouts (``obs: (N, *obs_shape)``; the teacher's
            observations in ``teacher_obs_key``, ``obs`` by default).
        optim: the student's optimizer. epoch, batch_size: passes and minibatch size in steps
            (the last partial batch is used; a recurrent student gets whole episodes).
        max_grad_norm: gradient-norm clip (None: none). generator: minibatch shuffling.

    Returns:
        ``losses["kl"]`` per epoch (step-weighted mean); ``diagnostics`` ``kl`` and ``ent`` (last epoch).
    """
    check_minibatch_args(epoch=epoch, batch_size=batch_size, max_grad_norm=max_grad_norm)
    check_pair(student, teacher)
    require_steps(traj)
    data = add_teacher_params(traj, teacher, teacher_obs_key)
    if student.recurrent:
        from trajkit import ef

        data = ef.compute_h_masks(data)
    g = as_generator(generator)
    result = TrainResult()
    for _ in range(epoch):
        sums, n = {"kl": 0.0, "ent": 0.0}, 0
        for batch in minibatches(data, [student], batch_size, g):
            kl, info = lf.distill_kl(student, batch)
            step(optim, kl, student.parameters(), max_grad_norm)
            w = batch_steps(batch)
            sums["kl"] += float(kl.detach()) * w
            sums["ent"] += float(info["ent"]) * w
            n += w
        result.append(kl=sums["kl"] / n)
        result.diagnostics.update(kl=sums["kl"] / n, ent=sums["ent"] / n)
    return result
