"""Policies: modules mapping observations to a distribution's parameters.

Every policy has

* ``forward(obs: (B, *obs_shape)) -> params``: the distribution parameters
  (a dict of ``(B, ...)`` tensors, keys ``pol.pd.param_names``), differentiable;
* ``act(obs, deterministic, generator) -> (acs, params)``: actions ``(B, *ac_shape)``
  in the policy's own space plus the parameters, which the sampler stores per step
  (so PPO and TRPO get the old log-likelihoods without keeping the old policy);
* ``to_env_ac(ac) -> env action``: what is sent to the environment for one action.
  For Box spaces this is where rescaling and clipping happen, so ``traj["acs"]`` keeps
  the raw sample the log-likelihood refers to.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit.pds import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    CategoricalPd,
    DeterministicPd,
    GaussianPd,
    MultiCategoricalPd,
    Params,
    Pd,
    SquashedGaussianPd,
)


def flat_dim(space: gym.Space) -> int:
    """Number of scalars in one element of a Box/Discrete/MultiDiscrete space."""
    return int(gym.spaces.flatdim(space))


class BoxBounds:
    """A Box's bounds prepared once for :func:`box_to_env` (it runs at every env step)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        self.space = space
        low = space.low.astype(np.float64).reshape(-1)
        high = space.high.astype(np.float64).reshape(-1)
        self.finite = np.isfinite(low) & np.isfinite(high)
        self.all_finite = bool(self.finite.all())
        self.low, self.high = low[self.finite], high[self.finite]
        self.half_range = 0.5 * (self.high - self.low)


def box_to_env(
    ac: np.ndarray, space: gym.spaces.Box, rescale: bool, bounds: BoxBounds | None = None
) -> np.ndarray:
    """Map one policy action to a Box: affinely from ``[-1, 1]`` (``rescale``) or by clipping.

    Dimensions with an infinite bound pass through unchanged. ``bounds`` (for ``space``)
    saves recomputing them.
    """
    bb = bounds if bounds is not None else BoxBounds(space)
    ac = np.asarray(ac, dtype=np.float64).reshape(-1)
    part = ac if bb.all_finite else ac[bb.finite]
    if rescale:
        mapped = bb.low + (np.clip(part, -1.0, 1.0) + 1.0) * bb.half_range
    else:
        mapped = np.clip(part, bb.low, bb.high)
    if bb.all_finite:
        out = mapped
    else:
        out = ac.copy()
        out[bb.finite] = mapped
    return out.reshape(space.shape).astype(space.dtype)


def obs_features(obs: torch.Tensor, obs_normalizer: nn.Module | None) -> torch.Tensor:
    """Observations ``(B, *obs_shape)`` as the float ``(B, obs_dim)`` input of a network, normalized if asked."""
    obs = obs.float()
    if obs_normalizer is not None:
        obs = obs_normalizer(obs)
    return obs.reshape(obs.shape[0], -1)


