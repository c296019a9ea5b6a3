"""Learned dynamics models: deterministic and Gaussian, single or ensembles, in one class each.

A model maps an observation and an action to the *change* of observation (and, with
``learn_reward``, the reward): ``next_obs = obs + delta``. Inputs ``(obs, acs)`` and
targets ``(delta, rew)`` are standardized by statistics that are buffers of the model
(part of its ``state_dict``, so a saved or shipped model predicts as trained); they are
set from the training data by :meth:`DynamicsModel.fit_normalization` (``algos.dynamics.train``
does it).

Shapes: ``E`` ensemble members (a single model is ``E = 1``), ``B`` rows, ``O`` observation
features, ``A`` action features, ``D = O (+ 1 with learn_reward)`` target features.
Every member runs in one batched forward (:class:`~trajkit.models.ensemble.EnsembleMLP`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from trajkit.checks import check_int
from trajkit.models.ensemble import EnsembleMLP
from trajkit.pds import Params
from trajkit.spaces import flat_dim


class Standardizer(nn.Module):
    """``(x - mean) / std`` over the last dimension, with ``mean`` and ``std`` as buffers ``(F,)``."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from data ``x: (N, F)`` (a constant feature gets std 1)."""
        self.mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def _require_box(space: gym.Space, what: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"a dynamics model needs a Box {what} space, got {space}")
    return space


