"""The off-policy loop (SAC, TD3, DDPG, DQN, QT-Opt, R2D2-SAC): sample, store, train from replay, log, checkpoint.

Each iteration samples with the behaviour policy (uniform actions before
``learning_starts``, then the exploration policy with its epsilon schedule or noise),
adds the steps with their ``next_obs`` (and n-step returns) to the replay buffer, and,
once ``train_freq`` new steps have arrived, takes ``grad_ratio`` gradient steps per new
step with the algorithm's ``train()``: the models by keyword, the config's ``train``
fields as they are. R2D2-SAC stores sequences (:class:`~trajkit.seq_buffer.SeqReplayBuffer`)
and may sample with episodes continuing across iterations (``continuing``; a resumed run
then starts fresh episodes). Checkpoints hold the models, optimizers, the replay buffer,
generators, sampler RNG states and counters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from trajkit import ef
from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer
from trajkit.noise import DeterministicActionNoisePol
from trajkit.pols import ArgmaxQfPol
from trajkit.recurrent import RecurrentNet
from trajkit.run.config import EpsilonGreedy, OffPolicyConfig
from trajkit.run.models import Models
from trajkit.run.on_policy import completed_epis, lr_fraction, set_lrs
from trajkit.run.r2d2_config import R2D2SACConfig
from trajkit.run.registry import algorithm
from trajkit.run.session import RunOutcome, Session, sampler_timeout
from trajkit.samplers import EpiSampler
from trajkit.seq_buffer import SeqReplayBuffer
from trajkit.traj import Traj


def make_seq_buffer(cfg: R2D2SACConfig, device: torch.device, pol: nn.Module) -> SeqReplayBuffer:
    """R2D2-SAC's sequence buffer on ``device``: ``buffer_size`` steps' worth of sequences keeping
    ``pol``'s start states (prioritized with ``per_alpha``, or uniform when ``prioritized`` is false)."""
    net = getattr(pol, "net", None)
    hs_dim = net.hs_dim if isinstance(net, RecurrentNet) else 0
    return SeqReplayBuffer(cfg.buffer_seqs, cfg.seq_len, cfg.burn_in, stride=cfg.seq_stride,
                           per_alpha=cfg.per_alpha if cfg.prioritized else 0.0, hs_dim=hs_dim, device=device)


def make_buffer(cfg: OffPolicyConfig, device: torch.device) -> ReplayBuffer:
    """A ``buffer_size`` replay buffer on ``device``, prioritized (exponent ``per_alpha``) when asked."""
    if cfg.prioritized:
        return PrioritizedReplayBuffer(cfg.buffer_size, per_alpha=cfg.per_alpha, device=device)
    return ReplayBuffer(cfg.buffer_size, device=device)


def behaviour_pol(cfg: OffPolicyConfig, models: Models, env_steps: int) -> nn.Module:
    """The policy that acts next, with its exploration set for ``env_steps`` steps done.

    Uniform actions before ``learning_starts`` (the warm-up policy, or epsilon 1);
    afterwards the exploration policy with the epsilon schedule (DQN, QT-Opt; the
    epsilon is part of the policy's ``state_dict``, so worker processes see it) or
    fresh noise state (each iteration starts new episodes).
    """
    warm = env_steps < cfg.learning_starts
    if warm and models.warmup_pol is not None:
        return models.warmup_pol
    pol = models.explore_pol
    if isinstance(pol, ArgmaxQfPol) and isinstance(cfg, EpsilonGreedy):
        pol.epsilon = 1.0 if warm else cfg.epsilon_at(env_steps)  # type: ignore[assignment]  # a float sets the buffer
    if isinstance(pol, DeterministicActionNoisePol):
        pol.reset()
    return pol


def target_steps(cfg: OffPolicyConfig) -> int:
    """Env steps to train for: ``steps`` rounded up to whole ``steps_per_iter`` iterations.

    With ``epis_per_iter`` the run stops after the episode that reaches ``steps``.
    """
    spi = cfg.steps_per_iter
    return cfg.steps if spi <= 0 else spi * max(1, math.ceil(cfg.steps / spi))


def _sample(sampler: EpiSampler, pol: nn.Module, cfg: OffPolicyConfig) -> list[dict[str, Any]]:
    if cfg.epis_per_iter > 0:
        return sampler.sample(pol, max_epis=cfg.epis_per_iter)
    return sampler.sample(pol, max_steps=cfg.steps_per_iter)


def run_off_policy(cfg: OffPolicyConfig, models: Models, session: Session) -> RunOutcome:
    """Train ``models`` as ``cfg`` says, with ``session``'s bookkeeping; returns the outcome."""
    train = algorithm(cfg).train  # e.g. ppo_clip.train, sac.train (trajkit.run.registry)
    device = torch.device(cfg.device)
    buf = make_seq_buffer(cfg, device, models.pol) if isinstance(cfg, R2D2SACConfig) else make_buffer(cfg, device)
    seqs = isinstance(buf, SeqReplayBuffer)
    continuing = isinstance(cfg, R2D2SACConfig) and cfg.continuing  # the logger joins the pieces
    gen = torch.Generator().manual_seed(cfg.seed)  # minibatch indices are drawn on the CPU
    target = target_steps(cfg)
    record: dict[str, float] = {}
    with EpiSampler(cfg.env, models.explore_pol, num_parallel=cfg.num_parallel, seed=cfg.seed,
                    timeout=sampler_timeout(cfg), continuing=continuing) as sampler:
        entries = {**models.checkpoint, "buffer": buf, "generator": gen, "sampler": sampler}
        session.restore(entries)
        c = session.counters
        c.setdefault("pending", 0)  # new steps not yet trained on
        with session.reporting(target) as (bar, logger):
            while c["env_steps"] < target:
                set_lrs(models.optims, [cfg.lr] * len(models.optims), lr_fraction(c["env_steps"], cfg.lr_decay_steps))
                pol = behaviour_pol(cfg, models, c["env_steps"])
                epis = _sample(sampler, pol, cfg)
                traj = ef.add_next_obs(Traj.from_epis(epis, device=device))
                if cfg.nstep > 1:
                    traj = ef.compute_nstep_rets(traj, cfg.train.gamma, cfg.nstep)  # type: ignore[attr-defined]
                buf.add(traj)
                steps_before = c["env_steps"]
                c["iteration"] += 1
                c["env_steps"] += traj.num_step
                c["episodes"] += len(completed_epis(epis))
                if c["env_steps"] >= cfg.learning_starts:  # warm-up steps are never "new"
                    c["pending"] += traj.num_step
                result = None
                if c["pending"] >= cfg.train_freq:
                    num_steps = int(c["pending"] * cfg.grad_ratio)
                    source = {"buffer": buf} if seqs else {"traj": buf, "nstep": cfg.nstep > 1}
                    result = train(**source, **models.train_args, **cfg.train_kwargs(), num_steps=num_steps,
                                   generator=gen)
                    c["pending"] = 0
                last = c["env_steps"] >= target
                extra = dict(session.evaluate(models.pol)) if session.evaluation_due(steps_before) and not last else {}
                if isinstance(pol, ArgmaxQfPol):
                    extra["epsilon"] = float(pol.epsilon)
                record = logger.log_iteration(
                    iteration=c["iteration"], env_steps=c["env_steps"], episodes=c["episodes"],
                    epis=epis if continuing else completed_epis(epis), result=result, extra=extra,
                )
                bar.update(traj.num_step)
                session.end_iteration(entries, last=last)
    return session.finish(models.pol, record)