def _out_dim(net: nn.Module, in_dim: int) -> int:
    with torch.no_grad():
        p = next(iter(net.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
        return int(net(torch.zeros(1, in_dim, device=dev)).shape[-1])


class BasePol(nn.Module):
    """Common parts: observation flattening/normalization and the ``act`` loop."""

    pd: Pd

    def __init__(
        self, ob_space: gym.Space, ac_space: gym.Space, obs_normalizer: nn.Module | None = None
    ) -> None:
        super().__init__()
        # Any: each subclass narrows the space type (Box, Discrete, ...) it accepts at run time
        self.ob_space: Any = ob_space
        self.ac_space: Any = ac_space
        self.obs_normalizer = obs_normalizer

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs_features(obs, self.obs_normalizer)

    def forward(self, obs: torch.Tensor) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def act(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Actions ``(B, *ac_shape)`` and distribution parameters for observations ``(B, *obs_shape)``."""
        params = self(obs)
        acs = self.pd.mode(params) if deterministic else self.pd.sample(params, generator)
        return acs, params

    def to_env_ac(self, ac: np.ndarray) -> Any:
        """The action the environment receives for one policy action ``ac: (*ac_shape)``."""
        return ac

    def _box_bounds(self) -> BoxBounds:
        """The Box action space's :class:`BoxBounds`, computed once per space."""
        bb = self.__dict__.get("_cached_box_bounds")
        if bb is None or bb.space is not self.ac_space:
            bb = self.__dict__["_cached_box_bounds"] = BoxBounds(self.ac_space)
        return bb

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


class GaussianPol(BasePol):
    """Diagonal Gaussian policy for Box action spaces.

    ``net`` maps ``(B, obs_dim)`` to either ``(B, A)`` (the mean; ``log_std`` is then a
    learned state-independent parameter starting at ``log_std_init``) or ``(B, 2A)``
    (mean and log-std). ``log_std`` is clamped to ``[-20, 2]``.

    With ``rescale`` (default) the policy acts in ``[-1, 1]`` and :meth:`to_env_ac` maps
    that affinely onto the Box bounds, clipping; with ``rescale=False`` actions are only
    clipped to the bounds. Unbounded dimensions pass through.
    """

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Box,
        net: nn.Module,
        *,
        log_std_init: float = 0.0,
        rescale: bool = True,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space, obs_normalizer)
        if not isinstance(ac_space, gym.spaces.Box):
            raise TypeError(f"GaussianPol needs a Box action space, got {ac_space}")
        self.net = net
        self.pd = GaussianPd()
        a = int(np.prod(ac_space.shape))
        out = _out_dim(net, flat_dim(ob_space))
        if out == 2 * a:
            self.log_std = None
        elif out == a:
            self.log_std = nn.Parameter(torch.full((a,), float(log_std_init)))
        else:
            raise ValueError(f"net outputs {out} values; GaussianPol needs {a} (mean) or {2 * a} (mean, log_std)")
        self.ac_dim = a
        self.rescale = rescale

    def forward(self, obs: torch.Tensor) -> Params:
        out = self.net(self._features(obs))
        if self.log_std is None:
            mean, log_std = out.split(self.ac_dim, -1)
        else:
            mean, log_std = out, self.log_std.expand_as(out)
        return {"mean": mean, "log_std": log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)}

    def to_env_ac(self, ac: np.ndarray) -> np.ndarray:
        return box_to_env(ac, self.ac_space, self.rescale, self._box_bounds())


class CategoricalPol(BasePol):
    """Categorical policy for Discrete action spaces; ``net`` maps ``(B, obs_dim)`` to ``(B, n)`` logits."""

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Discrete,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space, obs_normalizer)
        if not isinstance(ac_space, gym.spaces.Discrete):
            raise TypeError(f"CategoricalPol needs a Discrete action space, got {ac_space}")
        out = _out_dim(net, flat_dim(ob_space))
        if out != int(ac_space.n):
            raise ValueError(f"net outputs {out} logits; the action space has {ac_space.n} actions")
        self.net = net
        self.pd = CategoricalPd()

    def forward(self, obs: torch.Tensor) -> Params:
        return {"logits": torch.log_softmax(self.net(self._features(obs)), -1)}

    def to_env_ac(self, ac: np.ndarray) -> int:
        return int(ac) + int(self.ac_space.start)


class MultiCategoricalPol(BasePol):
    """Independent categoricals for MultiDiscrete spaces; ``net`` outputs ``(B, sum(nvec))`` logits."""

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.MultiDiscrete,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space, obs_normalizer)
        if not isinstance(ac_space, gym.spaces.MultiDiscrete) or ac_space.nvec.ndim != 1:
            raise TypeError(f"MultiCategoricalPol needs a 1-D MultiDiscrete action space, got {ac_space}")
        self.nvec = [int(n) for n in ac_space.nvec]
        out = _out_dim(net, flat_dim(ob_space))
        if out != sum(self.nvec):
            raise ValueError(f"net outputs {out} logits; the action space needs sum(nvec) = {sum(self.nvec)}")
        self.net = net
        self.pd = MultiCategoricalPd(self.nvec)

    def forward(self, obs: torch.Tensor) -> Params:
        logits = self.net(self._features(obs)).split(self.nvec, -1)
        return {"logits": torch.cat([torch.log_softmax(lg, -1) for lg in logits], -1)}

    def to_env_ac(self, ac: np.ndarray) -> np.ndarray:
        return np.asarray(ac, dtype=np.int64) + self.ac_space.start


class DeterministicPol(BasePol):
    """Deterministic policy for Box spaces: ``net`` outputs the action ``(B, A)``, squashed by tanh into ``[-1, 1]``.

    :meth:`to_env_ac` rescales to the Box bounds like :class:`GaussianPol`. Exploration
    noise is added by wrapping it in :class:`trajkit.noise.DeterministicActionNoisePol`.
    """

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Box,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space, obs_normalizer)
        if not isinstance(ac_space, gym.spaces.Box):
            raise TypeError(f"DeterministicPol needs a Box action space, got {ac_space}")
        self.net = net
        self.pd = DeterministicPd()
        self.ac_dim = int(np.prod(ac_space.shape))

    def forward(self, obs: torch.Tensor) -> Params:
        return {"mean": torch.tanh(self.net(self._features(obs)))}

    def to_env_ac(self, ac: np.ndarray) -> np.ndarray:
        return box_to_env(ac, self.ac_space, rescale=True, bounds=self._box_bounds())


