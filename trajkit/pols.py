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

:class:`GaussianPol`, :class:`CategoricalPol`, :class:`MultiCategoricalPol`,
:class:`DeterministicPol` and :class:`SquashedGaussianPol` also take a recurrent net
(``nets.lstm`` or ``nets.gru``); then ``forward`` and ``act`` take and return the hidden
state (see :mod:`trajkit.pol_base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit.checks import check_unit
from trajkit.nets import mlp, net_out_dim, obs_features
from trajkit.noise import ScalarBuffers
from trajkit.pds import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    CategoricalPd,
    DeterministicPd,
    GaussianPd,
    MultiCategoricalPd,
    Params,
    SquashedGaussianPd,
)
from trajkit.pol_base import BasePol, _ob_inputs, stateless
from trajkit.spaces import BoxBounds, EnvOrSpaces, box_to_env, env_spaces, flat_dim, require_box

# re-exported: these lived here before trajkit.spaces and trajkit.nets held them
__all__ = ["BasePol", "BoxBounds", "box_to_env", "env_spaces", "flat_dim", "net_out_dim", "obs_features"]


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
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, _ob_inputs(ob_space))
        if out == 2 * a:
            self.log_std = None
        elif out == a:
            self.log_std = nn.Parameter(torch.full((a,), float(log_std_init)))
        else:
            raise ValueError(
                f"{type(self).__name__}: the net outputs {out} values; the {a}-dimensional action space needs "
                f"{a} (mean, with a learned log_std) or {2 * a} (mean and log_std)"
            )
        self.ac_dim = a
        self.rescale = rescale

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        state_dependent_std: bool = False,
        log_std_init: float = 0.0,
        rescale: bool = True,
        orthogonal: bool = True,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """A Gaussian policy on an MLP sized for ``env``'s spaces.

        ``env``: anything with ``observation_space`` and ``action_space`` (a GymEnv, a
        gymnasium env) or an ``(ob_space, ac_space)`` pair. The net maps ``obs_dim`` to
        ``A`` means (``log_std`` a learned parameter) or, with ``state_dependent_std``,
        ``2A`` (mean and log-std); with ``orthogonal`` (default) it is orthogonally
        initialized and its last layer has gain 0.01, else PyTorch's default init.
        """
        ob, ac = env_spaces(env)
        a = flat_dim(require_box(ac, cls.__name__))
        net = mlp(flat_dim(ob), 2 * a if state_dependent_std else a, hidden, activation, out_gain=0.01,
                  orthogonal=orthogonal)
        return cls(ob, require_box(ac, cls.__name__), net, log_std_init=log_std_init, rescale=rescale,
                   obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        if self.log_std is None:
            mean, log_std = out.split(self.ac_dim, -1)
        else:
            mean, log_std = out, self.log_std.expand_as(out)
        return self._with_hs({"mean": mean, "log_std": log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)}, hs)

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
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, _ob_inputs(ob_space))
        if out != int(ac_space.n):
            raise ValueError(f"CategoricalPol: the net outputs {out} logits; the action space has {ac_space.n} actions")
        self.net = net
        self.pd = CategoricalPd()

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        orthogonal: bool = True,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """A categorical policy on an MLP ``obs_dim -> n``: orthogonally initialized, last-layer gain 0.01
        (``orthogonal=False``: PyTorch's default init).

        ``env``: an env with ``observation_space`` and a Discrete ``action_space``, or an
        ``(ob_space, ac_space)`` pair.
        """
        ob, ac = env_spaces(env)
        if not isinstance(ac, gym.spaces.Discrete):
            raise TypeError(f"CategoricalPol needs a Discrete action space, got {ac}")
        net = mlp(flat_dim(ob), int(ac.n), hidden, activation, out_gain=0.01, orthogonal=orthogonal)
        return cls(ob, ac, net, obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        return self._with_hs({"logits": torch.log_softmax(out, -1)}, hs)

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
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, _ob_inputs(ob_space))
        if out != sum(self.nvec):
            raise ValueError(
                f"MultiCategoricalPol: the net outputs {out} logits; the action space needs sum(nvec) = "
                f"{sum(self.nvec)}"
            )
        self.net = net
        self.pd = MultiCategoricalPd(self.nvec)

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        orthogonal: bool = True,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """Independent categoricals on an MLP ``obs_dim -> sum(nvec)`` (orthogonal init with gain 0.01 unless
        ``orthogonal=False``)."""
        ob, ac = env_spaces(env)
        if not isinstance(ac, gym.spaces.MultiDiscrete):
            raise TypeError(f"MultiCategoricalPol needs a MultiDiscrete action space, got {ac}")
        net = mlp(flat_dim(ob), int(ac.nvec.sum()), hidden, activation, out_gain=0.01, orthogonal=orthogonal)
        return cls(ob, ac, net, obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        logits = out.split(self.nvec, -1)
        return self._with_hs({"logits": torch.cat([torch.log_softmax(lg, -1) for lg in logits], -1)}, hs)

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
        self.ac_dim = int(np.prod(ac_space.shape))
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, _ob_inputs(ob_space))
        if out != self.ac_dim:
            raise ValueError(f"DeterministicPol: the net outputs {out} values; the action space needs {self.ac_dim}")
        self.net = net
        self.pd = DeterministicPd()

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
        orthogonal: bool = False,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """A deterministic policy on an MLP ``obs_dim -> A`` (ReLU, PyTorch's default init: DDPG/TD3's nets)."""
        ob, ac = env_spaces(env)
        box = require_box(ac, cls.__name__)
        net = mlp(flat_dim(ob), flat_dim(box), hidden, activation, orthogonal=orthogonal)
        return cls(ob, box, net, obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        return self._with_hs({"mean": torch.tanh(out)}, hs)

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

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        stateless(self, hs, h_masks)
        return {}

    def act(
        self,
        obs: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        hs: torch.Tensor | None = None,
        h_masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Params]:
        stateless(self, hs, h_masks)
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

    @classmethod
    def for_env(  # type: ignore[override]  # SAC's options, not GaussianPol's
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
        orthogonal: bool = False,
        log_std_init: float = 0.0,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """SAC's policy: an MLP ``obs_dim -> 2A`` (state-dependent mean and log-std; ReLU, default init)."""
        ob, ac = env_spaces(env)
        box = require_box(ac, cls.__name__)
        net = mlp(flat_dim(ob), 2 * flat_dim(box), hidden, activation, orthogonal=orthogonal)
        return cls(ob, box, net, log_std_init=log_std_init, obs_normalizer=obs_normalizer)


class ArgmaxQfPol(ScalarBuffers, BasePol):
    """Epsilon-greedy policy over a Q-function's maximizer (DQN, QT-Opt).

    ``qf`` must have ``max(obs, generator) -> (q: (B,), acs: (B, *ac_shape))``: a
    :class:`~trajkit.vfuncs.DiscreteQfunc` (exact argmax) or a
    :class:`~trajkit.vfuncs.CEMDeterministicSAVfunc` (cross-entropy-method search over
    ``[-1, 1]`` actions). With probability ``epsilon`` a row's action is uniformly random
    instead; ``deterministic=True`` is always greedy. ``epsilon`` is a buffer (in
    ``state_dict``, so sampler workers act with it): assign a number between sampling
    calls for a schedule (``pol.epsilon = 0.05``); reading it gives a 0-dim tensor. The stored parameters are
    ``{"mean": greedy action}`` (float), a point mass, never a torch distribution.
    """

    qf: Any  # a module with max(obs, generator) -> (q, acs)
    scalar_checks = {"epsilon": check_unit}
    epsilon: torch.Tensor

    def __init__(self, ob_space: gym.Space, ac_space: gym.Space, qf: nn.Module, *, epsilon: float = 0.1) -> None:
        super().__init__(ob_space, ac_space)
        if not isinstance(ac_space, gym.spaces.Discrete | gym.spaces.Box):
            raise TypeError(f"ArgmaxQfPol needs a Discrete or Box action space, got {ac_space}")
        self.qf = qf
        self.add_scalar("epsilon", epsilon)
        self.pd = DeterministicPd()

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        stateless(self, hs, h_masks)
        return {"mean": self.qf.max(obs)[1].float()}

    def act(
        self,
        obs: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        hs: torch.Tensor | None = None,
        h_masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Params]:
        stateless(self, hs, h_masks)
        greedy = self.qf.max(obs, generator)[1]
        epsilon = float(self.epsilon)
        if deterministic or epsilon <= 0.0:
            return greedy, {"mean": greedy.float()}
        b, dev = greedy.shape[0], greedy.device
        explore = torch.rand(b, generator=generator, device=dev) < epsilon
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
