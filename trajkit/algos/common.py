"""Pieces every algorithm shares: the result record, column checks, optimizer steps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from trajkit.traj import MissingColumnError, Traj, _as_generator

as_generator = _as_generator


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
