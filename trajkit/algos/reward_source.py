"""A batch source whose rewards come from a discriminator or reward model, recomputed at every draw.

Off-policy imitation (GAIL or AIRL with SAC as the learner) and DIAYN keep the env's
transitions in a replay buffer and train SAC (:func:`trajkit.algos.sac.train`,
unchanged) on batches whose ``rews`` the *current* model gives, so rewards never go
stale as the discriminator learns, as MBPO's ``MixedSource`` feeds SAC mixed batches.
"""

from __future__ import annotations

import torch

from trajkit.algos.common import BatchSource
from trajkit.ef.imitation import PseudoRewardModel

Batch = dict[str, torch.Tensor]

__all__ = ["RewardSource"]


class RewardSource:
    """A :class:`~trajkit.algos.common.BatchSource` over ``source`` with ``rews: (B,)`` from ``model``.

    Args:
        source: the transitions (a replay buffer or Traj) with the columns ``model.needs``.
        model: a discriminator or reward model (:mod:`trajkit.discrims`).
        kind: the pseudo-reward of ``model`` (``"gail"``, ``"f"``, ``"g"``, ``"diayn"``, ...).

    A batch holds ``source``'s columns with ``rews`` replaced (computed without
    gradients) and the stored rewards kept as ``env_rews``.
    """

    def __init__(self, source: BatchSource, model: PseudoRewardModel, kind: str) -> None:
        if not isinstance(source, BatchSource):
            raise TypeError(f"source must be a Traj or a replay buffer, got {type(source).__name__}")
        if not callable(getattr(model, "pseudo_rews", None)):
            raise TypeError(f"model must have pseudo_rews(batch, kind) (trajkit.discrims), got {type(model).__name__}")
        self.source, self.model, self.kind = source, model, kind

    @property
    def num_step(self) -> int:
        return self.source.num_step

    def keys(self) -> list[str]:
        keys = list(self.source.keys())
        return keys if "env_rews" in keys else [*keys, "env_rews"]

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch:
        """``batch_size`` uniform rows of ``source``, their ``rews`` from ``model``."""
        batch = dict(self.source.random_batch(batch_size, generator))
        with torch.no_grad():
            rews = self.model.pseudo_rews(batch, self.kind).reshape(-1)
        batch["env_rews"] = batch["rews"]
        batch["rews"] = rews.to(batch["rews"].dtype)
        return batch
