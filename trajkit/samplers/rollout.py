"""The rollout loop every sampler backend runs: ``K >= 1`` envs, one policy, whole episodes.

With ``K`` envs the policy acts on all of them with one batched forward per step,
which is what makes cheap envs fast (inference dominates there). ``K = 1`` is the
same loop with a batch of one.

A recurrent policy (``pol.recurrent``) acts with each env's hidden state: the loop
keeps one state ``(S,)`` per env, sets it to ``pol.init_hs(1)`` when the env begins a
new episode, passes the active envs' states ``(B, S)`` to ``pol.act(..., hs=...)`` and
keeps the states it returns. Every step stores the state the policy *entered* the
step with, as the step column ``hs: (T, S)`` (so ``hs`` at a new episode's first step
is the initial state, and any step can start a replay). A continuing rollout carries
the state with the cut episode into the next call. Every backend (in-process,
process, Ray, several envs per worker) runs this loop, so all behave alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import gymnasium as gym
import numpy as np
import torch

from trajkit.checks import check_int
from trajkit.devices import module_device
from trajkit.envs.gym_env import GymEnv
from trajkit.samplers._policy_checks import check_policy_output, explain_act_failure, policy_ac_shape
from trajkit.samplers._state import build_rollout_rngs
from trajkit.samplers._timeout import CallAlarm, beat_interval

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


def build_envs(env_spec: Any, num_envs: int) -> list[GymEnv]:
    """``num_envs`` independent :class:`GymEnv` copies from an id or a zero-argument factory.

    One env object can only be used as itself, so ``num_envs > 1`` needs an id or a factory.
    """
    if num_envs == 1:
        return [build_env(env_spec)]
    is_env = isinstance(env_spec, gym.Env) or (hasattr(env_spec, "step") and hasattr(env_spec, "reset"))
    if not (isinstance(env_spec, str) or (callable(env_spec) and not is_env)):
        raise TypeError(
            f"{num_envs} envs per worker need an env id or a zero-argument factory that builds a new env "
            f"on each call, got the env object {env_spec!r}"
        )
    return [build_env(env_spec) for _ in range(num_envs)]


def split_budget(total: int | None, parts: int) -> list[int | None]:
    """Split ``total`` into ``parts`` near-equal shares (earlier shares get the remainder)."""
    if total is None:
        return [None] * parts
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Carry(NamedTuple):
    """An env's episode in progress between two calls of a continuing :class:`Rollout`.

    ``obs``: the observation to act on next; ``t``: steps the episode has had so far;
    ``number``: the episode's number among the env's episodes (its ``epi_key[1]``);
    ``hs``: a recurrent policy's hidden state ``(S,)`` after the last step (None otherwise).
    """

    obs: np.ndarray
    t: int
    number: int
    hs: torch.Tensor | None = None  # a recurrent policy's state (S,) to go on from


class _Slot:
    """One env's budget and the episode (piece) it is building during one :meth:`Rollout.sample` call.

    ``env_key``: the env's sampler-wide index, set by a continuing rollout (its pieces then
    carry ``continued`` and ``epi_key``); None for whole episodes (no extra keys).
    """

    __slots__ = (
        "index", "env_key", "max_epis", "max_steps", "steps", "epis", "obs", "t", "number", "continued", "carry",
        "obs_l", "acs_l", "rews_l", "params_l", "hs", "hs_l",
    )  # fmt: skip

    def __init__(self, index: int, max_epis: int | None, max_steps: int | None, env_key: int | None) -> None:
        self.index, self.max_epis, self.max_steps, self.env_key = index, max_epis, max_steps, env_key
        self.steps = 0
        self.epis: list[Epi] = []
        self.carry: Carry | None = None  # the episode to carry into the next call, once cut

    def wants_episode(self) -> bool:
        """Whether the budget allows starting (or continuing) another episode."""
        return (self.max_epis is None or len(self.epis) < self.max_epis) and (
            self.max_steps is None or self.steps < self.max_steps
        )

    def begin(
        self, obs: np.ndarray, number: int = 0, t: int = 0, continued: bool = False, hs: torch.Tensor | None = None
    ) -> None:
        """Start a piece at observation ``obs``: a new episode (``t = 0``) or, ``continued``, one carried in.

        ``hs``: a recurrent policy's state ``(S,)`` to start from (None: not recurrent).
        """
        self.obs = obs
        self.t, self.number, self.continued = t, number, continued
        self.hs = hs
        self.obs_l: list[np.ndarray] = []
        self.acs_l: list[np.ndarray] = []
        self.rews_l: list[float] = []
        self.params_l: dict[str, list[np.ndarray]] = {}
        self.hs_l: list[np.ndarray] = []

    def record(
        self, ob: np.ndarray, ac: np.ndarray, rew: float, params: dict[str, np.ndarray], j: int,
        hs_in: np.ndarray | None = None,
    ) -> None:
        """Store one step; ``params`` holds the batch's parameters, of which row ``j`` is this env's.

        ``hs_in``: the batch's hidden states the step was taken with, ``(B, S)`` (recurrent only).
        """
        self.obs_l.append(ob)
        self.acs_l.append(ac)
        self.rews_l.append(rew)
        for k, v in params.items():
            self.params_l.setdefault(k, []).append(v[j])
        if hs_in is not None:
            self.hs_l.append(hs_in[j])
        self.t += 1
        self.steps += 1

    def at_step_limit(self) -> bool:
        """Whether the step budget ends the current piece now."""
        return self.max_steps is not None and self.steps >= self.max_steps

    def finish(self, final_obs: Any, terminated: bool, cut: bool) -> None:
        """Close the current piece: truncated unless ``terminated``; ``cut``: by the step budget, not the env."""
        epi: Epi = {
            "obs": np.stack(self.obs_l),
            "acs": np.stack(self.acs_l),
            "rews": np.asarray(self.rews_l, dtype=np.float32),
        }
        epi.update({k: np.stack(v) for k, v in self.params_l.items()})
        if self.hs_l:
            epi["hs"] = np.stack(self.hs_l)
        epi["terminated"] = bool(terminated)
        epi["truncated"] = not terminated
        epi["sampler_cut"] = cut
        epi["final_obs"] = np.array(final_obs)
        if self.env_key is not None:
            epi["continued"] = self.continued
            epi["epi_key"] = np.array([self.env_key, self.number], dtype=np.int64)
        self.epis.append(epi)


class Rollout:
    """Runs a policy in ``K >= 1`` environments and returns whole episodes, or pieces of them.

    ``env_seeds[k]`` seeds env ``k``'s first reset (later resets continue its RNG);
    ``torch_seed`` seeds the generator the policy samples actions from (one generator
    for the batch). Both persist across calls, so a sequence of calls is reproducible.
    ``envs`` and ``env_seeds`` may also be a single env and a single seed.

    ``continuing``: an env whose episode the step budget cut keeps it (:class:`Carry`)
    and the next :meth:`sample` call goes on with it instead of resetting; every piece
    then carries ``continued`` and ``epi_key = (env_offset + k, number)``, where
    ``number`` counts the episodes env ``k`` has begun in this rollout (from 0).
    A call that raises drops the episodes in progress of the envs it used (their next
    call resets them); :meth:`set_state` drops all of them.
    """

    def __init__(
        self,
        envs: GymEnv | Sequence[GymEnv],
        pol: torch.nn.Module,
        env_seeds: int | Sequence[int],
        torch_seed: int,
        *,
        continuing: bool = False,
        env_offset: int = 0,
    ) -> None:
        self.envs: list[GymEnv] = [envs] if isinstance(envs, gym.Env) else list(envs)
        seeds = [env_seeds] if isinstance(env_seeds, int | np.integer) else list(env_seeds)
        if len(seeds) != len(self.envs) or not self.envs:
            raise ValueError(f"need one seed per env, got {len(seeds)} seeds for {len(self.envs)} envs")
        self.pol = pol
        self.env_seeds: list[int | None] = [int(s) for s in seeds]
        self.torch_seed = torch_seed
        self._gens: dict[torch.device, torch.Generator] = {}
        self.continuing = bool(continuing)
        self.env_offset = env_offset
        self._carry: list[Carry | None] = [None] * len(self.envs)
        self._numbers = [0] * len(self.envs)  # episodes begun, per env

    @property
    def env(self) -> GymEnv:
        """The first env (the only one when ``K = 1``)."""
        return self.envs[0]

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._gens:
            self._gens[device] = torch.Generator(device=device).manual_seed(self.torch_seed)
        return self._gens[device]

    def get_state(self) -> dict[str, Any]:
        """The RNG state: pending first-reset seeds, each env's ``np_random`` and the action generators.

        Episodes in progress are not part of it (an env's inner state cannot be saved in general).
        """
        rngs = [getattr(env.unwrapped, "_np_random", None) for env in self.envs]
        return {
            "env_seeds": list(self.env_seeds),
            "env_rngs": [None if r is None else r.bit_generator.state for r in rngs],
            "gens": {str(d): g.get_state() for d, g in self._gens.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (the envs must be of the same kind and number).

        A state that does not fit raises ValueError (see :mod:`trajkit.samplers._state`)
        before anything is changed. Episodes in progress are dropped: the next call
        resets every env (from the restored RNGs), so its pieces are new episodes.
        """
        seeds, rngs, gens = build_rollout_rngs(state, len(self.envs))
        self.env_seeds = seeds
        for env, rng in zip(self.envs, rngs, strict=True):
            if rng is not None:
                env.unwrapped._np_random = rng
        self._gens = gens
        self._carry = [None] * len(self.envs)

    def sample(
        self,
        max_epis: int | None,
        max_steps: int | None,
        deterministic: bool,
        timeout: float | None = None,
        on_beat: Callable[[], None] | None = None,
    ) -> list[Epi]:
        """Episodes until ``max_epis`` episodes or ``max_steps`` steps, whichever comes first.

        The budget is split over the ``K`` envs with :func:`split_budget` (env ``k``
        gets ``max_steps // K`` steps, the first ``max_steps % K`` envs one more; the
        same for ``max_epis``), and each env runs whole episodes until its share is
        used. With ``max_steps`` the step count is exact: an env's last episode is cut
        and marked truncated (unless it terminated on that very step). Episodes come
        env by env, each env's in the order they were played.

        Continuing (see the class docstring), an env first goes on with its carried
        episode, and ``max_epis`` counts pieces: every piece but an env's last, cut
        one ends its episode. An env whose share is 0 in this call keeps its carry.

        ``timeout``: seconds each env reset, env step and policy forward may take
        (:class:`~trajkit.samplers._timeout.CallAlarm`; None: no limit); a longer one
        raises :class:`~trajkit.samplers.SamplerTimeout`. ``on_beat`` is called between
        calls, at most every ``beat_interval(timeout)`` seconds (a worker's heartbeat).
        A policy's NaN/inf action or NaN parameters raise
        :class:`~trajkit.samplers.NonFiniteActionError` before any env steps with them.
        """
        max_epis, max_steps = check_budget(max_epis, max_steps)
        k = len(self.envs)
        slots = [
            _Slot(i, e, s, self.env_offset + i if self.continuing else None)
            for i, (e, s) in enumerate(zip(split_budget(max_epis, k), split_budget(max_steps, k), strict=True))
            if e != 0 and s != 0
        ]
        device = module_device(self.pol)
        beat_every = 1.0 if timeout is None else beat_interval(timeout)
        with CallAlarm(timeout, on_beat, beat_every) as alarm, torch.no_grad():
            ctx = _Call(
                deterministic, device, self._generator(device), policy_ac_shape(self.env.action_space), alarm,
                self._recurrent(),
            )
            active = [s for s in slots if s.wants_episode()]
            for s in active:
                self._start(s, alarm)
            while active:
                active = self._step(active, ctx)
        for s in slots:  # only now: a call that raised leaves its envs without carries
            self._carry[s.index] = s.carry
        return [epi for s in slots for epi in s.epis]

    def _start(self, s: _Slot, alarm: CallAlarm) -> None:
        """Begin slot ``s``'s first piece: its env's carried episode, or a new one."""
        carry, self._carry[s.index] = self._carry[s.index], None
        if carry is None or (carry.hs is None) == self._recurrent():
            self._begin_new(s, alarm)  # (a carry from a policy with the other kind of state starts over)
        else:
            s.begin(carry.obs, carry.number, carry.t, continued=True, hs=carry.hs)

    def _recurrent(self) -> bool:
        return bool(getattr(self.pol, "recurrent", False))

    def _begin_new(self, s: _Slot, alarm: CallAlarm) -> None:
        """Reset slot ``s``'s env and begin a new episode there (a recurrent policy from ``init_hs(1)``)."""
        obs = self._reset(s.index, alarm)
        hs = self.pol.init_hs(1)[0] if self._recurrent() else None  # type: ignore[operator]
        s.begin(obs, self._numbers[s.index], hs=hs)
        self._numbers[s.index] += 1

    def _reset(self, k: int, alarm: CallAlarm) -> np.ndarray:
        alarm.arm("env.reset()", k, 0)
        obs, _ = self.envs[k].reset(seed=self.env_seeds[k])
        alarm.disarm()
        self.env_seeds[k] = None
        return obs

    def _act(
        self, obs: np.ndarray, active: list[_Slot], ctx: _Call, hs_in: torch.Tensor | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray], torch.Tensor | None]:
        """The policy's actions ``(B, *ac_shape)`` and parameters for ``obs: (B, *obs_shape)``, checked.

        A recurrent policy acts from the slots' states ``hs_in: (B, S)``; its new states come third (else None).
        """
        pol: Any = self.pol  # a trajkit policy: act() and to_env_ac()
        envs, steps = [s.index for s in active], [s.t for s in active]
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=ctx.device)
        ctx.alarm.arm(f"{type(pol).__name__}.act()", envs[0], steps[0])
        hs_out = None
        try:
            if hs_in is not None:
                acs_t, params_t, hs_out = pol.act(obs_t, ctx.deterministic, ctx.gen, hs=hs_in.to(ctx.device))
            else:
                acs_t, params_t = pol.act(obs_t, ctx.deterministic, ctx.gen)
        except RuntimeError as e:
            ctx.alarm.disarm()
            explain_act_failure(pol, obs_t, envs, steps, obs, e, None if hs_in is None else hs_in.to(ctx.device))
            raise
        ctx.alarm.disarm()
        acs = _to_numpy(acs_t)
        params = {name: _to_numpy(v) for name, v in params_t.items()}
        check_policy_output(type(pol).__name__, acs, params, ctx.ac_shape, self.env.action_space, envs, steps, obs)
        return acs, params, hs_out

    def _step(self, active: list[_Slot], ctx: _Call) -> list[_Slot]:
        """One batched policy forward and one step of every active env; returns the envs still running.

        Runs under ``torch.no_grad`` (set once by :meth:`sample`, not per step).
        """
        pol: Any = self.pol
        obs = np.array([s.obs for s in active])  # a copy: some envs reuse their observation buffer
        hs_in = torch.stack([cast(torch.Tensor, s.hs) for s in active]) if ctx.recurrent else None
        acs, params, hs_out = self._act(obs, active, ctx, hs_in)
        hs_np = None if hs_in is None else _to_numpy(hs_in)
        alarm = ctx.alarm
        still: list[_Slot] = []
        for j, s in enumerate(active):
            alarm.arm("env.step()", s.index, s.t)
            next_obs, rew, terminated, truncated, _ = self.envs[s.index].step(pol.to_env_ac(acs[j]))
            alarm.disarm()
            s.record(obs[j], acs[j], rew, params, j, hs_np)
            if hs_out is not None:
                s.hs = hs_out[j]
            if terminated or truncated or s.at_step_limit():
                cut = not (terminated or truncated)
                s.finish(next_obs, terminated, cut)
                if cut and self.continuing:
                    s.carry = Carry(np.array(next_obs), s.t, s.number, s.hs)
                if s.wants_episode():
                    self._begin_new(s, alarm)
                    still.append(s)
                continue
            s.obs = next_obs
            still.append(s)
        return still


class _Call(NamedTuple):
    """What one :meth:`Rollout.sample` call's steps share."""

    deterministic: bool
    device: torch.device
    gen: torch.Generator
    ac_shape: tuple[int, ...]
    alarm: CallAlarm
    recurrent: bool


def check_budget(max_epis: object, max_steps: object) -> tuple[int | None, int | None]:
    """``max_epis`` and ``max_steps`` as ints >= 1 or None, at least one given (TypeError/ValueError otherwise)."""
    if max_epis is None and max_steps is None:
        raise ValueError("give max_epis, max_steps or both")
    return (
        None if max_epis is None else check_int("max_epis", max_epis, min_value=1),
        None if max_steps is None else check_int("max_steps", max_steps, min_value=1),
    )


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` as a numpy array (no copy on the CPU; ``.cpu()`` is skipped there, it costs per step)."""
    return t.numpy() if t.device.type == "cpu" else t.cpu().numpy()
