"""Fitting a dynamics model or ensemble (PETS, MBPO, machina's ``train_dm``) with held-out early stopping.

The transitions are the Traj's (or replay buffer's) ``(obs, acs, next_obs, rews)``
rows. ``next_obs`` comes from ``ef.add_next_obs``, which takes an episode's last
``next_obs`` from its real ``final_obs``: no pair ever joins one episode's last step to
the next episode's first, whether the episode terminated or was truncated.

A random ``holdout_frac`` of the transitions is held out; the rest sets the model's
input and target statistics and is trained on, each member on its own bootstrap
resample (or permutation). After every epoch the held-out mean squared error (in
standardized target units, averaged over members) is measured; training stops once it
has not improved for ``patience`` epochs, and the model is left at its best epoch.
"""

from __future__ import annotations

import copy
import math

import torch

from trajkit import ef
from trajkit.algos.common import BatchSource, TrainResult, as_generator, step
from trajkit.checks import check_float, check_int
from trajkit.models.dynamics import DynamicsModel
from trajkit.traj import MissingColumnError, Traj

Batch = dict[str, torch.Tensor]


def transitions(traj: BatchSource) -> Batch:
    """The ``(N, ...)`` columns ``obs``, ``acs``, ``next_obs``, ``rews`` of a Traj or replay buffer.

    A Traj needs ``next_obs`` (``ef.add_next_obs``): shifting ``obs`` by one here would
    pair episodes' boundaries, so it is refused with a clear error instead.
    """
    keys = list(traj.keys())
    for name in ("obs", "acs", "next_obs", "rews"):
        if name not in keys:
            hint = f"run {ef.PRODUCERS[name]} first" if name in ef.PRODUCERS else ""
            raise MissingColumnError(name, keys, hint=hint)
    if isinstance(traj, Traj):
        return {k: traj[k] for k in ("obs", "acs", "next_obs", "rews")}
    get = getattr(traj, "get", None)
    if get is None:
        raise TypeError(f"traj must be a Traj or a ReplayBuffer, got {type(traj).__name__}")
    batch = get(torch.arange(traj.num_step))
    return {k: batch[k] for k in ("obs", "acs", "next_obs", "rews")}


def _member_indices(n: int, num_members: int, bootstrap: bool, g: torch.Generator | None) -> torch.Tensor:
    """``(E, n)`` row indices of one epoch: a bootstrap resample or a permutation per member."""
    if bootstrap:
        return torch.randint(n, (num_members, n), generator=g)
    return torch.stack([torch.randperm(n, generator=g) for _ in range(num_members)])


def train(
    *,
    traj: BatchSource,
    model: DynamicsModel,
    optim: torch.optim.Optimizer,
    max_epochs: int,
    batch_size: int,
    holdout_frac: float = 0.2,
    patience: int = 5,
    bootstrap: bool = True,
    generator: torch.Generator | int | None = None,
) -> TrainResult:
    """Fit ``model`` (every member at once) to the transitions of ``traj``, in place.

    Args:
        traj: a Traj with ``next_obs`` (``ef.add_next_obs``) or a replay buffer.
        model: a :class:`~trajkit.models.DynamicsModel` or ``GaussianDynamicsModel``
            (``E`` members); with ``learn_reward`` it also fits ``rews``.
        optim: the optimizer over ``model``'s parameters (weight decay goes here).
        max_epochs: passes over the training split at most.
        batch_size: rows per member per gradient step.
        holdout_frac: fraction of transitions held out for early stopping, in
            ``[0, 1)`` (0: no validation, train ``max_epochs``).
        patience: epochs without a better held-out error before stopping.
        bootstrap: each member trains on its own resample with replacement (PETS);
            False: on its own permutation of the same rows.
        generator: the split, the resamples and the batch order.

    Returns:
        ``losses["train_loss"]`` (mean loss per epoch, summed over members) and
        ``losses["val_mse"]`` per epoch; ``diagnostics``: ``epochs``, ``best_val_mse``
        (NaN without a holdout) and ``best_epoch``.
    """
    max_epochs = check_int("max_epochs", max_epochs, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    holdout_frac = check_float("holdout_frac", holdout_frac, min_value=0.0, max_value=0.99)
    patience = check_int("patience", patience, min_value=1)
    if not isinstance(model, DynamicsModel):
        raise TypeError(f"model must be a DynamicsModel or GaussianDynamicsModel, got {type(model).__name__}")
    g = as_generator(generator)
    cols = transitions(traj)
    x = model.raw_inputs(cols["obs"], cols["acs"])
    y = model.raw_targets(cols["obs"], cols["next_obs"], cols["rews"])
    n = len(x)
    n_val = int(math.floor(holdout_frac * n))
    if n - n_val < 1:
        raise ValueError(f"traj has {n} transitions; at least one must remain after the holdout of {n_val}")
    perm = torch.randperm(n, generator=g).to(x.device)
    xv, yv, xt, yt = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    model.fit_normalization(xt, yt)
    yt, yv = model.out_norm(yt), model.out_norm(yv)
    result = TrainResult()
    best, best_epoch, best_state = math.inf, -1, None
    for epoch in range(max_epochs):
        idx = _member_indices(len(xt), model.num_members, bootstrap, g).to(x.device)
        total, batches = 0.0, 0
        for s in range(0, len(xt), batch_size):
            b = idx[:, s : s + batch_size]
            loss = model.loss(model.forward_raw(xt[b]), yt[b]).sum() + model.regularizer()
            step(optim, loss)
            total, batches = total + float(loss.detach()), batches + 1
        result.append(train_loss=total / batches)
        if n_val == 0:
            continue
        with torch.no_grad():
            val = float((model.forward_raw(xv)["mean"] - yv).pow(2).mean())
        result.append(val_mse=val)
        if val < best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.diagnostics = {"epochs": float(len(result.losses["train_loss"])),
                          "best_val_mse": best if n_val else float("nan"), "best_epoch": float(best_epoch)}
    return result
