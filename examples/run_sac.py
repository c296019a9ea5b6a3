"""SAC (twin critics, tanh-squashed Gaussian, automatic temperature) with trajkit, top to bottom.

    python examples/run_sac.py                        # Pendulum-v1, 20k steps
    python examples/run_sac.py --env Pendulum-v1 --steps 20000 --seed 1 --logdir runs/sac_s1

Each iteration: sample ``--steps-per-iter`` env steps (random actions until
``--learning-starts``), add them to the replay buffer, then take ``--grad-ratio``
gradient steps per new env step with ``sac.train`` on the whole buffer. Logs every
iteration to ``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``) and prints a
deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from _common import UniformPol

import trajkit as tk
from trajkit import ef, nets
from trajkit.algos import sac
from trajkit.logger import Logger, progress_bar


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--steps", type=int, default=20_000, help="total env steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--buffer-size", type=int, default=1_000_000)
    p.add_argument("--learning-starts", type=int, default=1000, help="random-action steps before training")
    p.add_argument("--steps-per-iter", type=int, default=200)
    p.add_argument("--grad-ratio", type=float, default=1.0, help="gradient steps per env step")
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--tau", type=float, default=0.005)
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default="runs/sac", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the final evaluation and timing."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, env: {args.env}, seed: {args.seed}")

    env = tk.GymEnv(args.env)
    ob, ac = env.observation_space, env.action_space
    od, ad = tk.pols.flat_dim(ob), tk.pols.flat_dim(ac)
    relu_mlp = lambda i, o: nets.mlp(i, o, args.hidden, torch.nn.ReLU, orthogonal=False)  # noqa: E731
    pol = tk.SquashedGaussianPol(ob, ac, relu_mlp(od, 2 * ad))
    qf1 = tk.DeterministicSAVfunc(ob, ac, relu_mlp(od + ad, 1))
    qf2 = tk.DeterministicSAVfunc(ob, ac, relu_mlp(od + ad, 1))
    targ_qf1, targ_qf2 = copy.deepcopy(qf1), copy.deepcopy(qf2)
    log_alpha = torch.zeros((), requires_grad=True)
    optim_pol = torch.optim.Adam(pol.parameters(), args.lr)
    optim_qf = torch.optim.Adam([*qf1.parameters(), *qf2.parameters()], args.lr)
    optim_alpha = torch.optim.Adam([log_alpha], args.lr)
    buf = tk.ReplayBuffer(args.buffer_size)
    random_pol = UniformPol(pol)  # warm-up actions in the policy's [-1, 1] space
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(env, pol, seed=args.seed) as sampler:
        while steps < args.steps:
            behaviour = random_pol if steps < args.learning_starts else pol
            epis = sampler.sample(behaviour, max_steps=min(args.steps_per_iter, args.steps - steps))
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            buf.add(traj)
            steps += traj.num_step
            it += 1
            result = None
            if steps >= args.learning_starts:
                result = sac.train(
                    traj=buf, pol=pol, qf1=qf1, qf2=qf2, targ_qf1=targ_qf1, targ_qf2=targ_qf2,
                    log_alpha=log_alpha, optim_pol=optim_pol, optim_qf=optim_qf, optim_alpha=optim_alpha,
                    num_steps=int(traj.num_step * args.grad_ratio), batch_size=args.batch_size,
                    gamma=args.gamma, tau=args.tau, generator=gen,
                )
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