class RandomPol(BasePol):
    """Uniformly random actions (Box with finite bounds, Discrete, MultiDiscrete); no parameters.

    Its draws come from the ``generator`` passed to :meth:`act` (the sampler's seeded
    one), so random rollouts are reproducible. ``params`` is an empty dict.
    """

    def __init__(self, ob_space: gym.Space, ac_space: gym.Space) -> None:
        super().__init__(ob_space, ac_space)
        if isinstance(ac_space, gym.spaces.Box) and not ac_space.is_bounded():
            raise ValueError("RandomPol needs finite Box bounds")
        if not isinstance(ac_space, gym.spaces.Box | gym.spaces.Discrete | gym.spaces.MultiDiscrete):
            raise TypeError(f"RandomPol supports Box, Discrete and MultiDiscrete, got {ac_space}")

    def forward(self, obs: torch.Tensor) -> Params:
        return {}

    def act(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        b, sp = obs.shape[0], self.ac_space
        if isinstance(sp, gym.spaces.Discrete):
            acs = torch.randint(int(sp.n), (b,), generator=generator)
        elif isinstance(sp, gym.spaces.MultiDiscrete):
            u = torch.rand((b, *sp.nvec.shape), generator=generator)
            acs = (u * torch.as_tensor(sp.nvec)).long()
        else:
            u = torch.rand((b, *sp.shape), generator=generator, dtype=torch.float64)
            low, high = torch.as_tensor(sp.low, dtype=torch.float64), torch.as_tensor(sp.high, dtype=torch.float64)
            acs = (low + u * (high - low)).float()
        return acs, {}

    def to_env_ac(self, ac: np.ndarray) -> Any:
        sp = self.ac_space
        if isinstance(sp, gym.spaces.Discrete):
            return int(ac) + int(sp.start)
        if isinstance(sp, gym.spaces.MultiDiscrete):
            return np.asarray(ac, dtype=np.int64) + sp.start
        return np.asarray(ac, dtype=sp.dtype)


class SquashedGaussianPol(GaussianPol):
    """Tanh-squashed diagonal Gaussian policy for SAC: acts in ``(-1, 1)``.

    ``net`` maps ``(B, obs_dim)`` to ``(B, 2A)`` (state-dependent mean and log-std, as
    SAC uses) or ``(B, A)`` (then ``log_std`` is a learned parameter). The distribution
    is :class:`~trajkit.pds.SquashedGaussianPd` (``rsample_with_llh`` gives
    reparameterized samples with the tanh log-det correction); :meth:`to_env_ac`
    rescales ``[-1, 1]`` affinely onto the Box bounds.
    """

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Box,
        net: nn.Module,
        *,
        log_std_init: float = 0.0,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(
            ob_space, ac_space, net, log_std_init=log_std_init, rescale=True, obs_normalizer=obs_normalizer
        )
        self.pd = SquashedGaussianPd()


class ArgmaxQfPol(BasePol):
    """Epsilon-greedy policy over a Q-function's maximizer (DQN, QT-Opt).

    ``qf`` must have ``max(obs, generator) -> (q: (B,), acs: (B, *ac_shape))``: a
    :class:`~trajkit.vfuncs.DiscreteQfunc` (exact argmax) or a
    :class:`~trajkit.vfuncs.CEMDeterministicSAVfunc` (cross-entropy-method search over
    ``[-1, 1]`` actions). With probability ``epsilon`` (a plain attribute: set it
    between sampling calls for a schedule) a row's action is uniformly random instead;
    ``deterministic=True`` is always greedy. The stored parameters are
    ``{"mean": greedy action}`` (float), a point mass, never a torch distribution.
    """

    qf: Any  # a module with max(obs, generator) -> (q, acs)

    def __init__(self, ob_space: gym.Space, ac_space: gym.Space, qf: nn.Module, *, epsilon: float = 0.1) -> None:
        super().__init__(ob_space, ac_space)
        if not isinstance(ac_space, gym.spaces.Discrete | gym.spaces.Box):
            raise TypeError(f"ArgmaxQfPol needs a Discrete or Box action space, got {ac_space}")
        self.qf = qf
        self.epsilon = float(epsilon)
        self.pd = DeterministicPd()

    def forward(self, obs: torch.Tensor) -> Params:
        return {"mean": self.qf.max(obs)[1].float()}

    def act(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        greedy = self.qf.max(obs, generator)[1]
        if deterministic or self.epsilon <= 0.0:
            return greedy, {"mean": greedy.float()}
        b, dev = greedy.shape[0], greedy.device
        explore = torch.rand(b, generator=generator, device=dev) < self.epsilon
        if isinstance(self.ac_space, gym.spaces.Discrete):
            rand = torch.randint(int(self.ac_space.n), (b,), generator=generator, device=dev)
        else:
            rand = torch.rand(greedy.shape, generator=generator, device=dev) * 2.0 - 1.0
        explore = explore.reshape(b, *([1] * (greedy.ndim - 1)))
        return torch.where(explore, rand.to(greedy.dtype), greedy), {"mean": greedy.float()}

    def to_env_ac(self, ac: np.ndarray) -> Any:
        if isinstance(self.ac_space, gym.spaces.Discrete):
            return int(ac) + int(self.ac_space.start)
        return box_to_env(ac, self.ac_space, rescale=True)
