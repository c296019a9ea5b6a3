"""MBPO's data mixing (Janner et al., 2019): SAC batches drawn from real and imagined transitions.

MBPO is SAC (:func:`trajkit.algos.sac.train`, unchanged) fed by a :class:`MixedSource`:
every batch takes ``real_ratio`` of its rows from the real replay buffer and the rest
from a buffer of imagined transitions (``trajkit.envs.model_env.imagine`` from start
states of real data). The loop around it (``examples/run_mbpo.py``,
``trajkit.run.model_based``) fits the model, branches rollouts and calls ``sac.train``.
"""

from __future__ import annotations

import torch

from trajkit.algos.common import BatchSource, as_generator
from trajkit.checks import check_int, check_unit

Batch = dict[str, torch.Tensor]

__all__ = ["MixedSource"]


class MixedSource:
    """A :class:`~trajkit.algos.common.BatchSource` mixing two sources: ``real_ratio`` of each batch from ``real``.

    Args:
        real: the real transitions (a replay buffer or Traj).
        imagined: imagined transitions with the same columns; while it is empty every
            row comes from ``real``.
        real_ratio: the fraction of each batch's rows drawn from ``real``, in ``[0, 1]``
            (rounded to whole rows).

    Batches hold the step columns both sources have (``keys()``), ``(B, ...)``, real rows first.
    """

    def __init__(self, real: BatchSource, imagined: BatchSource, real_ratio: float) -> None:
        for name, src in (("real", real), ("imagined", imagined)):
            if not isinstance(src, BatchSource):
                raise TypeError(f"{name} must be a Traj or a replay buffer, got {type(src).__name__}")
        self.real, self.imagined = real, imagined
        self.real_ratio = check_unit("real_ratio", real_ratio)

    @property
    def num_step(self) -> int:
        return self.real.num_step + self.imagined.num_step

    def keys(self) -> list[str]:
        other = set(self.imagined.keys())
        return [k for k in self.real.keys() if k in other] if other else list(self.real.keys())

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch:
        """``batch_size`` rows: ``round(real_ratio * B)`` uniform real ones, the rest uniform imagined ones."""
        batch_size = check_int("batch_size", batch_size, min_value=1)
        g = as_generator(generator)
        n_real = batch_size if self.imagined.num_step == 0 else round(self.real_ratio * batch_size)
        if self.real.num_step == 0:
            n_real = 0
        parts = [src.random_batch(n, g) for src, n in ((self.real, n_real), (self.imagined, batch_size - n_real))
                 if n > 0]
        keys = self.keys()
        return {k: torch.cat([p[k] for p in parts]) for k in keys}
