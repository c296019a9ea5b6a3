"""``MPCPol``: model-predictive control with a learned dynamics model, a policy like any other.

At every step the policy plans ``horizon`` actions ahead inside the model, executes the
first and plans again (receding horizon). Two optimizers over action sequences:

* ``"random"`` (random shooting, machina's ``MPCPol``): ``num_samples`` sequences drawn
  uniformly in the action bounds; the first action of the best one is taken;
* ``"cem"`` (cross-entropy method, PETS): ``cem_iters`` rounds of sampling
  ``num_samples`` sequences from a Gaussian clipped to the bounds, refitting the
  Gaussian to the ``num_elites`` best (smoothed by ``alpha``); the first action of the
  best sequence drawn is taken (the elites' mean can fall between two modes).

A sequence's value is the mean over ``particles`` of its summed reward: the reward is a
known ``reward_fn(obs, acs, next_obs) -> (R,)`` or, without one, the model's learned
reward. With an ensemble the particles are spread over its members (PETS's trajectory
sampling): ``"tsinf"`` keeps each particle on one member for the whole horizon,
``"ts1"`` reassigns particles to members at random at every step, and ``"mean"``
propagates one particle through the members' average prediction.

Cost per action: ``iters x horizon`` batched model forwards (``iters`` is ``cem_iters``
for CEM, 1 for random shooting) over ``B x num_samples x particles`` rows, plus as many
reward calls; nothing is carried between actions (no warm start), so any number of envs
can share the policy and every sampler backend can ship it (its ``state_dict`` holds the
model).

Shapes: ``B`` observations planned for at once, ``S`` sampled sequences, ``H`` horizon,
``A`` action features, ``E`` ensemble members, ``P`` particles per sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from trajkit.checks import check_float, check_int
from trajkit.models.dynamics import DynamicsModel
from trajkit.pds import DeterministicPd, Params
from trajkit.pol_base import BasePol, stateless

#: a known reward: ``(obs: (R, O), acs: (R, A), next_obs: (R, O)) -> (R,)``, actions in env units
RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["MPCPol", "PlanState", "RewardFn", "cem_maximize", "colored_noise"]


def colored_noise(shape: tuple[int, ...], beta: float, generator: torch.Generator | None,
                  device: torch.device) -> torch.Tensor:
    """Standard-normal noise ``(..., T, X)`` whose power over the time axis ``T`` falls as ``1 / f**beta``.

    ``beta = 0`` is white noise; larger ``beta`` gives smoother action sequences (iCEM,
    Pinneri et al., 2020, samples with ``beta`` 2 to 3). Each sequence is scaled to unit
    variance over time.
    """
    if beta == 0.0:
        return torch.randn(shape, generator=generator, device=device)
    *lead, t, x = shape
    freqs = torch.fft.rfftfreq(t, device=device)
    freqs[0] = freqs[1] if t > 1 else 1.0
    scale = freqs.pow(-beta / 2)[:, None]  # (T // 2 + 1, 1)
    re = torch.randn((*lead, len(freqs), x), generator=generator, device=device)
    im = torch.randn((*lead, len(freqs), x), generator=generator, device=device)
    out = torch.fft.irfft(torch.complex(re, im) * scale, n=t, dim=-2)
    return (out - out.mean(-2, keepdim=True)) / out.std(-2, keepdim=True).clamp_min(1e-8)


def cem_maximize(
    score: Callable[[torch.Tensor], torch.Tensor],
    low: torch.Tensor,
    high: torch.Tensor,
    *,
    batch: int,
    num_samples: int,
    num_elites: int,
    iters: int,
    alpha: float = 0.1,
    init_std: float = 0.5,
    noise_beta: float = 0.0,
    init_mean: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximize ``score`` over boxes ``[low, high]`` of shape ``X`` with the cross-entropy method: ``(batch, *X)``.

    ``score`` maps candidates ``(batch, S, *X)`` to ``(batch, S)``. The search starts at
    the boxes' centres with std ``init_std`` times the half-range; each of ``iters``
    rounds draws ``num_samples`` candidates (clipped to the bounds; with ``noise_beta``
    > 0 and ``X = (T, A)``, noise coloured over ``T``: :func:`colored_noise`) and moves
    mean and std to the ``num_elites`` best, ``new = alpha * old + (1 - alpha) * elite``.
    ``init_mean: (batch, *X)`` replaces the centres as the first mean (a warm start).
    Returns ``(best, mean)``: the best candidate drawn in any round (the elites' mean
    can fall between two modes, e.g. swinging left and right) and the final mean.
    """
    shape = (batch, *low.shape)
    mean = ((low + high) / 2).expand(shape).clone() if init_mean is None else init_mean.clone()
    std = ((high - low) / 2 * init_std).expand(shape).clone()
    rows = torch.arange(batch, device=low.device)
    best, best_score = mean.clone(), torch.full((batch,), -torch.inf, device=low.device)
    for _ in range(iters):
        noise = colored_noise((batch, num_samples, *low.shape), noise_beta, generator, low.device)
        cand = torch.maximum(torch.minimum(mean.unsqueeze(1) + std.unsqueeze(1) * noise, high), low)
        scores = score(cand)
        top = scores.topk(num_elites, dim=1).indices
        better = scores[rows, top[:, 0]] > best_score
        best[better], best_score[better] = cand[rows, top[:, 0]][better], scores[rows, top[:, 0]][better]
        elites = cand[rows.unsqueeze(1), top]
        mean = alpha * mean + (1 - alpha) * elites.mean(1)
        std = alpha * std + (1 - alpha) * elites.std(1, unbiased=False)
    return best, mean


