"""Behaviour cloning: supervised learning of the expert's actions on the expert's states.

For each epoch, for each minibatch of the expert Traj: one policy step on the
log-likelihood loss ``lf.bc_llh`` (stochastic policies) or the squared error
``lf.bc_mse`` (deterministic ones, or any continuous policy with ``loss="mse"``).
Needs the columns ``obs`` and ``acs`` (the expert's actions in the policy's own space).
A recurrent policy trains on whole-episode sequence batches from its initial state;
the expert's own stored columns (distribution parameters, ``hs``) are not used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from trajkit import ef, lf
from trajkit.algos.common import (
    TrainResult,
    any_recurrent,
    as_generator,
    batch_steps,
    check_minibatch_args,
    full_batch,
    minibatches,
    require_steps,
    step,
)
from trajkit.expert_data import as_expert_traj, steps_only
from trajkit.pds import CategoricalPd, DeterministicPd, MultiCategoricalPd
from trajkit.pols import ArgmaxQfPol
from trajkit.traj import Traj

if TYPE_CHECKING:
    from trajkit.pols import BasePol

LOSSES = ("auto", "llh", "mse")
Loss = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def bc_loss(pol: BasePol, loss: str = "auto") -> Loss:
    """The loss function for ``pol``: ``lf.bc_mse`` for a deterministic policy, else ``lf.bc_llh``
    (``loss="auto"``); ``"llh"`` or ``"mse"`` choose one. ValueError where it does not apply."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    name = type(pol).__name__
    if not any(p.requires_grad for p in pol.parameters()):
        raise ValueError(f"{name} has no trainable parameters; behaviour cloning needs a parametric policy")
    if isinstance(pol, ArgmaxQfPol):
        raise ValueError("ArgmaxQfPol acts by a Q-function's argmax, which has no gradient; clone into a policy "
                         "such as CategoricalPol or DeterministicPol instead")
    deterministic = isinstance(pol.pd, DeterministicPd)
    if loss == "auto":
        loss = "mse" if deterministic else "llh"
    if loss == "llh" and deterministic:
        raise ValueError(f"{name} is deterministic and has no log-likelihood; use loss='mse'")
    if loss == "mse" and isinstance(pol.pd, CategoricalPd | MultiCategoricalPd):
        raise ValueError(f"{name} has discrete actions; the squared error does not apply, use loss='llh'")
    return lf.bc_mse if loss == "mse" else lf.bc_llh


def prepare(expert: Traj | str | Path, pol: BasePol) -> Traj:
    """The expert data as ``pol`` trains on it: ``obs`` and ``acs`` only, plus ``h_masks`` for a recurrent ``pol``."""
    traj = steps_only(as_expert_traj(expert))
    require_steps(traj)
    return ef.compute_h_masks(traj) if any_recurrent(pol) else traj


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
    """Update ``pol`` in place by ``epoch`` passes of behaviour cloning on ``traj``.

    Args:
        traj: the expert data (a Traj with ``obs: (N, *obs_shape)`` and ``acs: (N, *ac_shape)``,
            or the path of a saved one).
        epoch: passes over the data. batch_size: minibatch size in steps (the last partial
            batch is used too; for a recurrent ``pol``, about that many steps of whole episodes).
        loss: ``"auto"`` (squared error for a deterministic policy, negative log-likelihood
            otherwise), ``"llh"`` or ``"mse"``.
        max_grad_norm: gradient-norm clip (None: none).
        generator: minibatch shuffling (a generator, a seed, or None).

    Returns:
        ``losses["bc_loss"]`` per epoch (step-weighted mean); ``diagnostics`` ``bc_loss``
        (last epoch) and ``epochs_run``.
    """
    check_minibatch_args(epoch=epoch, batch_size=batch_size, max_grad_norm=max_grad_norm)
    loss_fn = bc_loss(pol, loss)
    data = prepare(traj, pol)
    g = as_generator(generator)
    result = TrainResult()
    for _ in range(epoch):
        total, n = 0.0, 0
        for batch in minibatches(data, [pol], batch_size, g):
            value, _ = loss_fn(pol, batch)
            step(optim_pol, value, pol.parameters(), max_grad_norm)
            w = batch_steps(batch)
            total, n = total + float(value.detach()) * w, n + w
        result.append(bc_loss=total / n)
    result.diagnostics.update(bc_loss=result.losses["bc_loss"][-1], epochs_run=float(epoch))
    return result


def evaluate_loss(*, traj: Traj | str | Path, pol: BasePol, loss: str = "auto") -> float:
    """The cloning loss of ``pol`` on held-out expert data ``traj`` (no gradient): the mean
    negative log-likelihood per step, or the mean squared error per step (see :func:`bc_loss`)."""
    loss_fn = bc_loss(pol, loss)
    data = prepare(traj, pol)
    with torch.no_grad():
        value, _ = loss_fn(pol, full_batch(data, [pol]))
    return float(value)


def split_epis(traj: Traj, num_val_epis: int) -> tuple[Traj, Traj]:
    """``(train, validation)``: the last ``num_val_epis`` episodes of ``traj`` held out."""
    if not 1 <= num_val_epis < traj.num_epi:
        raise ValueError(f"num_val_epis must be in [1, {traj.num_epi - 1}] for {traj.num_epi} episodes, "
                         f"got {num_val_epis}")
    cut = traj.num_epi - num_val_epis
    return traj.select_epis(list(range(cut))), traj.select_epis(list(range(cut, traj.num_epi)))