class DynamicsModel(nn.Module):
    """A deterministic dynamics model (or an ensemble of ``num_members``): predicts ``delta`` and maybe the reward.

    Args:
        ob_space, ac_space: Box spaces (observations and actions are flattened).
        num_members: ``E``, the ensemble size (1: a single model).
        hidden: hidden layer sizes of each member's MLP (SiLU activations).
        learn_reward: also predict the reward (MPC without a known reward, MBPO).
    """

    gaussian: ClassVar[bool] = False

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.Space,
        *,
        num_members: int = 1,
        hidden: Sequence[int] = (200, 200, 200),
        learn_reward: bool = False,
    ) -> None:
        super().__init__()
        self.ob_space, self.ac_space = _require_box(ob_space, "observation"), _require_box(ac_space, "action")
        self.num_members = check_int("num_members", num_members, min_value=1)
        self.ob_dim, self.ac_dim = flat_dim(ob_space), flat_dim(ac_space)
        self.learn_reward = bool(learn_reward)
        self.out_dim = self.ob_dim + int(self.learn_reward)
        heads = 2 if self.gaussian else 1
        self.net = EnsembleMLP(num_members, self.ob_dim + self.ac_dim, heads * self.out_dim, hidden)
        self.in_norm = Standardizer(self.ob_dim + self.ac_dim)
        self.out_norm = Standardizer(self.out_dim)

    # ------------------------------------------------------------------ data
    def raw_inputs(self, obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
        """``obs: (..., B, *obs_shape)``, ``acs: (..., B, *ac_shape)`` -> ``(..., B, O + A)``, checked."""
        o = obs.reshape(*obs.shape[: obs.ndim - len(self.ob_space.shape)], -1).float()
        a = acs.reshape(*acs.shape[: acs.ndim - len(self.ac_space.shape)], -1).float()
        if o.shape[-1] != self.ob_dim or a.shape[-1] != self.ac_dim or o.shape[:-1] != a.shape[:-1]:
            raise ValueError(
                f"{type(self).__name__}: observations {tuple(obs.shape)} and actions {tuple(acs.shape)} do not "
                f"match the spaces ({self.ob_dim} and {self.ac_dim} features, same leading shape)"
            )
        return torch.cat([o, a], -1)

    def raw_targets(self, obs: torch.Tensor, next_obs: torch.Tensor, rews: torch.Tensor) -> torch.Tensor:
        """``(N, D)``: ``next_obs - obs`` flattened, then the reward with ``learn_reward``."""
        delta = (next_obs.float() - obs.float()).reshape(len(obs), -1)
        return torch.cat([delta, rews.float().reshape(-1, 1)], -1) if self.learn_reward else delta

    def fit_normalization(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Set the input and target statistics from ``inputs: (N, O + A)`` and ``targets: (N, D)``."""
        self.in_norm.fit(inputs)
        self.out_norm.fit(targets)

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` (same rows for every member) or ``(E, B, F)`` -> ``(E, B, F)``."""
        if x.ndim == 2:
            return x.unsqueeze(0).expand(self.num_members, -1, -1)
        if x.ndim == 3 and x.shape[0] == self.num_members:
            return x
        raise ValueError(f"expected (B, F) or (E={self.num_members}, B, F) inputs, got {tuple(x.shape)}")

    # ------------------------------------------------------------------ forward
    def forward_raw(self, inputs: torch.Tensor) -> Params:
        """Raw ``inputs: (B, O + A)`` or ``(E, B, O + A)`` -> ``{"mean": (E, B, D)}`` in standardized target units."""
        return self._heads(self.net(self.in_norm(self._expand(inputs))))

    def forward(self, obs: torch.Tensor, acs: torch.Tensor) -> Params:
        """``obs: (B | E, B, O)``, ``acs`` alike -> the prediction's parameters ``(E, B, D)`` (standardized)."""
        return self.forward_raw(self.raw_inputs(obs, acs))

    def member_forward(self, e: int, obs: torch.Tensor, acs: torch.Tensor) -> Params:
        """Member ``e`` alone on ``(B, O)`` and ``(B, A)`` -> parameters ``(B, D)``: the per-member reference."""
        x = self.in_norm(self.raw_inputs(obs, acs))
        return {k: v[0] for k, v in self._heads(self.net.member(e, x).unsqueeze(0)).items()}

    def _heads(self, out: torch.Tensor) -> Params:
        return {"mean": out}

    def loss(self, params: Params, targets: torch.Tensor) -> torch.Tensor:
        """``(E,)`` per-member loss against standardized ``targets: (E, B, D)``: mean squared error."""
        return (params["mean"] - targets).pow(2).mean((1, 2))

    def regularizer(self) -> torch.Tensor:
        """A scalar added once to the training loss (none for a deterministic model)."""
        return torch.zeros((), device=self.in_norm.mean.device)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict(
        self,
        obs: torch.Tensor,
        acs: torch.Tensor,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(next_obs: (E, B, O), rews: (E, B) or None)`` in env units for ``obs: (B | E, B, O)``, ``acs`` alike.

        A Gaussian model samples its prediction (with ``generator``) unless ``sample`` is
        False; a deterministic one returns its mean. ``rews`` is None without ``learn_reward``.
        """
        raw = self.raw_inputs(obs, acs)
        params = self.forward_raw(raw)
        out = self.out_norm.inverse(self._draw(params, generator) if sample else params["mean"])
        o = self._expand(raw)[..., : self.ob_dim]
        next_obs = (o + out[..., : self.ob_dim]).reshape(*out.shape[:2], *self.ob_space.shape)
        return next_obs, (out[..., self.ob_dim] if self.learn_reward else None)

    def _draw(self, params: Params, generator: torch.Generator | None) -> torch.Tensor:
        return params["mean"]

    def extra_repr(self) -> str:
        return f"num_members={self.num_members}, ob_dim={self.ob_dim}, ac_dim={self.ac_dim}, " \
               f"learn_reward={self.learn_reward}"


class GaussianDynamicsModel(DynamicsModel):
    """A probabilistic model (or ensemble, PETS's "PE"): predicts the mean and log-variance of ``delta`` (and reward).

    The log-variance is softly bounded by learned ``max_log_var``/``min_log_var`` ``(D,)``
    (Chua et al., 2018); the loss is the Gaussian negative log-likelihood, and
    :meth:`regularizer` adds ``0.01 * sum(max_log_var - min_log_var)``.
    """

    gaussian: ClassVar[bool] = True

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.Space,
        *,
        num_members: int = 1,
        hidden: Sequence[int] = (200, 200, 200),
        learn_reward: bool = False,
    ) -> None:
        super().__init__(ob_space, ac_space, num_members=num_members, hidden=hidden, learn_reward=learn_reward)
        self.max_log_var = nn.Parameter(torch.full((self.out_dim,), 0.5))
        self.min_log_var = nn.Parameter(torch.full((self.out_dim,), -10.0))

    def _heads(self, out: torch.Tensor) -> Params:
        mean, log_var = out.split(self.out_dim, -1)
        log_var = self.max_log_var - F.softplus(self.max_log_var - log_var)
        log_var = self.min_log_var + F.softplus(log_var - self.min_log_var)
        return {"mean": mean, "log_var": log_var}

    def loss(self, params: Params, targets: torch.Tensor) -> torch.Tensor:
        """``(E,)`` Gaussian negative log-likelihood (without the constant) per member."""
        mean, log_var = params["mean"], params["log_var"]
        return ((mean - targets).pow(2) * torch.exp(-log_var) + log_var).mean((1, 2))

    def regularizer(self) -> torch.Tensor:
        return 0.01 * (self.max_log_var - self.min_log_var).sum()

    def _draw(self, params: Params, generator: torch.Generator | None) -> torch.Tensor:
        mean = params["mean"]
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * params["log_var"]) * noise