class MPCPol(BasePol):
    """Receding-horizon planning in a learned model (random shooting or CEM, PETS trajectory sampling).

    Args:
        ob_space, ac_space: the env's spaces; the action space must be a Box with finite bounds.
        model: a trained :class:`~trajkit.models.DynamicsModel` or ``GaussianDynamicsModel``
            (ensemble or not) taking actions in the env's units.
        reward_fn: the known reward (e.g. :func:`trajkit.models.pendulum_reward`); None:
            the model's learned reward (it must have ``learn_reward``).
        horizon: ``H``, actions planned ahead.
        num_samples: ``S``, action sequences per optimizer round (the population).
        optimizer: ``"cem"`` or ``"random"`` (shooting).
        cem_iters, num_elites, alpha, init_std: the CEM rounds, elites kept, smoothing, and
            initial std as a fraction of the half-range.
        noise_beta: colour of CEM's sampling noise over time (0: white, as PETS; 2: iCEM's
            smoother sequences, :func:`colored_noise`).
        warm_start: CEM starts from the previous call's final mean shifted by one step
            (PETS) when the previous call planned for as many rows; the only state the
            policy carries between calls (:meth:`reset` drops it). False: every call is a
            pure function of ``obs`` and ``generator``.
        propagation: ``"tsinf"``, ``"ts1"`` or ``"mean"`` (see the module doc).
        particles: ``P`` per sequence, a multiple of ``E`` (default ``E``); 1 with ``"mean"``.

    ``act(obs, deterministic, generator)`` plans with ``generator``; planning is the
    policy's only randomness, so ``deterministic`` changes nothing. Actions ``(B, A)``
    are in env units, stored as ``{"mean": acs}``; :meth:`to_env_ac` clips them.
    """

    def __init__(
        self,
        ob_space: gym.Space,
        ac_space: gym.Space,
        model: DynamicsModel,
        *,
        reward_fn: RewardFn | None = None,
        horizon: int = 25,
        num_samples: int = 400,
        optimizer: Literal["cem", "random"] = "cem",
        cem_iters: int = 5,
        num_elites: int = 40,
        alpha: float = 0.1,
        init_std: float = 0.5,
        noise_beta: float = 0.0,
        warm_start: bool = False,
        propagation: Literal["tsinf", "ts1", "mean"] = "tsinf",
        particles: int | None = None,
    ) -> None:
        super().__init__(ob_space, ac_space)
        if not isinstance(ac_space, gym.spaces.Box):
            raise TypeError(f"MPCPol needs a Box action space, got {ac_space}")
        if not ac_space.is_bounded():
            raise ValueError(f"MPCPol samples actions in the bounds; the action space {ac_space} is unbounded")
        if not isinstance(model, DynamicsModel):
            raise TypeError(f"model must be a DynamicsModel or GaussianDynamicsModel, got {type(model).__name__}")
        if reward_fn is None and not model.learn_reward:
            raise ValueError("MPCPol needs a reward_fn, or a model built with learn_reward=True")
        if optimizer not in ("cem", "random"):
            raise ValueError(f"optimizer must be 'cem' or 'random', got {optimizer!r}")
        if propagation not in ("tsinf", "ts1", "mean"):
            raise ValueError(f"propagation must be 'tsinf', 'ts1' or 'mean', got {propagation!r}")
        self.model, self.reward_fn = model, reward_fn
        self.horizon = check_int("horizon", horizon, min_value=1)
        self.num_samples = check_int("num_samples", num_samples, min_value=1)
        self.cem_iters = check_int("cem_iters", cem_iters, min_value=1)
        self.num_elites = check_int("num_elites", num_elites, min_value=1)
        if optimizer == "cem" and self.num_elites > self.num_samples:
            raise ValueError(f"num_elites ({num_elites}) must not exceed the population num_samples ({num_samples})")
        self.alpha = check_float("alpha", alpha, min_value=0.0, max_value=1.0)
        self.init_std = check_float("init_std", init_std, min_value=0.0, min_open=True)
        self.noise_beta = check_float("noise_beta", noise_beta, min_value=0.0)
        e = model.num_members
        p = (1 if propagation == "mean" else e) if particles is None else check_int("particles", particles, min_value=1)
        if propagation != "mean" and p % e:
            raise ValueError(f"particles ({p}) must be a multiple of the ensemble size ({e}) with {propagation!r}")
        self.optimizer, self.propagation, self.particles = optimizer, propagation, p
        self.warm_start = bool(warm_start)
        self._last_plan: torch.Tensor | None = None
        self.pd = DeterministicPd()
        self.low: torch.Tensor
        self.high: torch.Tensor
        self.register_buffer("low", torch.as_tensor(ac_space.low, dtype=torch.float32).reshape(-1), persistent=False)
        self.register_buffer("high", torch.as_tensor(ac_space.high, dtype=torch.float32).reshape(-1), persistent=False)

    # ------------------------------------------------------------------ acting
    def forward(self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None) -> Any:
        stateless(self, hs, h_masks)
        return {"mean": self.plan(obs)}

    def act(
        self,
        obs: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        hs: torch.Tensor | None = None,
        h_masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Params]:
        stateless(self, hs, h_masks)
        acs = self.plan(obs, generator)
        return acs, {"mean": acs}

    def to_env_ac(self, ac: np.ndarray) -> np.ndarray:
        sp = self.ac_space
        return np.clip(np.asarray(ac).reshape(sp.shape), sp.low, sp.high).astype(sp.dtype)

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def plan(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The first planned action ``(B, A)`` for each of the observations ``(B, *obs_shape)``."""
        obs = self._features(obs)
        b, h = len(obs), self.horizon
        low, high = self.low.expand(h, -1), self.high.expand(h, -1)  # (H, A)
        if self.optimizer == "random":
            u = torch.rand((b, self.num_samples, *low.shape), generator=generator, device=obs.device)
            seqs = low + u * (high - low)
            best = self.sequence_returns(obs, seqs, generator).argmax(1)
            return seqs[torch.arange(b, device=obs.device), best, 0]
        init = None
        last = self._last_plan
        if self.warm_start and last is not None and last.shape[0] == b and last.device == obs.device:
            init = torch.cat([last[:, 1:], ((low + high) / 2)[-1:].expand(b, 1, -1)], 1)  # shifted by one step
        best, mean = cem_maximize(
            lambda cand: self.sequence_returns(obs, cand, generator), low, high, batch=b,
            num_samples=self.num_samples, num_elites=self.num_elites, iters=self.cem_iters,
            alpha=self.alpha, init_std=self.init_std, noise_beta=self.noise_beta, init_mean=init,
            generator=generator,
        )
        if self.warm_start:
            self._last_plan = mean
        return best[:, 0]

    def reset(self) -> None:
        """Forget the warm-start plan (a no-op without ``warm_start``)."""
        self._last_plan = None

    def plan_state(self) -> PlanState:
        """The warm-start plan as a checkpoint entry (``state_dict``/``load_state_dict``), for exact resumes."""
        return PlanState(self)

    def sequence_returns(
        self, obs: torch.Tensor, seqs: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, S)``: each sequence's summed reward, averaged over its particles, from ``obs: (B, O)``.

        ``seqs: (B, S, H, A)``. Rows are laid out ``(E, P / E, B, S)`` so that particle
        ``p`` runs on member ``p mod E`` (``"tsinf"``); ``"ts1"`` permutes the rows among
        members at every step; ``"mean"`` runs each sequence once through every member
        and averages.
        """
        b, s, h, _ = seqs.shape
        lead = 1 if self.propagation == "mean" else self.model.num_members
        k = 1 if self.propagation == "mean" else self.particles // lead
        x = obs[None, None, :, None].expand(lead, k, b, s, -1).reshape(-1, obs.shape[1])  # (R, O)
        total = torch.zeros(len(x), device=obs.device)
        for t in range(h):
            acs = seqs[None, None, :, :, t].expand(lead, k, b, s, -1).reshape(len(x), -1)  # (R, A)
            nxt, rews = self._step(x, acs, generator)
            total = total + (self.reward_fn(x, acs, nxt) if self.reward_fn is not None else rews)
            x = nxt
        return total.reshape(-1, b, s).mean(0)

    def _step(
        self, x: torch.Tensor, acs: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One model step of all rows ``x: (R, O)``, ``acs: (R, A)``: ``(next: (R, O), rews: (R,) or empty)``."""
        e = self.model.num_members
        if self.propagation == "mean":
            nxt, rews = self.model.predict(x, acs, generator, sample=False)
            return nxt.mean(0), (rews.mean(0) if rews is not None else x.new_zeros(0))
        perm = torch.randperm(len(x), generator=generator, device=x.device) if self.propagation == "ts1" else None
        xe, ae = (x, acs) if perm is None else (x[perm], acs[perm])
        nxt, rews = self.model.predict(xe.reshape(e, len(x) // e, -1), ae.reshape(e, len(x) // e, -1), generator)
        nxt, r = nxt.reshape(len(x), -1), (rews.reshape(-1) if rews is not None else x.new_zeros(0))
        if perm is not None:
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(len(perm), device=perm.device)
            nxt, r = nxt[inv], (r[inv] if r.numel() else r)
        return nxt, r


class PlanState:
    """An ``MPCPol``'s warm-start plan ``(B, H, A)`` (empty ``(0,)`` when there is none) as a checkpoint entry."""

    def __init__(self, pol: MPCPol) -> None:
        self.pol = pol

    def state_dict(self) -> dict[str, torch.Tensor]:
        plan = self.pol._last_plan
        return {"last_plan": torch.zeros(0) if plan is None else plan.detach().cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        plan = state["last_plan"]
        self.pol._last_plan = None if plan.numel() == 0 else plan.to(self.pol.low.device)
