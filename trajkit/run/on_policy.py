"""The on-policy loop (PPO, PPO-KL, TRPO, VPG): sample, estimate, train, log, checkpoint.

Each iteration samples ``steps_per_iter`` steps (episodes are cut there and bootstrap
from ``V(final_obs)``), runs the estimator chain, and calls the algorithm's ``train()``
with the models (by keyword) and the config's ``train`` fields (as they are, after the
config's schedule: learning rates, PPO's clip, PPO-KL's adapted coefficient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from trajkit import ef
from trajkit.recurrent import is_recurrent
from trajkit.run.config import OnPolicyConfig
from trajkit.run.models import Models
from trajkit.run.registry import algorithm
from trajkit.run.session import RunOutcome, Session, sampler_timeout
from trajkit.samplers import EpiSampler
from trajkit.traj import Traj


def estimate(traj: Traj, vf: torch.nn.Module, gamma: float, lam: float, seq_len: int | None = None) -> Traj:
    """The on-policy estimator chain: values, returns, GAE advantages (centered), h-masks.

    A recurrent ``vf`` trained on chunks (``seq_len``) also gets its hidden states, ``vf_hs``
    (unless ``ef.carry_hs`` already put them there).
    """
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, gamma)
    traj = ef.compute_advs(traj, gamma, lam)
    traj = ef.centerize_advs(traj)
    traj = ef.compute_h_masks(traj)
    if seq_len is not None and is_recurrent(vf) and "vf_hs" not in traj:
        traj = ef.compute_hs(traj, vf, key="vf_hs")
    return traj


def scale_rews(traj: Traj, models: Models) -> Traj:
    """With the run's :class:`~trajkit.RewScaler` (``rew_norm``): merge ``traj``'s returns into it, then
    divide ``traj``'s rewards (``ef.scale_rews``); without one, ``traj`` as it is."""
    if models.rew_scaler is None:
        return traj
    models.rew_scaler.update(traj)
    return ef.scale_rews(traj, models.rew_scaler)


def completed_epis(epis: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The episodes that were not cut by the sampler's step budget (cut ones would bias returns down)."""
    return [e for e in epis if not e["sampler_cut"]]


def on_policy_sampler(cfg: OnPolicyConfig, pol: torch.nn.Module) -> EpiSampler:
    """The sampler of an on-policy run: ``num_parallel`` workers of ``num_envs`` envs, ``continuing`` or not."""
    return EpiSampler(cfg.env, pol, num_parallel=cfg.num_parallel, seed=cfg.seed, num_envs_per_worker=cfg.num_envs,
                      continuing=cfg.continuing, timeout=sampler_timeout(cfg))


def logged_epis(cfg: OnPolicyConfig, epis: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the logger's return statistics get: every piece when ``continuing`` (it joins them into
    whole episodes), else the completed episodes only."""
    return list(epis) if cfg.continuing else completed_epis(epis)


def lr_fraction(env_steps: int, decay_steps: int) -> float:
    """The learning-rate multiplier after ``env_steps``: linear from 1 to 0 at ``decay_steps`` (0: always 1)."""
    return 1.0 if decay_steps <= 0 else max(0.0, 1.0 - env_steps / decay_steps)


def set_lrs(optims: Sequence[torch.optim.Optimizer], lrs: Sequence[float], frac: float) -> None:
    """Set each optimizer's learning rate to its base rate times ``frac``."""
    for optim, lr in zip(optims, lrs, strict=True):
        for group in optim.param_groups:
            group["lr"] = lr * frac


def run_on_policy(cfg: OnPolicyConfig, models: Models, session: Session) -> RunOutcome:
    """Train ``models`` as ``cfg`` says, with ``session``'s bookkeeping; returns the outcome."""
    train = algorithm(cfg).train  # e.g. ppo_clip.train, sac.train (trajkit.run.registry)
    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)  # minibatch indices are drawn on the CPU
    base_lrs = [cfg.vf_lr] + ([cfg.lr] if cfg.has_optim_pol else [])  # in the order of models.optims
    spi = cfg.steps_per_iter
    total_iters = max(1, math.ceil(cfg.steps / spi))
    record: dict[str, float] = {}
    vf_recurrent = is_recurrent(models.train_args["vf"])
    vf_carried: dict[tuple[int, int], torch.Tensor] | None = None  # not checkpointed: a resume starts fresh episodes
    with on_policy_sampler(cfg, models.pol) as sampler:
        entries = {**models.checkpoint, "generator": gen, "sampler": sampler}
        session.restore(entries)
        c = session.counters
        with session.reporting(total_iters * spi) as (bar, logger):
            while c["iteration"] < total_iters:
                frac = lr_fraction(c["env_steps"], cfg.lr_decay_steps)
                set_lrs(models.optims, base_lrs, frac)
                epis = sampler.sample(models.pol, max_steps=spi)
                traj = Traj.from_epis(epis, device=device)
                if models.obs_normalizer is not None:
                    models.obs_normalizer.update(traj["obs"])
                traj = scale_rews(traj, models)
                if cfg.continuing and vf_recurrent:  # the vf's state, carried like the sampler carries the policy's
                    traj, vf_carried = ef.carry_hs(traj, models.train_args["vf"], vf_carried)
                traj = estimate(traj, models.train_args["vf"], cfg.gamma, cfg.lam, cfg.train.seq_len)
                kwargs = cfg.train_kwargs(cfg.scheduled(frac, session.algo_state))
                result = train(traj=traj, **models.train_args, **kwargs, generator=gen)
                cfg.after_train(result.diagnostics, session.algo_state)
                done = completed_epis(epis)
                steps_before = c["env_steps"]
                c["iteration"] += 1
                c["env_steps"] += traj.num_step
                c["episodes"] += len(done)
                last = c["iteration"] == total_iters
                extra = session.evaluate(models.pol) if session.evaluation_due(steps_before) and not last else None
                record = logger.log_iteration(
                    iteration=c["iteration"], env_steps=c["env_steps"], episodes=c["episodes"],
                    epis=logged_epis(cfg, epis), result=result, extra=extra,
                )
                bar.update(traj.num_step)
                session.end_iteration(entries, last=last)
    return session.finish(models.pol, record)
