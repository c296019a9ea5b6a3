"""Where off-policy ``train()`` functions draw their batches from.

Two protocols, checked with ``isinstance`` (both are ``runtime_checkable``):

* :class:`BatchSource`: a :class:`~trajkit.traj.Traj` or a
  :class:`~trajkit.buffers.ReplayBuffer`; batches are drawn uniformly.
* :class:`PrioritizedSource`: a :class:`~trajkit.buffers.PrioritizedReplayBuffer`;
  batches are drawn by priority with importance weights, and the drawn steps'
  priorities are set to their new ``|TD error|`` after the update.

Every off-policy ``train()`` (SAC, TD3, DDPG, DQN, QT-Opt) draws through
:func:`sample_batch`, so each honours priorities the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from trajkit import ef
from trajkit.traj import MissingColumnError

Batch = dict[str, torch.Tensor]


@runtime_checkable
class BatchSource(Protocol):
    """What off-policy ``train()`` functions sample from: a Traj or a replay buffer.

    ``num_step``: the number of stored steps ``N``; ``keys()``: the step columns;
    ``random_batch(batch_size, generator)``: a dict of ``(B, ...)`` tensors drawn uniformly.
    """

    @property
    def num_step(self) -> int: ...

    def keys(self) -> list[str]: ...

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch: ...


@runtime_checkable
class PrioritizedSource(BatchSource, Protocol):
    """A :class:`BatchSource` with prioritized sampling (a ``PrioritizedReplayBuffer``).

    ``sample(batch_size, per_beta, generator)`` returns the ``(B, ...)`` columns plus
    ``idx: (B,)`` (the drawn slots) and ``weights: (B,)`` (importance weights with
    exponent ``per_beta``); ``update_pris(idx: (B,), pris: (B,))`` sets their priorities.
    """

    def sample(self, batch_size: int, per_beta: float, generator: torch.Generator | int | None = None) -> Batch: ...

    def update_pris(self, idx: torch.Tensor, pris: torch.Tensor) -> None: ...


def sample_batch(
    source: BatchSource, batch_size: int, per_beta: float, generator: torch.Generator | None
) -> tuple[Batch, Callable[[torch.Tensor], None]]:
    """A batch from ``source`` and a function taking its ``(B,)`` TD errors.

    From a :class:`PrioritizedSource` the batch is drawn with importance exponent
    ``per_beta`` (it carries ``idx`` and ``weights``, which every off-policy loss
    applies) and the function sets those steps' priorities to ``|TD error|``; from any
    other source the batch is uniform and the function does nothing.
    """
    if isinstance(source, PrioritizedSource):
        batch = source.sample(batch_size, per_beta, generator)
        idx = batch["idx"]
        return batch, lambda td: source.update_pris(idx, td.abs())
    return source.random_batch(batch_size, generator), lambda td: None


def check_source(source: object, nstep: bool = False) -> None:
    """Raise before any work if ``source`` cannot feed an off-policy ``train()``.

    TypeError if it is not a :class:`BatchSource`; ValueError if it holds no steps;
    :class:`MissingColumnError` (naming the estimator to run) if its batches would lack
    the transition columns off-policy losses read (``next_obs``, ``terminals``, or the
    n-step columns with ``nstep``).
    """
    if not isinstance(source, BatchSource):
        raise TypeError(
            "traj must be a Traj or a replay buffer (num_step, keys() and random_batch()), "
            f"got {type(source).__name__}"
        )
    if source.num_step == 0:
        raise ValueError(f"traj has no steps ({type(source).__name__} with num_step=0); add steps before train()")
    names = ("nstep_rets", "nstep_next_obs", "nstep_discounts") if nstep else ("next_obs", "terminals")
    keys = list(source.keys())
    for n in ("obs", "acs", "rews", *names):
        if n not in keys:
            hint = f"run {ef.PRODUCERS[n]} first" if n in ef.PRODUCERS else ""
            raise MissingColumnError(n, keys, hint=hint)


#: the name earlier versions used
require_transitions = check_source
