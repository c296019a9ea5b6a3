"""Pieces every algorithm shares: the result record, argument checks, optimizer steps, Polyak averaging.

(Batch sources and prioritized sampling live in :mod:`trajkit.algos.sources`; they are
re-exported here.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from trajkit.algos.sources import BatchSource, PrioritizedSource, check_source, require_transitions, sample_batch
from trajkit.checks import check_int, check_optional_float, check_unit
from trajkit.traj import Traj, _as_generator

as_generator = _as_generator

__all__ = [
    "BatchSource",
    "PrioritizedSource",
    "TrainResult",
    "any_recurrent",
    "as_generator",
    "batch_steps",
    "check_log_alpha",
    "check_minibatch_args",
    "check_off_policy_args",
    "check_source",
    "explained_variance",
    "fit_vf",
    "full_batch",
    "minibatches",
    "polyak_tensors",
    "polyak_update",
    "require_steps",
    "require_transitions",
    "result_from_series",
    "sample_batch",
    "step",
]


def polyak_update(
    target: torch.nn.Module | Sequence[torch.Tensor], source: torch.nn.Module | Sequence[torch.Tensor], tau: float
) -> None:
    """Move ``target``'s parameters (and floating buffers) towards ``source``'s in place.

    ``target <- (1 - tau) * target + tau * source``, as one fused ``lerp`` over all
    tensors; ``tau=1`` copies. ``target`` and ``source`` are modules of the same
    structure, or matching lists of tensors (from :func:`polyak_tensors`, built once
    outside a hot loop).
    """
    check_unit("tau", tau)
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


def require_steps(traj: Traj) -> None:
    """ValueError if ``traj`` holds no steps (an on-policy update needs at least one)."""
    if traj.num_step == 0:
        raise ValueError(f"traj has no steps (num_step=0, num_epi={traj.num_epi}); sample before train()")


def check_minibatch_args(*, epoch: int, batch_size: int, max_grad_norm: float | None, prefix: str = "") -> None:
    """A minibatch loop's arguments: integers ``epoch >= 1`` and ``batch_size >= 1``,
    ``max_grad_norm > 0`` or None. ``prefix`` names them in errors (``"vf_"``: ``vf_epoch``)."""
    check_int(f"{prefix}epoch", epoch, min_value=1)
    check_int(f"{prefix}batch_size", batch_size, min_value=1)
    check_optional_float("max_grad_norm", max_grad_norm, min_value=0.0, min_open=True)


def check_log_alpha(log_alpha: object) -> None:
    """ValueError unless ``log_alpha`` is SAC's 0-dim temperature tensor (shape ``()``)."""
    if not isinstance(log_alpha, torch.Tensor) or log_alpha.shape != ():
        got = tuple(log_alpha.shape) if isinstance(log_alpha, torch.Tensor) else type(log_alpha).__name__
        raise ValueError(f"log_alpha must be a 0-dim tensor (shape ()), got {got}")


def check_off_policy_args(*, num_steps: int, batch_size: int, gamma: float, tau: float, per_beta: float) -> None:
    """What every off-policy ``train()`` takes: ``num_steps >= 0``, ``batch_size >= 1``,
    ``gamma``, ``tau`` and ``per_beta`` in ``[0, 1]``."""
    check_int("num_steps", num_steps, min_value=0)
    check_int("batch_size", batch_size, min_value=1)
    check_unit("gamma", gamma)
    check_unit("tau", tau)
    check_unit("per_beta", per_beta)


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


def any_recurrent(*models: object) -> bool:
    """Whether any of ``models`` is recurrent (built on ``nets.lstm`` or ``nets.gru``)."""
    return any(bool(getattr(m, "recurrent", False)) for m in models)


def _check_seq(recurrent: bool, seq_len: int | None, burn_in: int) -> None:
    if not recurrent and (seq_len is not None or burn_in):
        raise ValueError(f"seq_len={seq_len} and burn_in={burn_in} apply to recurrent models only; these are MLPs")


def minibatches(
    traj: Traj,
    models: Sequence[object],
    batch_size: int,
    generator: torch.Generator | None,
    seq_len: int | None = None,
    burn_in: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """One shuffled pass of minibatches over ``traj`` for ``models``; the last partial batch is kept.

    MLP models: batches of ``batch_size`` steps (``traj.iterate``). If any model is
    recurrent: sequence batches of ``traj.iterate_rnn`` (whole episodes, or chunks of
    ``seq_len`` steps after ``burn_in`` warm-up steps), about ``batch_size`` steps each:
    ``round(batch_size / seq_len)`` chunks, or ``round(batch_size / mean episode
    length)`` episodes (at least one).
    """
    recurrent = any_recurrent(*models)
    _check_seq(recurrent, seq_len, burn_in)
    if not recurrent:
        return traj.iterate(batch_size, epoch=1, shuffle=True, generator=generator)
    per_seq = seq_len if seq_len is not None else traj.num_step / max(1, traj.num_epi)
    n_seq = max(1, round(batch_size / per_seq))
    return traj.iterate_rnn(n_seq, epoch=1, shuffle=True, generator=generator, seq_len=seq_len, burn_in=burn_in)


def full_batch(traj: Traj, models: Sequence[object], seq_len: int | None = None) -> dict[str, torch.Tensor]:
    """All of ``traj`` as one batch: its steps for MLP models, all its sequences (whole
    episodes, or chunks of ``seq_len``) as one sequence batch if any model is recurrent."""
    recurrent = any_recurrent(*models)
    _check_seq(recurrent, seq_len, 0)
    if not recurrent:
        return traj.full_batch()
    return next(traj.iterate_rnn(traj.num_step, shuffle=False, seq_len=seq_len))


def batch_steps(batch: dict[str, torch.Tensor]) -> int:
    """How many steps a batch trains on: its rows, or a sequence batch's masked-in steps."""
    if "mask" in batch and batch["mask"].dim() == 2:
        return int(batch["mask"].sum())
    return len(batch["obs"])


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
    seq_len: int | None = None,
) -> list[float]:
    """``epoch`` passes of value regression (``lf.monte_carlo`` on ``rets``) in minibatches.

    Returns the step-weighted mean loss of each pass. Used by the algorithms that fit
    the value function after the policy step (TRPO, VPG). A recurrent ``vf`` trains on
    sequence batches (see :func:`minibatches`; ``seq_len`` only applies to one).
    """
    from trajkit import lf  # algos depend on lf; imported here to keep this module's imports light

    losses = []
    seq_len = seq_len if any_recurrent(vf) else None
    for _ in range(epoch):
        total, n = 0.0, 0
        for batch in minibatches(traj, [vf], batch_size, generator, seq_len):
            vf_loss, _ = lf.monte_carlo(vf, batch)
            step(optim_vf, vf_loss, vf.parameters(), max_grad_norm)
            w = batch_steps(batch)
            total, n = total + float(vf_loss.detach()) * w, n + w
        losses.append(total / n)
    return losses
