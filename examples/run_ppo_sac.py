"""PPO and SAC updating one policy (machina's on/off-policy combination), top to bottom.

    python examples/run_ppo_sac.py                      # Pendulum-v1, 20k steps
    python examples/run_ppo_sac.py --no-sac --logdir runs/ppo_only    # the same loop, PPO alone

Each iteration samples ``--steps-per-iter`` env steps with the policy, then

1. trains ``ppo_clip`` on those fresh episodes (on-policy: GAE advantages from ``vf``);
2. adds them to a replay buffer holding every step so far and trains ``sac`` on it.

Both update the same ``SquashedGaussianPol`` (each with its own optimizer), so SAC
reuses all past data while PPO follows the newest. ``--no-sac`` skips step 2 for the
PPO-only baseline at equal env steps. Logs every iteration (SAC's losses, PPO's as
``ppo_*``) to ``--logdir`` (``progress.csv``, TensorBoard events in ``tb/``) and prints
a deterministic evaluation at the end.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from _common import save_run

import trajkit as tk
from trajkit import ef, nets
from trajkit.algos import ppo_clip, sac
from trajkit.logger import Logger, progress_bar


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--steps", type=int, default=20_000, help="total env steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--steps-per-iter", type=int, default=1000)
    p.add_argument("--no-sac", action="store_true", help="PPO alone (the baseline)")
    p.add_argument("--ppo-lr", type=float, default=3e-4)
    p.add_argument("--ppo-epoch", type=int, default=10)
    p.add_argument("--ppo-batch-size", type=int, default=64)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--sac-lr", type=float, default=1e-3)
    p.add_argument("--sac-batch-size", type=int, default=256)
    p.add_argument("--grad-ratio", type=float, default=1.0, help="SAC gradient steps per env step")
    p.add_argument("--buffer-size", type=int, default=1_000_000)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--tau", type=float, default=0.005)
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default="runs/ppo_sac", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the final evaluation and timing."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, env: {args.env}, seed: {args.seed}, sac: {not args.no_sac}")

    env = tk.GymEnv(args.env)
    ob, ac = env.observation_space, env.action_space
    od, ad = tk.pols.flat_dim(ob), tk.pols.flat_dim(ac)
    relu_mlp = lambda i, o: nets.mlp(i, o, args.hidden, torch.nn.ReLU, orthogonal=False)  # noqa: E731
    pol = tk.SquashedGaussianPol(ob, ac, relu_mlp(od, 2 * ad))
    vf = tk.DeterministicSVfunc(ob, relu_mlp(od, 1))
    qf1 = tk.DeterministicSAVfunc(ob, ac, relu_mlp(od + ad, 1))
    qf2 = tk.DeterministicSAVfunc(ob, ac, relu_mlp(od + ad, 1))
    target_qf1, target_qf2 = copy.deepcopy(qf1), copy.deepcopy(qf2)
    log_alpha = torch.zeros((), requires_grad=True)
    optim_ppo_pol = torch.optim.Adam(pol.parameters(), args.ppo_lr)
    optim_vf = torch.optim.Adam(vf.parameters(), args.ppo_lr)
    optim_sac_pol = torch.optim.Adam(pol.parameters(), args.sac_lr)
    optim_qf = torch.optim.Adam([*qf1.parameters(), *qf2.parameters()], args.sac_lr)
    optim_alpha = torch.optim.Adam([log_alpha], args.sac_lr)
    buf = tk.ReplayBuffer(args.buffer_size, keys=["obs", "acs", "rews"])
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    with tk.EpiSampler(env, pol, seed=args.seed) as sampler:
        while steps < args.steps:
            epis = sampler.sample(pol, max_steps=min(args.steps_per_iter, args.steps - steps))
            traj = tk.Traj.from_epis(epis)

            # 1. on-policy: PPO on the fresh episodes
            traj = ef.compute_vs(traj, vf)
            traj = ef.compute_rets(traj, args.gamma)
            traj = ef.compute_advs(traj, args.gamma, args.lam)
            traj = ef.centerize_advs(traj)
            ppo = ppo_clip.train(traj=traj, pol=pol, vf=vf, optim_pol=optim_ppo_pol, optim_vf=optim_vf,
                                 epoch=args.ppo_epoch, batch_size=args.ppo_batch_size, generator=gen)

            # 2. off-policy: SAC on every step so far
            buf.add(ef.add_next_obs(traj))
            result = None
            if not args.no_sac:
                result = sac.train(
                    traj=buf, pol=pol, qf1=qf1, qf2=qf2, target_qf1=target_qf1, target_qf2=target_qf2,
                    log_alpha=log_alpha, optim_pol=optim_sac_pol, optim_qf=optim_qf, optim_alpha=optim_alpha,
                    num_steps=int(traj.num_step * args.grad_ratio), batch_size=args.sac_batch_size,
                    gamma=args.gamma, tau=args.tau, generator=gen,
                )
            steps += traj.num_step
            it += 1
            done = [e for e in epis if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            n_epis += len(done)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done, result=result,
                                 extra={f"ppo_{k}": v for k, v in ppo.summary().items()})
            bar.update(traj.num_step)
    bar.close()
    logger.close()

    # a checkpoint `trajkit eval` reads: the policy, with the config of the run-layer recipe that builds it
    cfg = tk.run.resolve("sac", args.env, {"hidden": args.hidden})
    save_run(args.logdir, cfg, {"pol": pol}, iteration=it, env_steps=steps)

    train_time = time.time() - start
    eval_rets = tk.evaluate(args.env, pol, num_epis=args.eval_epis, seed=10_000 + args.seed)
    print(f"steps {steps}, {train_time:.0f}s; deterministic eval over {args.eval_epis} episodes: "
          f"{np.mean(eval_rets):.1f} +- {np.std(eval_rets):.1f}")
    return {"steps": steps, "eval_mean": float(np.mean(eval_rets)), "eval_std": float(np.std(eval_rets)),
            "train_time": train_time}


if __name__ == "__main__":
    run(parse_args())
