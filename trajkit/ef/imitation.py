"""Pseudo-rewards of imitation and skill discovery: pure functions ``Traj -> Traj``.

A discriminator or reward model (:mod:`trajkit.discrims`) turns a Traj's steps into
rewards; the estimator returns a new Traj whose ``rews: (N,)`` are those rewards and
whose ``env_rews: (N,)`` keep the env's (unless the input already had ``env_rews``: a
second call keeps the first env rewards). Every other column is shared; the input is
never modified. The on- or off-policy ``train()`` then learns from the Traj unchanged.

Terminations and the absorbing state: the estimators downstream
(:func:`~trajkit.ef.compute_rets`, :func:`~trajkit.ef.compute_advs`, SAC's targets) take
the value after a terminal step to be 0, i.e. the absorbing state that follows a
termination earns pseudo-reward 0 forever. The sign of the pseudo-reward then decides
what a termination means: GAIL's default ``-log(1 - D) > 0`` makes every step worth
having, so ending early is punished (a survival bonus, right for CartPole, whose expert
never falls); ``log D < 0`` rewards ending early; ``logit`` (AIRL's form) has no fixed
sign. Truncated episodes bootstrap from ``V(final_obs)`` as always.
"""

from __future__ import annotations

from typing import Protocol

import torch

from trajkit.ef.columns import require
from trajkit.traj import Traj

__all__ = ["PseudoRewardModel", "compute_diayn_rews", "compute_pseudo_rews"]

Batch = dict[str, torch.Tensor]


class PseudoRewardModel(Protocol):
    """A discriminator or reward model: ``needs`` (the step columns it reads), ``pseudo_rews(batch, kind) -> (B,)``."""

    needs: tuple[str, ...]

    def pseudo_rews(self, batch: Batch, kind: str) -> torch.Tensor: ...


def _with_rews(traj: Traj, rews: torch.Tensor) -> Traj:
    env_rews = traj["env_rews"] if "env_rews" in traj.data else traj["rews"]
    return traj.with_columns(rews=rews.detach().to(traj["rews"].dtype).reshape(traj.num_step), env_rews=env_rews)


def _rows(traj: Traj, names: tuple[str, ...], chunk_size: int) -> list[Batch]:
    n = traj.num_step
    return [{k: traj[k][i:i + chunk_size] for k in names} for i in range(0, n, chunk_size)]


def compute_pseudo_rews(
    traj: Traj, discrim: PseudoRewardModel, kind: str = "gail", chunk_size: int = 65536
) -> Traj:
    """Replace ``rews: (N,)`` by ``discrim``'s pseudo-rewards of each step, keeping the env's as ``env_rews: (N,)``.

    Args:
        traj: needs ``rews`` and the columns ``discrim.needs`` names (``obs`` and ``acs``
            for GAIL's :class:`~trajkit.discrims.SADiscrim`; also ``next_obs`` and
            ``terminals``, from :func:`~trajkit.ef.add_next_obs`, for AIRL's ``f``).
        discrim: e.g. a :class:`~trajkit.discrims.SADiscrim` (``kind``: ``"gail"``
            ``-log(1 - D)``, ``"log_d"`` ``log D``, ``"logit"``), an
            :class:`~trajkit.discrims.AIRLDiscrim` (``"f"`` the shaped reward, ``"g"`` the
            recovered one) or a :class:`~trajkit.discrims.StateReward`.
        chunk_size: rows per forward pass (no gradients are kept).

    See the module docstring for what the reward's sign means at terminations.
    """
    needs = ("obs",) if kind == "g" else tuple(discrim.needs)
    require(traj, "rews", *needs)
    if traj.num_step == 0:
        return _with_rews(traj, traj["rews"])
    with torch.no_grad():
        rews = torch.cat([discrim.pseudo_rews(b, kind).reshape(-1) for b in _rows(traj, needs, chunk_size)])
    return _with_rews(traj, rews)


def compute_diayn_rews(traj: Traj, discrim: PseudoRewardModel, chunk_size: int = 65536) -> Traj:
    """Replace ``rews: (N,)`` by DIAYN's ``log q(z|s') - log p(z)``, keeping the env's as ``env_rews: (N,)``.

    ``traj`` comes from a :class:`~trajkit.envs.SkillEnv` (its ``obs`` end with the skill's
    one-hot) and needs ``next_obs`` (:func:`~trajkit.ef.add_next_obs`); ``discrim`` is a
    :class:`~trajkit.discrims.SkillDiscrim` with ``K`` skills, ``p(z) = 1/K``, and ``s'`` the
    state reached (``next_obs`` without its one-hot).
    """
    require(traj, "rews", "next_obs")
    if traj.num_step == 0:
        return _with_rews(traj, traj["rews"])
    with torch.no_grad():
        rews = torch.cat([discrim.pseudo_rews(b, "diayn") for b in _rows(traj, ("next_obs",), chunk_size)])
    return _with_rews(traj, rews)
