"""The model-based loop (MPC, PETS, MBPO): sample, store, refit the dynamics ensemble, act or train on it.

Each iteration samples ``steps_per_iter`` real steps (uniform actions before
``learning_starts``; episodes continue across iterations), adds them with their
``next_obs`` to the real replay buffer and refits the ensemble on all of it with
``dynamics.train``. Then MPC and PETS are done: their policy plans through the model at
every step. MBPO branches ``rollouts_per_step`` imagined rollouts per new real step from
real start states (``model_env.imagine``), stores them in the imagined buffer, and takes
``grad_ratio`` SAC steps per new real step with ``sac.train`` on batches mixed by
``real_ratio`` (``mbpo.MixedSource``). Checkpoints hold the models, optimizers, both
buffers, the generator, sampler RNG states and counters.
"""

from __future__ import annotations

from typing import Any

import torch

from trajkit import ef
from trajkit.algos import dynamics, sac
from trajkit.algos.common import TrainResult
from trajkit.algos.mbpo import MixedSource
from trajkit.buffers import ReplayBuffer
from trajkit.envs.model_env import imagine
from trajkit.mpc import MPCPol
from trajkit.run.model_based_config import MBPOConfig, ModelBasedConfig
from trajkit.run.models import Models
from trajkit.run.on_policy import completed_epis
from trajkit.run.session import RunOutcome, Session, sampler_timeout
from trajkit.samplers import EpiSampler
from trajkit.traj import Traj

#: the step columns both replay buffers keep (plus ``next_obs`` and ``terminals``)
BUFFER_KEYS = ("obs", "acs", "rews")


def _mbpo_update(
    cfg: MBPOConfig, models: Models, real: ReplayBuffer, imagined: ReplayBuffer, new_steps: int,
    gen: torch.Generator,
) -> tuple[TrainResult, dict[str, float]]:
    """Branch imagined rollouts from real start states, then SAC on mixed batches; the SAC result and diagnostics."""
    starts = real.random_batch(cfg.rollouts_per_step * new_steps, gen)["obs"]
    dream = imagine(model=models.checkpoint["model"], pol=models.pol, start_obs=starts,
                    horizon=cfg.rollout_horizon, generator=gen)
    imagined.add(dream)
    result = sac.train(traj=MixedSource(real, imagined, cfg.real_ratio), **models.train_args,
                       **cfg.train_kwargs(), num_steps=int(new_steps * cfg.grad_ratio), nstep=False, generator=gen)
    return result, {"imagined_rew": float(dream["rews"].mean())}


def _evaluate(session: Session, pol: torch.nn.Module) -> dict[str, float]:
    """``session.evaluate(pol)``; a planning policy evaluates from a fresh plan and gets its training plan back.

    An ``MPCPol`` with ``warm_start`` carries its last plan from action to action, so an
    evaluation in between would otherwise change the actions training takes next (and a
    run with evaluations would differ from one without).
    """
    if not isinstance(pol, MPCPol):
        return session.evaluate(pol)
    saved = pol.plan_state().state_dict()
    pol.reset()
    try:
        return session.evaluate(pol)
    finally:
        pol.plan_state().load_state_dict(saved)


def run_model_based(cfg: ModelBasedConfig, models: Models, session: Session) -> RunOutcome:
    """Train ``models`` as ``cfg`` (an MPC, PETS or MBPO config) says, with ``session``'s bookkeeping."""
    device = torch.device(cfg.device)
    model = models.checkpoint["model"]
    optim = models.checkpoint["optim_model" if isinstance(cfg, MBPOConfig) else "optim"]
    fit_kwargs = cfg.model_train_kwargs() if isinstance(cfg, MBPOConfig) else cfg.train_kwargs()
    real = ReplayBuffer(cfg.buffer_size, device, BUFFER_KEYS)
    entries: dict[str, Any] = {**models.checkpoint, "buffer": real}
    if isinstance(models.pol, MPCPol):
        entries["plan"] = models.pol.plan_state()  # the warm-start plan: resumes are exact
    imagined = None
    if isinstance(cfg, MBPOConfig):
        per_iter = cfg.rollouts_per_step * cfg.steps_per_iter * cfg.rollout_horizon
        imagined = entries["imagined_buffer"] = ReplayBuffer(per_iter * cfg.model_retain_iters, device, BUFFER_KEYS)
    gen = torch.Generator().manual_seed(cfg.seed)
    record: dict[str, float] = {}
    with EpiSampler(cfg.env, models.explore_pol, num_parallel=cfg.num_parallel, seed=cfg.seed,
                    timeout=sampler_timeout(cfg), continuing=True) as sampler:
        entries |= {"generator": gen, "sampler": sampler}
        session.restore(entries)
        c = session.counters
        with session.reporting(cfg.steps) as (bar, logger):
            while c["env_steps"] < cfg.steps:
                pol = models.warmup_pol if c["env_steps"] < cfg.learning_starts else models.explore_pol
                assert pol is not None
                epis = sampler.sample(pol, max_steps=min(cfg.steps_per_iter, cfg.steps - c["env_steps"]))
                traj = ef.add_next_obs(Traj.from_epis(epis, device=device))
                real.add(traj)
                steps_before = c["env_steps"]
                c["iteration"] += 1
                c["env_steps"] += traj.num_step
                c["episodes"] += len(completed_epis(epis))
                result: TrainResult | None = None
                extra: dict[str, float] = {}
                if c["env_steps"] >= cfg.learning_starts:
                    fit = dynamics.train(traj=real, model=model, optim=optim, **fit_kwargs, generator=gen)
                    result, d = fit, fit.diagnostics
                    extra = {"model_val_mse": d["best_val_mse"], "model_epochs": d["epochs"]}
                    if isinstance(cfg, MBPOConfig) and imagined is not None:
                        result, more = _mbpo_update(cfg, models, real, imagined, traj.num_step, gen)
                        extra |= more
                last = c["env_steps"] >= cfg.steps
                if session.evaluation_due(steps_before) and not last:
                    extra |= _evaluate(session, models.pol)
                record = logger.log_iteration(iteration=c["iteration"], env_steps=c["env_steps"],
                                              episodes=c["episodes"], epis=epis, result=result,
                                              extra=extra)
                bar.update(traj.num_step)
                session.end_iteration(entries, last=last)
    if isinstance(models.pol, MPCPol):
        models.pol.reset()  # the final evaluation plans from scratch too (the last checkpoint is written)
    return session.finish(models.pol, record)


__all__ = ["BUFFER_KEYS", "run_model_based"]
