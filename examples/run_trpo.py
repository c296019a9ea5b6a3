"""TRPO (natural gradient by conjugate gradient, line search within max_kl) with trajkit, top to bottom.

    python examples/run_trpo.py                                # CartPole-v1, the tuned preset, 100k steps
    python examples/run_trpo.py --env Acrobot-v1 --hp lam=0.97  # any setting of the preset

Settings come from ``trajkit/run/presets/trpo.yaml``, the file ``trajkit train trpo`` reads.
Each iteration: sample episodes -> Traj -> estimators -> ``trpo.train``. Logs every
iteration to ``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``), saves
``checkpoint.pt`` (``trajkit eval LOGDIR`` reads it) and prints a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from _common import finish, parse_run_args, save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import trpo
from trajkit.logger import Logger, progress_bar
from trajkit.run.on_policy import completed_epis, logged_epis
from trajkit.run.registry import build_models


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("trpo", __doc__, "CartPole-v1", argv)


def run(args: argparse.Namespace, cfg: tk.run.OnPolicyConfig) -> dict[str, float]:
    """Train as ``cfg`` says; returns the final evaluation and timing."""
    env = tk.GymEnv(cfg.env)
    models = build_models(cfg, env.observation_space, env.action_space)  # the models trajkit train builds
    pol, vf, optim_vf = models.train_args["pol"], models.train_args["vf"], models.train_args["optim_vf"]
    gen = torch.Generator().manual_seed(cfg.seed)
    total_iters = math.ceil(cfg.steps / cfg.steps_per_iter)  # whole iterations, as trajkit train runs them
    bar = progress_bar(total_iters * cfg.steps_per_iter, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    # num_envs envs per sampler, one batched forward per step; continuing: episodes cut at an
    # iteration's end go on in the next one (the cut piece bootstraps from its final_obs)
    with tk.EpiSampler(env, pol, num_parallel=cfg.num_parallel, seed=cfg.seed, num_envs_per_worker=cfg.num_envs,
                       continuing=cfg.continuing) as sampler:
        while it < total_iters:
            epis = sampler.sample(pol, max_steps=cfg.steps_per_iter)
            traj = tk.Traj.from_epis(epis)
            if models.obs_normalizer is not None:
                models.obs_normalizer.update(traj["obs"])
            traj = ef.compute_vs(traj, vf)
            traj = ef.compute_rets(traj, cfg.gamma)
            traj = ef.compute_advs(traj, cfg.gamma, cfg.lam)
            traj = ef.centerize_advs(traj)

            t = cfg.train
            result = trpo.train(
                traj=traj, pol=pol, vf=vf, optim_vf=optim_vf, max_kl=t.max_kl, cg_iters=t.cg_iters,
                cg_damping=t.cg_damping, backtrack_steps=t.backtrack_steps, vf_epoch=t.vf_epoch,
                vf_batch_size=t.vf_batch_size, max_grad_norm=t.max_grad_norm, generator=gen,
            )

            steps += traj.num_step
            it += 1
            n_epis += len(completed_epis(epis))  # the episodes that ended in this iteration
            # the logger's returns: whole episodes (continuing: it joins the pieces)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=logged_epis(cfg, epis),
                                 result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()
    save_run(args.logdir, cfg, models.checkpoint, iteration=it, env_steps=steps, episodes=n_epis)
    return finish(args, cfg, pol, steps, start)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
