"""PPO (clipped surrogate, or adaptive KL penalty with ``--penalty kl``) with trajkit, top to bottom.

    python examples/run_ppo.py                                # CartPole-v1, 100k steps
    python examples/run_ppo.py --env Pendulum-v1 --steps 200000 --max-steps-per-iter 2048 \
        --epoch 10 --batch-size 64 --gamma 0.9 --lam 0.95 --lr 1e-3

Each iteration: sample episodes -> Traj -> estimators -> ppo_clip.train (or
ppo_kl.train, passing the adapted KL coefficient from one call to the next). Learning rate
and clip range decay linearly to 0 over the run (the rl-zoo CartPole recipe). Logs every
iteration with ``trajkit.logger.Logger`` to ``--logdir`` (``progress.csv``, TensorBoard
events in ``tb/``) and prints a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import build_pol_vf

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip, ppo_kl
from trajkit.logger import Logger, progress_bar


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=100_000, help="total env steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-parallel", type=int, default=1, help="sampler worker processes (0/1: in-process)")
    p.add_argument("--max-steps-per-iter", type=int, default=256)
    p.add_argument("--epoch", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.98)
    p.add_argument("--lam", type=float, default=0.8)
    p.add_argument("--penalty", choices=["clip", "kl"], default="clip", help="PPO-clip or PPO-KL")
    p.add_argument("--clip-param", type=float, default=0.2)
    p.add_argument("--kl-targ", type=float, default=0.01, help="PPO-KL's target KL")
    p.add_argument("--kl-beta", type=float, default=1.0, help="PPO-KL's initial coefficient")
    p.add_argument("--ent-beta", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--no-decay", action="store_true", help="keep lr and clip constant")
    p.add_argument("--obs-norm", action="store_true", help="running observation normalization")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default="runs/ppo", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the final evaluation and timing."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, env: {args.env}, seed: {args.seed}")

    env = tk.GymEnv(args.env)
    pol, vf = build_pol_vf(env, obs_norm=args.obs_norm)
    optim_pol = torch.optim.Adam(pol.parameters(), args.lr)
    optim_vf = torch.optim.Adam(vf.parameters(), args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    kl_beta = args.kl_beta
    with tk.EpiSampler(env, pol, num_parallel=args.num_parallel, seed=args.seed) as sampler:
        while steps < args.steps:
            frac = 1.0 - steps / args.steps if not args.no_decay else 1.0
            for group in optim_pol.param_groups + optim_vf.param_groups:
                group["lr"] = args.lr * frac

            epis = sampler.sample(pol, max_steps=min(args.max_steps_per_iter, args.steps - steps))
            traj = tk.Traj.from_epis(epis)
            if pol.obs_normalizer is not None:
                pol.obs_normalizer.update(traj["obs"])
            traj = ef.compute_vs(traj, vf)
            traj = ef.compute_rets(traj, args.gamma)
            traj = ef.compute_advs(traj, args.gamma, args.lam)
            traj = ef.centerize_advs(traj)

            if args.penalty == "clip":
                result = ppo_clip.train(
                    traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf,
                    epoch=args.epoch, batch_size=args.batch_size, clip_param=args.clip_param * frac,
                    ent_beta=args.ent_beta, max_grad_norm=args.max_grad_norm, generator=gen,
                )
            else:
                result = ppo_kl.train(
                    traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf,
                    epoch=args.epoch, batch_size=args.batch_size, kl_beta=kl_beta, kl_targ=args.kl_targ,
                    ent_beta=args.ent_beta, max_grad_norm=args.max_grad_norm, generator=gen,
                )
                kl_beta = result.diagnostics["kl_beta"]

            steps += traj.num_step
            it += 1
            done = [e for e in epis if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result)
            bar.update(traj.num_step)
    bar.close()
    logger.close()

    train_time = time.time() - start
    eval_rets = tk.evaluate(args.env, pol, num_epis=args.eval_epis, seed=10_000 + args.seed)
    print(f"steps {steps}, {train_time:.0f}s; deterministic eval over {args.eval_epis} episodes: "
          f"{np.mean(eval_rets):.1f} +- {np.std(eval_rets):.1f}")
    return {"steps": steps, "eval_mean": float(np.mean(eval_rets)), "eval_std": float(np.std(eval_rets)),
            "train_time": train_time}


if __name__ == "__main__":
    run(parse_args())
