"""TRPO with trajkit, top to bottom.

    python examples/run_trpo.py                               # CartPole-v1, 100k steps
    python examples/run_trpo.py --env Pendulum-v1 --steps 200000 --gamma 0.9

Each iteration: sample episodes -> Traj -> estimators -> trpo.train (a natural-gradient
step under ``--max-kl`` plus value regression). Logs every iteration to ``--logdir``
(``progress.csv``, TensorBoard events in ``tb/``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import build_pol_vf

import trajkit as tk
from trajkit import ef
from trajkit.algos import trpo
from trajkit.logger import Logger, progress_bar


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-parallel", type=int, default=1)
    p.add_argument("--max-steps-per-iter", type=int, default=1024)
    p.add_argument("--max-kl", type=float, default=0.01)
    p.add_argument("--vf-lr", type=float, default=1e-3)
    p.add_argument("--vf-epoch", type=int, default=5)
    p.add_argument("--vf-batch-size", type=int, default=64)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default="runs/trpo", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the final evaluation and timing."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, env: {args.env}, seed: {args.seed}")

    env = tk.GymEnv(args.env)
    pol, vf = build_pol_vf(env)
    optim_vf = torch.optim.Adam(vf.parameters(), args.vf_lr)
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(env, pol, num_parallel=args.num_parallel, seed=args.seed) as sampler:
        while steps < args.steps:
            epis = sampler.sample(pol, max_steps=min(args.max_steps_per_iter, args.steps - steps))
            traj = tk.Traj.from_epis(epis)
            traj = ef.compute_vs(traj, vf)
            traj = ef.compute_rets(traj, args.gamma)
            traj = ef.compute_advs(traj, args.gamma, args.lam)
            traj = ef.centerize_advs(traj)

            result = trpo.train(
                traj=traj, pol=pol, vf=vf, optim_vf=optim_vf, max_kl=args.max_kl,
                vf_epoch=args.vf_epoch, vf_batch_size=args.vf_batch_size, generator=gen,
            )

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
