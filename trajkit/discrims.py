"""Discriminators and reward models of adversarial imitation and skill discovery.

* :class:`SADiscrim` (GAIL): logits ``D(s, a): (B,)``, high for expert-like pairs.
* :class:`AIRLDiscrim` (AIRL): a state-only reward ``g(s)`` and a shaping potential
  ``h(s)``, ``f(s, a, s') = g(s) + gamma (1 - d) h(s') - h(s)``; the logit is
  ``f - log pi(a|s)`` (:func:`trajkit.lf.airl_logits`). ``g`` alone (:class:`StateReward`)
  is the recovered reward, saved and reused on its own.
* :class:`SkillDiscrim` (DIAYN): logits ``q(z|s): (B, K)`` over ``K`` skills.

Each turns a batch into pseudo-rewards with ``pseudo_rews(batch, kind) -> (B,)``, which
:func:`trajkit.ef.compute_pseudo_rews` and :class:`trajkit.algos.reward_source.RewardSource`
call; ``needs`` names the batch columns that takes. Actions enter a discriminator as
features (:func:`ac_features`): one-hot for ``Discrete`` spaces, flat floats otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from trajkit import nets
from trajkit.checks import check_int, check_unit
from trajkit.lf_imitation import diayn_rews
from trajkit.spaces import flat_dim

Batch = dict[str, torch.Tensor]

__all__ = ["AIRLDiscrim", "GAIL_KINDS", "SADiscrim", "SkillDiscrim", "StateReward", "ac_features", "gail_rews"]

#: the pseudo-rewards of a GAIL logit ``D`` (``sigma(D)`` = probability of expert)
GAIL_KINDS = ("gail", "log_d", "logit")


def ac_features(ac_space: gym.Space, acs: torch.Tensor) -> torch.Tensor:
    """Actions ``(B, ...)`` as float features ``(B, A)``: one-hot over a ``Discrete`` space's ``n``, else flattened."""
    if isinstance(ac_space, gym.spaces.Discrete):
        return F.one_hot(acs.long().reshape(-1), int(ac_space.n)).float()
    return acs.reshape(len(acs), -1).float()


