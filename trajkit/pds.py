"""Probability distributions over parameter dicts.

A ``Pd`` is stateless: its methods take the distribution's parameters as a dict of
tensors (what a policy returns and the sampler stores per step), so old and new
policies' distributions are compared without rebuilding either policy.

Shapes: ``B`` batch, ``A`` action dimensions. Densities are written out in closed
form, so nothing here builds a ``torch.distributions`` object (and none can fail
argument validation or have zero scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class Pd:
    """Interface of a distribution over parameter dicts."""

    #: the keys of the parameter dict
    param_names: tuple[str, ...] = ()

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one action per row: ``(B, ...)``."""
        raise NotImplementedError

    def mode(self, params: Params) -> torch.Tensor:
        """The most likely action per row (deterministic evaluation): ``(B, ...)``."""
        raise NotImplementedError

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Log-likelihood of actions ``x``: ``(B,)``."""
        raise NotImplementedError

    def kl_pq(self, p_params: Params, q_params: Params) -> torch.Tensor:
        """KL(p || q) per row: ``(B,)``."""
        raise NotImplementedError

    def ent(self, params: Params) -> torch.Tensor:
        """Entropy per row: ``(B,)``."""
        raise NotImplementedError


class GaussianPd(Pd):
    """Diagonal Gaussian with params ``mean: (B, A)`` and ``log_std: (B, A)``."""

    param_names = ("mean", "log_std")

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, log_std = params["mean"], params["log_std"]
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(log_std) * noise

    def mode(self, params: Params) -> torch.Tensor:
        return params["mean"]

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        mean, log_std = params["mean"], params["log_std"]
        z = (x - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def kl_pq(self, p_params: Params, q_params: Params) -> torch.Tensor:
        p_mean, p_log_std = p_params["mean"], p_params["log_std"]
        q_mean, q_log_std = q_params["mean"], q_params["log_std"]
        p_var, q_var = torch.exp(2 * p_log_std), torch.exp(2 * q_log_std)
        kl = q_log_std - p_log_std + (p_var + (p_mean - q_mean).pow(2)) / (2 * q_var) - 0.5
        return kl.sum(-1)

    def ent(self, params: Params) -> torch.Tensor:
        return (params["log_std"] + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


class CategoricalPd(Pd):
    """Categorical over ``n`` choices with params ``logits: (B, n)`` (normalized log-probabilities)."""

    param_names = ("logits",)

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = torch.softmax(params["logits"], -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def mode(self, params: Params) -> torch.Tensor:
        return params["logits"].argmax(-1)

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        logp = F.log_softmax(params["logits"], -1)
        return logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def kl_pq(self, p_params: Params, q_params: Params) -> torch.Tensor:
        p_logp = F.log_softmax(p_params["logits"], -1)
        q_logp = F.log_softmax(q_params["logits"], -1)
        return (p_logp.exp() * (p_logp - q_logp)).sum(-1)

    def ent(self, params: Params) -> torch.Tensor:
        logp = F.log_softmax(params["logits"], -1)
        return -(logp.exp() * logp).sum(-1)


class MultiCategoricalPd(Pd):
    """Independent categoricals of sizes ``nvec``; ``logits: (B, sum(nvec))`` concatenated, actions ``(B, D)``."""

    param_names = ("logits",)

    def __init__(self, nvec: Sequence[int]) -> None:
        self.nvec = [int(n) for n in nvec]
        self._cat = CategoricalPd()

    def _split(self, params: Params) -> list[Params]:
        return [{"logits": lg} for lg in params["logits"].split(self.nvec, -1)]

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([self._cat.sample(p, generator) for p in self._split(params)], -1)

    def mode(self, params: Params) -> torch.Tensor:
        return torch.stack([self._cat.mode(p) for p in self._split(params)], -1)

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        parts = self._split(params)
        return torch.stack([self._cat.llh(x[..., i], p) for i, p in enumerate(parts)], -1).sum(-1)

    def kl_pq(self, p_params: Params, q_params: Params) -> torch.Tensor:
        pairs = zip(self._split(p_params), self._split(q_params), strict=True)
        return torch.stack([self._cat.kl_pq(p, q) for p, q in pairs], -1).sum(-1)

    def ent(self, params: Params) -> torch.Tensor:
        return torch.stack([self._cat.ent(p) for p in self._split(params)], -1).sum(-1)


class DeterministicPd(Pd):
    """A point mass at ``mean: (B, A)``: sampling returns the mean, entropy and KL are 0.

    The log-likelihood of a point mass is not a finite number, so :meth:`llh` raises
    instead of returning something a loss could silently optimize.
    """

    param_names = ("mean",)

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        return params["mean"]

    def mode(self, params: Params) -> torch.Tensor:
        return params["mean"]

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        raise ValueError("a deterministic policy has no log-likelihood; use a deterministic-gradient loss")

    def kl_pq(self, p_params: Params, q_params: Params) -> torch.Tensor:
        return torch.zeros(p_params["mean"].shape[0], device=p_params["mean"].device)

    def ent(self, params: Params) -> torch.Tensor:
        return torch.zeros(params["mean"].shape[0], device=params["mean"].device)


class SquashedGaussianPd(GaussianPd):
    """``tanh`` of a diagonal Gaussian, actions in ``(-1, 1)``; params ``mean``, ``log_std``.

    ``llh`` includes the change-of-variables term ``-sum log(1 - tanh(u)**2)``, written
    in the stable form ``2 (log 2 - u - softplus(-2u))``. The entropy has no closed form;
    :meth:`ent` returns the pre-squash Gaussian's entropy (an upper bound), which is what
    diagnostics report.
    """

    def sample(self, params: Params, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.tanh(super().sample(params, generator))

    def rsample_with_llh(
        self, params: Params, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized sample ``(B, A)`` and its log-likelihood ``(B,)``."""
        mean, log_std = params["mean"], params["log_std"]
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + torch.exp(log_std) * noise
        llh_u = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.tanh(u), llh_u - _tanh_log_det(u)

    def mode(self, params: Params) -> torch.Tensor:
        return torch.tanh(params["mean"])

    def llh(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        clipped = x.clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(clipped)
        return super().llh(u, params) - _tanh_log_det(u)


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """``sum log |d tanh(u) / du|`` over the last axis, numerically stable: ``(B,)``."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
