"""Double DQN with dueling heads (optionally prioritized replay) with trajkit, top to bottom.

    python examples/run_dqn.py                          # CartPole-v1, 100k steps
    python examples/run_dqn.py --prioritized --beta 0.4 --seed 1 --logdir runs/dqn_per_s1

Whole episodes are sampled with an epsilon-greedy ``ArgmaxQfPol`` (epsilon decays
linearly from 1 to ``--eps-end`` over ``--exploration-steps``). Once ``--train-freq``
new steps are in the buffer, ``dqn.train`` takes ``--grad-ratio`` gradient steps per new
env step (128 per 256 env steps, as in the rl-zoo CartPole recipe) on 3-step return
targets (``ef.compute_nstep_rets``), moving the target network by ``--tau`` after every
gradient step; the learning rate decays linearly to 0.
(The rl-zoo recipe's lr 2.3e-3 with a target copy per training phase,
``--lr 2.3e-3 --batch-size 64 --tau 1 --target-update-interval 0 --no-lr-decay --nstep 1``,
reaches 500 and then collapses, in trajkit and in stable-baselines3 alike; one-step targets
with the softer settings still collapse on some seeds.) Logs every iteration to
``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``) and prints a greedy
evaluation at the end.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

import trajkit as tk
from trajkit import ef, nets
from trajkit.algos import dqn
from trajkit.logger import Logger, progress_bar


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=100_000, help="total env steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--no-dueling", action="store_true", help="plain MLP head instead of a dueling one")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--buffer-size", type=int, default=100_000)
    p.add_argument("--prioritized", action="store_true", help="proportional prioritized replay")
    p.add_argument("--alpha", type=float, default=0.6, help="prioritization exponent")
    p.add_argument("--beta", type=float, default=0.4, help="importance-weight exponent")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--train-freq", type=int, default=256, help="train once this many new steps are stored")
    p.add_argument("--grad-ratio", type=float, default=0.5, help="gradient steps per env step")
    p.add_argument("--exploration-steps", type=int, default=8000)
    p.add_argument("--eps-end", type=float, default=0.04)
    p.add_argument("--tau", type=float, default=0.01, help="target update coefficient (1: copy)")
    p.add_argument("--target-update-interval", type=int, default=1,
                   help="gradient steps between target updates (0: once at the end of each training phase)")
    p.add_argument("--lr-decay", action=argparse.BooleanOptionalAction, default=True,
                   help="decay the learning rate linearly to 0 over the run")
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--nstep", type=int, default=3, help="n-step return targets (1: one-step)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default="runs/dqn", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the final evaluation and timing."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, env: {args.env}, seed: {args.seed}")

    env = tk.GymEnv(args.env)
    ob, ac = env.observation_space, env.action_space
    od, n = tk.pols.flat_dim(ob), int(ac.n)
    if args.no_dueling:
        net = nets.mlp(od, n, args.hidden, torch.nn.ReLU, orthogonal=False)
    else:
        net = nets.dueling_mlp(od, n, args.hidden)
    qf = tk.DiscreteQfunc(ob, ac, net)
    targ_qf = copy.deepcopy(qf)
    optim_qf = torch.optim.Adam(qf.parameters(), args.lr)
    pol = tk.ArgmaxQfPol(ob, ac, qf, epsilon=1.0)
    if args.prioritized:
        buf = tk.PrioritizedReplayBuffer(args.buffer_size, alpha=args.alpha)
    else:
        buf = tk.ReplayBuffer(args.buffer_size)
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, pending, start = 0, 0, 0, 0, time.time()
    result = None
    with tk.EpiSampler(env, pol, seed=args.seed) as sampler:
        while steps < args.steps:
            if args.lr_decay:
                for group in optim_qf.param_groups:
                    group["lr"] = args.lr * (1.0 - steps / args.steps)
            pol.epsilon = max(args.eps_end, 1.0 - (1.0 - args.eps_end) * steps / args.exploration_steps)
            epis = sampler.sample(pol, max_epis=1, max_steps=args.steps - steps)
            traj = ef.add_next_obs(tk.Traj.from_epis(epis))
            if args.nstep > 1:
                traj = ef.compute_nstep_rets(traj, args.gamma, args.nstep)
            buf.add(traj)
            steps += traj.num_step
            pending += traj.num_step
            it += 1
            if steps >= args.learning_starts and pending >= args.train_freq:
                num_steps = int(pending * args.grad_ratio)
                result = dqn.train(
                    traj=buf, qf=qf, targ_qf=targ_qf, optim_qf=optim_qf, num_steps=num_steps,
                    batch_size=args.batch_size, gamma=args.gamma, tau=args.tau,
                    target_update_interval=args.target_update_interval or num_steps,
                    beta=args.beta, nstep=args.nstep > 1, generator=gen,
                )
                pending = 0
            done = [e for e in epis if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra={"epsilon": pol.epsilon})
            bar.update(traj.num_step)
    bar.close()
    logger.close()

    train_time = time.time() - start
    eval_rets = tk.evaluate(args.env, pol, num_epis=args.eval_epis, seed=10_000 + args.seed)
    print(f"steps {steps}, {train_time:.0f}s; greedy eval over {args.eval_epis} episodes: "
          f"{np.mean(eval_rets):.1f} +- {np.std(eval_rets):.1f}")
    return {"steps": steps, "eval_mean": float(np.mean(eval_rets)), "eval_std": float(np.std(eval_rets)),
            "train_time": train_time}


if __name__ == "__main__":
    run(parse_args())
