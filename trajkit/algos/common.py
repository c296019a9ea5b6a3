"""Pieces every algorithm shares: the result record, column checks, optimizer steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from trajkit.traj import MissingColumnError, Traj, _as_generator

as_generator = _as_generator


@runtime_checkable
class BatchSource(Protocol):
    """What off-policy ``train()`` functions sample from: a :class:`Traj` or a replay buffer.

    ``random_batch(batch_size, generator)`` returns a dict of ``(B, ...)`` tensors.
    """

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> dict[str, torch.Tensor]:
        ...


def sample_batch(
    source: BatchSource, batch_size: int, per_beta: float, generator: torch.Generator | None
) -> tuple[dict[str, torch.Tensor], Callable[[torch.Tensor], None]]:
    """A batch from ``source`` and a function taking its ``(B,)`` TD errors.

    From a prioritized buffer (anything with ``sample`` and ``update_pris``) the batch is
    drawn with importance exponent ``per_beta`` (it carries ``idx`` and ``weights``) and the
    function sets those steps' priorities to ``|TD error|``; from anything else the batch
    is uniform and the function does nothing.
    """
    if hasattr(source, "update_pris") and hasattr(source, "sample"):
        batch = source.sample(batch_size, per_beta, generator)
        idx = batch["idx"]
        return batch, lambda td: source.update_pris(idx, td.abs())
    return source.random_batch(batch_size, generator), lambda td: None


def polyak_update(
    target: torch.nn.Module | Sequence[torch.Tensor], source: torch.nn.Module | Sequence[torch.Tensor], tau: float
) -> None:
    """Move ``target``'s parameters (and floating buffers) towards ``source``'s in place.

    ``target <- (1 - tau) * target + tau * source``, as one fused ``lerp`` over all
    tensors; ``tau=1`` copies. ``target`` and ``source`` are modules of the same
    structure, or matching lists of tensors (from :func:`polyak_tensors`, built once
    outside a hot loop).
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    t = polyak_tensors(target) if isinstance(target, torch.nn.Module) else list(target)
    s = polyak_tensors(source) if isinstance(source, torch.nn.Module) else list(source)
    if len(t) != len(s):
        raise ValueError("polyak_update needs two modules with the same parameters")
    with torch.no_grad():
        if tau == 1.0:
            torch._foreach_copy_(t, s)
        else:
            torch._foreach_lerp_(t, s, tau)


def polyak_tensors(*modules: torch.nn.Module) -> list[torch.Tensor]:
    """The tensors :func:`polyak_update` averages: parameters and floating buffers of ``modules``, in order."""
    out: list[torch.Tensor] = []
    for m in modules:
        out += [p for p in m.parameters()] + [b for b in m.buffers() if b.is_floating_point()]
    return out


@dataclass
class TrainResult:
    """What a ``train()`` call returns.

    Attributes:
        losses: named series, one value per epoch (on-policy) or per gradient step
            (off-policy), e.g. ``losses["pol_loss"]``.
        diagnostics: named scalars about the update, e.g. ``kl``, ``ent``,
            ``clip_frac``, ``explained_var``.
    """

    losses: dict[str, list[float]] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)

    def append(self, **values: float | torch.Tensor) -> None:
        for k, v in values.items():
            self.losses.setdefault(k, []).append(float(v.detach()) if isinstance(v, torch.Tensor) else float(v))

    def summary(self) -> dict[str, float]:
        """Last value of every loss series and every diagnostic, flat (for loggers)."""
        out = {k: v[-1] for k, v in self.losses.items() if v}
        out.update(self.diagnostics)
        return out


def result_from_series(series: dict[str, list[torch.Tensor]]) -> TrainResult:
    """A :class:`TrainResult` of per-step scalar tensors: ``losses`` hold the series (one
    conversion, no sync per step), ``diagnostics`` the mean of each non-empty series."""
    result = TrainResult()
    for k, v in series.items():
        if v:
            result.losses[k] = torch.stack([x.detach() for x in v]).tolist()
    result.diagnostics = {k: sum(v) / len(v) for k, v in result.losses.items()}
    return result


def require_transitions(source: BatchSource, nstep: bool = False) -> None:
    """Raise :class:`MissingColumnError` (naming the estimator to run) if ``source``'s
    batches would lack the transition columns off-policy losses read."""
    names = ("nstep_rets", "nstep_next_obs", "nstep_discounts") if nstep else ("next_obs", "terminals")
    keys = source.keys() if hasattr(source, "keys") else None
    if keys is None or len(keys) == 0:
        return  # an empty buffer raises its own error when sampled
    for n in ("obs", "acs", "rews", *names):
        if n not in keys:
            raise MissingColumnError(n, list(keys))


def require(traj: Traj, *names: str) -> None:
    """Raise :class:`MissingColumnError` naming the estimator to run for the first missing column."""
    for n in names:
        if n not in traj:
            raise MissingColumnError(n, traj.keys())


def step(
    optim: torch.optim.Optimizer,
    loss: torch.Tensor,
    params: Iterable[torch.nn.Parameter] | None = None,
    max_grad_norm: float | None = None,
) -> None:
    """Zero grads, backpropagate ``loss``, clip the gradient norm of ``params`` if asked, step."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        if params is None:
            params = [p for g in optim.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(list(params), max_grad_norm)
    optim.step()


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """``1 - Var(target - pred) / Var(target)``; 1 is perfect, 0 is no better than a constant."""
    var = target.var()
    if float(var) == 0.0:
        return float("nan")
    return float(1.0 - (target - pred).var() / var)


def fit_vf(
    *,
    traj: Traj,
    vf: torch.nn.Module,
    optim_vf: torch.optim.Optimizer,
    epoch: int,
    batch_size: int,
    max_grad_norm: float | None,
    generator: torch.Generator | None,
) -> list[float]:
    """``epoch`` passes of value regression (``lf.monte_carlo`` on ``rets``) in minibatches.

    Returns the step-weighted mean loss of each pass. Used by the algorithms that fit
    the value function after the policy step (TRPO, VPG).
    """
    from trajkit import lf  # algos depend on lf; imported here to keep this module's imports light

    losses = []
    for _ in range(epoch):
        total, n = 0.0, 0
        for batch in traj.iterate(batch_size, epoch=1, shuffle=True, generator=generator):
            vf_loss, _ = lf.monte_carlo(vf, batch)
            step(optim_vf, vf_loss, vf.parameters(), max_grad_norm)
            total, n = total + float(vf_loss.detach()) * len(batch["obs"]), n + len(batch["obs"])
        losses.append(total / n)
    return losses
