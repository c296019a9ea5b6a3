"""The rollout loop every sampler backend runs: one env, one policy, whole episodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from trajkit.envs.gym_env import GymEnv

EnvSpec = str | gym.Env | Callable[[], Any]
Epi = dict[str, Any]


def build_env(env_spec: Any) -> GymEnv:
    """A :class:`GymEnv` from an id, an env object, or a zero-argument factory returning either."""
    if isinstance(env_spec, GymEnv):
        return env_spec
    if isinstance(env_spec, str):
        return GymEnv(env_spec)
    if isinstance(env_spec, gym.Env) or (hasattr(env_spec, "step") and hasattr(env_spec, "reset")):
        return GymEnv(env_spec)
    if callable(env_spec):
        return build_env(env_spec())
    raise TypeError(f"expected an env id, an env or a factory returning one, got {type(env_spec).__name__}")


def split_budget(total: int | None, parts: int) -> list[int | None]:
    """Split ``total`` into ``parts`` near-equal shares (earlier shares get the remainder)."""
    if total is None:
        return [None] * parts
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Rollout:
    """Runs a policy in one environment and returns whole episodes.

    ``env_seed`` seeds the env's first reset (later resets continue its RNG);
    ``torch_seed`` seeds the generator the policy samples actions from. Both persist
    across calls, so a sequence of calls is reproducible.
    """

    def __init__(self, env: GymEnv, pol: torch.nn.Module, env_seed: int, torch_seed: int) -> None:
        self.env, self.pol = env, pol
        self.env_seed: int | None = env_seed
        self.torch_seed = torch_seed
        self._gens: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._gens:
            self._gens[device] = torch.Generator(device=device).manual_seed(self.torch_seed)
        return self._gens[device]

    def get_state(self) -> dict[str, Any]:
        """The RNG state: the pending first-reset seed, the env's ``np_random`` and the action generators."""
        env_rng = getattr(self.env.unwrapped, "_np_random", None)
        return {
            "env_seed": self.env_seed,
            "env_rng": None if env_rng is None else env_rng.bit_generator.state,
            "gens": {str(d): g.get_state() for d, g in self._gens.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (the env must be of the same kind)."""
        self.env_seed = state["env_seed"]
        if state["env_rng"] is not None:
            rng = np.random.Generator(getattr(np.random, state["env_rng"]["bit_generator"])())
            rng.bit_generator.state = state["env_rng"]
            self.env.unwrapped._np_random = rng
        self._gens = {}
        for d, st in state["gens"].items():
            g = torch.Generator(device=d)
            g.set_state(st)
            self._gens[torch.device(d)] = g

    def _reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.env_seed)
        self.env_seed = None
        return obs

    def sample(self, max_epis: int | None, max_steps: int | None, deterministic: bool) -> list[Epi]:
        """Episodes until ``max_epis`` episodes or ``max_steps`` steps, whichever comes first.

        With ``max_steps`` the step count is exact: the last episode is cut and marked
        truncated (unless the env terminated on that very step).
        """
        epis: list[Epi] = []
        steps = 0
        while (max_epis is None or len(epis) < max_epis) and (max_steps is None or steps < max_steps):
            epi = self._one_episode(None if max_steps is None else max_steps - steps, deterministic)
            steps += len(epi["rews"])
            epis.append(epi)
        return epis

    def _one_episode(self, step_limit: int | None, deterministic: bool) -> Epi:
        pol, env = self.pol, self.env
        device = _device_of(pol)
        gen = self._generator(device)
        ac_shape = _policy_ac_shape(env.action_space)
        obs = self._reset()
        obs_l: list[np.ndarray] = []
        acs_l: list[np.ndarray] = []
        rews_l: list[float] = []
        params_l: dict[str, list[np.ndarray]] = {}
        terminated = truncated = False
        t = 0
        while True:
            ob = np.array(obs)  # a copy: some envs reuse their observation buffer
            with torch.no_grad():
                acs, params = pol.act(torch.as_tensor(ob, dtype=torch.float32, device=device)[None], deterministic, gen)
            ac = acs[0].cpu().numpy()
            if ac.shape != ac_shape:
                raise ValueError(
                    f"policy {type(pol).__name__} produced an action of shape {ac.shape}; "
                    f"the env's action space {env.action_space} needs {ac_shape}"
                )
            obs, rew, terminated, truncated, _ = env.step(pol.to_env_ac(ac))
            obs_l.append(ob)
            acs_l.append(ac)
            rews_l.append(rew)
            for k, v in params.items():
                params_l.setdefault(k, []).append(v[0].cpu().numpy())
            t += 1
            if terminated or truncated:
                break
            if step_limit is not None and t >= step_limit:
                truncated = True
                break
        epi: Epi = {
            "obs": np.stack(obs_l),
            "acs": np.stack(acs_l),
            "rews": np.asarray(rews_l, dtype=np.float32),
        }
        epi.update({k: np.stack(v) for k, v in params_l.items()})
        epi["terminated"] = bool(terminated)
        epi["truncated"] = not terminated
        epi["final_obs"] = np.array(obs)
        return epi


def _device_of(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _policy_ac_shape(space: gym.Space) -> tuple[int, ...]:
    if isinstance(space, gym.spaces.Discrete):
        return ()
    if isinstance(space, gym.spaces.MultiDiscrete | gym.spaces.Box | gym.spaces.MultiBinary):
        return tuple(space.shape)
    raise TypeError(f"unsupported action space {space}")