def gail_rews(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Pseudo-rewards ``(B,)`` of GAIL logits ``(B,)``, ``D = sigma(logits)`` the expert probability.

    * ``"gail"``: ``-log(1 - D) = softplus(logits)``, in ``(0, inf)``: positive, so living
      longer pays (a survival bonus where episodes terminate);
    * ``"log_d"``: ``log D = -softplus(-logits)``, in ``(-inf, 0)``: negative, so ending early pays;
    * ``"logit"``: ``log D - log(1 - D) = logits``, AIRL's form, unbiased in sign.
    """
    if kind == "gail":
        return F.softplus(logits)
    if kind == "log_d":
        return -F.softplus(-logits)
    if kind == "logit":
        return logits
    raise ValueError(f"kind must be one of {GAIL_KINDS}, got {kind!r}")


def _require(batch: Batch, names: Sequence[str], who: str) -> None:
    for n in names:
        if n not in batch:
            hint = " (run ef.add_next_obs(traj) first)" if n in ("next_obs", "terminals") else ""
            raise KeyError(f"{who} needs the column {n!r}; the batch has {sorted(batch)}{hint}")


class SADiscrim(nn.Module):
    """GAIL's discriminator: an MLP over ``[obs, ac_features(acs)]`` giving logits ``(B,)``.

    Args:
        ob_space: a flat Box observation space.
        ac_space: a Box or Discrete action space.
        hidden: hidden layer sizes.
    """

    needs = ("obs", "acs")

    def __init__(self, ob_space: gym.Space, ac_space: gym.Space, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.ac_space = ac_space
        self.in_dim = flat_dim(ob_space) + flat_dim(ac_space)
        self.net = nets.mlp(self.in_dim, 1, hidden=tuple(hidden))

    def features(self, obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
        """The net's inputs ``(B, O + A)`` (what a gradient penalty interpolates)."""
        return torch.cat([obs.reshape(len(obs), -1).float(), ac_features(self.ac_space, acs)], -1)

    def from_features(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` of inputs ``(B, O + A)``."""
        return self.net(x).squeeze(-1)

    def forward(self, obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)``; ``sigmoid`` of them is the probability that ``(obs, acs)`` is the expert's."""
        return self.from_features(self.features(obs, acs))

    def pseudo_rews(self, batch: Batch, kind: str = "gail") -> torch.Tensor:
        """Rewards ``(B,)`` of a batch's ``obs`` and ``acs`` (see :func:`gail_rews` for ``kind``)."""
        _require(batch, self.needs, "SADiscrim")
        return gail_rews(self(batch["obs"], batch["acs"]), kind)


class StateReward(nn.Module):
    """A state-only reward ``r(s): (B,)``, an MLP over ``obs`` (AIRL's ``g``, saved and reused on its own)."""

    needs = ("obs",)

    def __init__(self, ob_space: gym.Space, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.net = nets.mlp(flat_dim(ob_space), 1, hidden=tuple(hidden))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.reshape(len(obs), -1).float()).squeeze(-1)

    def pseudo_rews(self, batch: Batch, kind: str = "reward") -> torch.Tensor:
        """``r(obs): (B,)`` (``kind`` is ignored; there is one reward)."""
        _require(batch, self.needs, "StateReward")
        return self(batch["obs"])


class AIRLDiscrim(nn.Module):
    """AIRL's disentangled discriminator: reward ``g(s)`` and shaping potential ``h(s)``.

    ``f(s, a, s') = g(s) + gamma (1 - d) h(s') - h(s)`` with ``d`` the ``terminals``
    flag (no potential after a terminal state: its absorbing state has ``h = 0``).

    Args:
        ob_space: a flat Box observation space.
        gamma: the discount of the shaping term (the learner's).
        hidden: hidden sizes of both ``g`` and ``h``.
    """

    needs = ("obs", "next_obs", "terminals")

    def __init__(self, ob_space: gym.Space, gamma: float, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.gamma = check_unit("gamma", gamma)
        self.g = StateReward(ob_space, hidden)
        self.h = StateReward(ob_space, hidden)

    def f(self, obs: torch.Tensor, next_obs: torch.Tensor, terminals: torch.Tensor) -> torch.Tensor:
        """``f(s, a, s'): (B,)`` of ``obs, next_obs: (B, O)``, ``terminals: (B,)``."""
        return self.g(obs) + self.gamma * (1.0 - terminals.float()) * self.h(next_obs) - self.h(obs)

    def pseudo_rews(self, batch: Batch, kind: str = "f") -> torch.Tensor:
        """``"f"``: the shaped reward ``f(s, a, s')`` (the learner's during training, entropy
        handled by the learner); ``"g"``: the recovered reward ``g(s)``."""
        if kind == "g":
            return self.g.pseudo_rews(batch)
        if kind != "f":
            raise ValueError(f"kind must be 'f' or 'g' for an AIRLDiscrim, got {kind!r}")
        _require(batch, self.needs, "AIRLDiscrim")
        return self.f(batch["obs"], batch["next_obs"], batch["terminals"])


class SkillDiscrim(nn.Module):
    """DIAYN's skill discriminator: logits ``q(z|s): (B, K)`` from the env part of a ``SkillEnv`` observation.

    The skill's one-hot (the last ``K`` entries of ``obs``, :class:`trajkit.envs.SkillEnv`)
    is cut off before the net, so ``q`` sees the state only.

    Args:
        ob_space: the ``SkillEnv``'s flat Box observation space (state plus ``K`` one-hot entries).
        num_skills: ``K``.
        hidden: hidden layer sizes.
    """

    needs = ("obs", "next_obs")

    def __init__(self, ob_space: gym.Space, num_skills: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.num_skills = check_int("num_skills", num_skills, min_value=2)
        state_dim = flat_dim(ob_space) - num_skills
        if state_dim < 1:
            raise ValueError(f"ob_space has {flat_dim(ob_space)} entries, too few for {num_skills} skills and a state")
        self.net = nets.mlp(state_dim, num_skills, hidden=tuple(hidden))

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(state (B, S), skill (B,) int64)`` of ``SkillEnv`` observations ``(B, S + K)``."""
        k = self.num_skills
        return obs[:, :-k].float(), obs[:, -k:].argmax(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of ``q(z|s)`` of ``SkillEnv`` observations ``(B, S + K)``."""
        return self.net(self.split(obs)[0])

    def pseudo_rews(self, batch: Batch, kind: str = "diayn") -> torch.Tensor:
        """DIAYN's reward ``log q(z|s') - log p(z)`` ``(B,)`` at the state reached, ``next_obs``."""
        _require(batch, ("next_obs",), "SkillDiscrim")
        return diayn_rews(self(batch["next_obs"]), self.split(batch["next_obs"])[1])
