"""Value and action-value functions.

:class:`DeterministicSVfunc`, :class:`DeterministicSAVfunc` and :class:`DiscreteQfunc`
also take a recurrent net (``nets.lstm`` or ``nets.gru``): then ``forward`` takes
``hs: (B, S)`` and optional ``h_masks`` and returns ``(values, hs)``, on one step
``(B, *obs_shape)`` or a sequence ``(T, B, *obs_shape)`` (see :mod:`trajkit.recurrent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import gymnasium as gym
import torch
from torch import nn

from trajkit.nets import dueling_mlp, mlp, net_out_dim, obs_features
from trajkit.recurrent import RecurrentModel
from trajkit.spaces import EnvOrSpaces, env_spaces, flat_dim


class DeterministicSVfunc(RecurrentModel, nn.Module):
    """State value ``V(s)``: ``(B, *obs_shape) -> (B,)``; ``net`` maps ``(B, obs_dim)`` to ``(B, 1)``."""

    hs_key = "vf_hs"

    def __init__(self, ob_space: gym.Space, net: nn.Module, *, obs_normalizer: nn.Module | None = None) -> None:
        super().__init__()
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, f"the observation ({ob_space})")
        if out != 1:
            raise ValueError(f"DeterministicSVfunc: a state-value net must output 1 value, this one outputs {out}")
        self.ob_space, self.net, self.obs_normalizer = ob_space, net, obs_normalizer

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces | gym.Space,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.Tanh,
        orthogonal: bool = True,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """``V(s)`` on an MLP ``obs_dim -> 1``, orthogonally initialized (``orthogonal=False``: PyTorch's default).

        ``env``: an env, an ``(ob_space, ac_space)`` pair or the observation space itself.
        """
        ob = env if isinstance(env, gym.Space) else env_spaces(env)[0]
        return cls(ob, mlp(flat_dim(ob), 1, hidden, activation, orthogonal=orthogonal), obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        return self._with_hs(out.squeeze(-1), hs)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs_features(obs, self.obs_normalizer)


class DeterministicSAVfunc(RecurrentModel, nn.Module):
    """Action value ``Q(s, a)``: ``(B, *obs_shape), (B, *ac_shape) -> (B,)``.

    ``net`` maps the concatenation ``(B, obs_dim + ac_dim)`` to ``(B, 1)``. Actions are
    taken in the policy's space (``traj["acs"]``), not the env's rescaled one.
    """

    hs_key = "qf_hs"

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.Space,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        inputs = f"the observation ({ob_space}) and action ({ac_space}) together"
        out = net_out_dim(net, flat_dim(ob_space) + flat_dim(ac_space), type(self).__name__, inputs)
        if out != 1:
            raise ValueError(f"{type(self).__name__}: a Q net must output 1 value, this one outputs {out}")
        self.ob_space, self.ac_space = ob_space, ac_space
        self.net, self.obs_normalizer = net, obs_normalizer

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
        """``Q(s, a)`` on an MLP ``obs_dim + A -> 1`` (ReLU, PyTorch's default init: the off-policy critics)."""
        ob, ac = env_spaces(env)
        net = mlp(flat_dim(ob) + flat_dim(ac), 1, hidden, activation, orthogonal=orthogonal)
        return cls(ob, ac, net, obs_normalizer=obs_normalizer)

    def forward(
        self, obs: torch.Tensor, acs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None
    ) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks, acs)
        return self._with_hs(out.squeeze(-1), hs)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs_features(obs, self.obs_normalizer)


class DiscreteQfunc(RecurrentModel, nn.Module):
    """Q-values of every action of a Discrete space: ``(B, *obs_shape) -> (B, n)``.

    ``net`` maps ``(B, obs_dim)`` to ``(B, n)`` (for example ``nets.dueling_mlp``).
    :meth:`max` gives the greedy value and action, for ``ArgmaxQfPol`` and DQN targets.
    """

    hs_key = "qf_hs"

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Discrete,
        net: nn.Module,
        *,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(ac_space, gym.spaces.Discrete):
            raise TypeError(f"DiscreteQfunc needs a Discrete action space, got {ac_space}")
        out = net_out_dim(net, flat_dim(ob_space), type(self).__name__, f"the observation ({ob_space})")
        if out != int(ac_space.n):
            raise ValueError(
                f"DiscreteQfunc: a discrete Q net must output one value per action ({ac_space}); this one outputs {out}"
            )
        self.ob_space, self.ac_space = ob_space, ac_space
        self.net, self.obs_normalizer = net, obs_normalizer

    @classmethod
    def for_env(
        cls,
        env: EnvOrSpaces,
        *,
        hidden: Sequence[int] = (64, 64),
        dueling: bool = False,
        activation: type[nn.Module] = nn.ReLU,
        obs_normalizer: nn.Module | None = None,
    ) -> Self:
        """Q-values on an MLP ``obs_dim -> n`` (ReLU, default init), or ``nets.dueling_mlp`` with ``dueling``."""
        ob, ac = env_spaces(env)
        if not isinstance(ac, gym.spaces.Discrete):
            raise TypeError(f"DiscreteQfunc needs a Discrete action space, got {ac}")
        od, n = flat_dim(ob), int(ac.n)
        net = dueling_mlp(od, n, hidden) if dueling else mlp(od, n, hidden, activation, orthogonal=False)
        return cls(ob, ac, net, obs_normalizer=obs_normalizer)

    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        out, hs = self._run_net(obs, self._features, hs, h_masks)
        return self._with_hs(out, hs)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs_features(obs, self.obs_normalizer)

    def max(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(max_a Q(s, a): (B,), argmax_a: (B,) int64)``; ``generator`` is unused (exact)."""
        q = self(obs)
        best = q.max(-1)
        return best.values, best.indices


class CEMDeterministicSAVfunc(DeterministicSAVfunc):
    """A :class:`DeterministicSAVfunc` whose :meth:`max` searches actions in ``[-1, 1]`` by the cross-entropy method.

    As in QT-Opt (Kalashnikov et al., 2018): ``num_samples`` actions per state (uniform
    in the first iteration, then from a diagonal Gaussian refit to the ``num_elite``
    best), ``num_iter`` iterations, all states of the batch at once, then the best
    action seen. Actions are in the policy's ``[-1, 1]`` space (rescale with
    ``spaces.box_to_env``).
    """

    ac_space: Any

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.spaces.Box,
        net: nn.Module,
        *,
        num_samples: int = 64,
        num_elite: int = 6,
        num_iter: int = 2,
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space, net, obs_normalizer=obs_normalizer)
        if not 1 <= num_elite <= num_samples:
            raise ValueError(f"need 1 <= num_elite <= num_samples, got {num_elite}, {num_samples}")
        self.num_samples, self.num_elite, self.num_iter = num_samples, num_elite, num_iter
        self.ac_dim = flat_dim(ac_space)

    def max(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Q(s, a*): (B,), a*: (B, A))`` with ``a*`` the best of the CEM samples; no gradient."""
        b, s, a = obs.shape[0], self.num_samples, self.ac_dim
        dev = obs.device
        rep_obs = obs.repeat_interleave(s, 0)

        def elites(acs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """The ``num_elite`` best of ``acs: (B, S, A)``, best first: Q ``(B, K)``, actions ``(B, K, A)``."""
            top = self(rep_obs, acs.reshape(b * s, a)).reshape(b, s).topk(self.num_elite, -1)
            return top.values, acs.gather(1, top.indices.unsqueeze(-1).expand(b, self.num_elite, a))

        with torch.no_grad():
            elite_q, elite = elites(torch.rand((b, s, a), generator=generator, device=dev) * 2.0 - 1.0)
            best_q, best_acs = elite_q[:, 0], elite[:, 0]
            for _ in range(self.num_iter - 1):  # refit a diagonal Gaussian to the elites, draw again
                mean, std = elite.mean(1, keepdim=True), elite.std(1, keepdim=True, unbiased=False) + 1e-6
                noise = torch.randn((b, s, a), generator=generator, device=dev)
                elite_q, elite = elites((mean + std * noise).clamp(-1.0, 1.0))
                better = elite_q[:, 0] > best_q
                best_q = torch.where(better, elite_q[:, 0], best_q)
                best_acs = torch.where(better.unsqueeze(-1), elite[:, 0], best_acs)
        return best_q, best_acs.reshape(b, *self.ac_space.shape)
