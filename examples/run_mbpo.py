"""MBPO (SAC on real and imagined transitions) with trajkit, top to bottom.

    python examples/run_mbpo.py                          # Pendulum-v1, 3000 steps, the tuned preset
    python examples/run_mbpo.py --seed 1 --hp rollout_horizon=5

Settings come from ``trajkit/run/presets/mbpo.yaml`` (``trajkit train mbpo``). Uniform
random actions for the first ``learning_starts`` steps; then, every ``steps_per_iter``
real steps: add them to the real buffer, refit the ensemble (``dynamics.train``),
branch ``rollouts_per_step`` imagined rollouts of ``rollout_horizon`` steps per new real
step from real start states with the current policy (``model_env.imagine``, a Traj
marked imagined), and take ``grad_ratio`` SAC steps per new real step with the unchanged
``sac.train`` on batches that are ``real_ratio`` real (``mbpo.MixedSource``).
Prints a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import dynamics, sac
from trajkit.algos.mbpo import MixedSource
from trajkit.envs.model_env import imagine
from trajkit.logger import Logger, progress_bar
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("mbpo", __doc__, "Pendulum-v1", argv)


def run(args: argparse.Namespace, cfg: tk.run.model_based_config.MBPOConfig) -> dict[str, float]:
    """Train as ``cfg`` says; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # SAC's models plus the ensemble
    a, t = models.train_args, cfg.train
    model, optim_model = models.checkpoint["model"], models.checkpoint["optim_model"]
    real = tk.ReplayBuffer(cfg.buffer_size, keys=["obs", "acs", "rews"])
    per_iter = cfg.rollouts_per_step * cfg.steps_per_iter * cfg.rollout_horizon
    imagined = tk.ReplayBuffer(per_iter * cfg.model_retain_iters, keys=["obs", "acs", "rews"])
    batches = MixedSource(real, imagined, cfg.real_ratio)
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(cfg.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(env, models.pol, num_parallel=cfg.num_parallel, seed=cfg.seed, continuing=True) as sampler:
        while steps < cfg.steps:
            pol = models.warmup_pol if steps < cfg.learning_starts else models.pol
            assert pol is not None
            epis = sampler.sample(pol, max_steps=min(cfg.steps_per_iter, cfg.steps - steps))
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            real.add(traj)
            steps += traj.num_step
            it += 1
            result, extra = None, {}
            if steps >= cfg.learning_starts:
                fit = dynamics.train(traj=real, model=model, optim=optim_model, **cfg.model_train_kwargs(),
                                     generator=gen)
                starts = real.random_batch(cfg.rollouts_per_step * traj.num_step, gen)["obs"]
                dream = imagine(model=model, pol=models.pol, start_obs=starts, horizon=cfg.rollout_horizon,
                                generator=gen)  # a Traj with traj.epi["imagined"] all True
                imagined.add(dream)
                result = sac.train(
                    traj=batches, pol=a["pol"], qf1=a["qf1"], qf2=a["qf2"], target_qf1=a["target_qf1"],
                    target_qf2=a["target_qf2"], log_alpha=a["log_alpha"], optim_pol=a["optim_pol"],
                    optim_qf=a["optim_qf"], optim_alpha=a["optim_alpha"],
                    num_steps=int(traj.num_step * cfg.grad_ratio), batch_size=t.batch_size, gamma=t.gamma,
                    tau=t.tau, target_ent=t.target_ent, per_beta=t.per_beta, generator=gen,
                )
                extra = {"model_val_mse": fit.diagnostics["best_val_mse"], "imagined_rew": float(dream["rews"].mean())}
            done = [e for e in epis if not e["sampler_cut"]]
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result, extra=extra)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)
    return finish(args, cfg, models.pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
