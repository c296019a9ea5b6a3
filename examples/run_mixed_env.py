"""One policy, two environments: PPO on episodes from two samplers (meta-RL style), top to bottom.

    python examples/run_mixed_env.py                          # HumanoidBulletEnv-v0 + HumanoidFlagrunBulletEnv-v0
    python examples/run_mixed_env.py --small                  # Pendulum-v1 with g=10 and with g=4 (quick)
    python examples/run_mixed_env.py --env-a InvertedPendulumBulletEnv-v0 \
        --env-b InvertedPendulumSwingupBulletEnv-v0 --steps 50000

Each iteration: each sampler collects its share of steps in its own env; each batch of
episodes becomes its own Traj and goes through the estimator chain on its own (values,
returns and advantages never cross an episode, let alone an env); then the two Trajs
are concatenated with ``tk.concat`` and PPO trains on the union. The two envs must
share observation and action spaces (Humanoid and HumanoidFlagrun do). Logs every
iteration, with each env's mean return (``return_a``, ``return_b``), to ``--logdir``
(``progress.csv``, TensorBoard events in ``tb/``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import save_run

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip
from trajkit.logger import Logger, progress_bar, return_stats

SMALL = ("Pendulum-v1", '{"g": 10.0}', "Pendulum-v1", '{"g": 4.0}')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-a", default="HumanoidBulletEnv-v0")
    p.add_argument("--env-b", default="HumanoidFlagrunBulletEnv-v0")
    p.add_argument("--env-a-kwargs", default="{}", help="JSON gymnasium.make kwargs for env a")
    p.add_argument("--env-b-kwargs", default="{}", help="JSON gymnasium.make kwargs for env b")
    p.add_argument("--small", action="store_true", help="two Pendulum-v1 variants (g=10, g=4) for a quick run")
    p.add_argument("--steps", type=int, default=1_000_000, help="total env steps over both envs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-parallel", type=int, default=1, help="worker processes per sampler (0/1: in-process)")
    p.add_argument("--backend", choices=["process", "ray"], default="process")
    p.add_argument("--max-steps-per-iter", type=int, default=4096, help="per iteration, split over the two envs")
    p.add_argument("--epoch", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--lam", type=float, default=0.95)
    p.add_argument("--clip-param", type=float, default=0.2)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--obs-norm", action="store_true", help="running observation normalization (shared)")
    p.add_argument("--logdir", default="runs/mixed_env", help="progress.csv and tb/ (TensorBoard) go here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    args = p.parse_args(argv)
    if args.small:
        args.env_a, args.env_a_kwargs, args.env_b, args.env_b_kwargs = SMALL
    return args


def make_envs(args: argparse.Namespace) -> tuple[tk.GymEnv, tk.GymEnv]:
    """The two envs; their spaces must match, since one policy acts in both."""
    env_a = tk.GymEnv(args.env_a, **json.loads(args.env_a_kwargs))
    env_b = tk.GymEnv(args.env_b, **json.loads(args.env_b_kwargs))
    if env_a.observation_space.shape != env_b.observation_space.shape or env_a.action_space != env_b.action_space:
        raise SystemExit(
            f"{args.env_a} and {args.env_b} differ in spaces ({env_a.observation_space} / {env_a.action_space} vs "
            f"{env_b.observation_space} / {env_b.action_space}); one policy cannot act in both"
        )
    return env_a, env_b


def estimate(epis: list[dict], vf: torch.nn.Module, gamma: float, lam: float) -> tk.Traj:
    """The estimator chain for one env's episodes."""
    traj = tk.Traj.from_epis(epis)
    traj = ef.compute_vs(traj, vf)
    traj = ef.compute_rets(traj, gamma)
    traj = ef.compute_advs(traj, gamma, lam)
    return traj


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train with the options in ``args``; returns the last iteration's mean returns per env."""
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, envs: {args.env_a} {args.env_a_kwargs} + "
          f"{args.env_b} {args.env_b_kwargs}, seed: {args.seed}")

    env_a, env_b = make_envs(args)
    pol, vf = tk.make_pol_vf(env_a, obs_norm=args.obs_norm)
    optim_pol = torch.optim.Adam(pol.parameters(), args.lr)
    optim_vf = torch.optim.Adam(vf.parameters(), args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(args.steps, enabled=not args.no_progress)
    logger = Logger(args.logdir, console=None if args.no_progress else bar.write)

    steps, it, n_epis, start = 0, 0, 0, time.time()
    ret_a = ret_b = float("nan")
    opts = {"num_parallel": args.num_parallel, "backend": args.backend}
    with tk.EpiSampler(env_a, pol, seed=2 * args.seed, **opts) as sampler_a, \
            tk.EpiSampler(env_b, pol, seed=2 * args.seed + 1, **opts) as sampler_b:
        while steps < args.steps:
            budget = min(args.max_steps_per_iter, args.steps - steps)
            epis_a = sampler_a.sample(pol, max_steps=max(1, budget // 2))
            epis_b = sampler_b.sample(pol, max_steps=max(1, budget - budget // 2))
            if pol.obs_normalizer is not None:
                pol.obs_normalizer.update(torch.as_tensor(np.concatenate([e["obs"] for e in epis_a + epis_b])))

            traj_a = estimate(epis_a, vf, args.gamma, args.lam)
            traj_b = estimate(epis_b, vf, args.gamma, args.lam)
            traj = ef.centerize_advs(tk.concat([traj_a, traj_b]))

            result = ppo_clip.train(
                traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf, epoch=args.epoch,
                batch_size=args.batch_size, clip_param=args.clip_param, max_grad_norm=args.max_grad_norm,
                generator=gen,
            )

            steps += traj.num_step
            it += 1
            done_a = [e for e in epis_a if not e["sampler_cut"]]  # episodes cut by max_steps would bias returns
            done_b = [e for e in epis_b if not e["sampler_cut"]]
            ret_a, ret_b = return_stats(done_a)["return_mean"], return_stats(done_b)["return_mean"]
            n_epis += len(done_a) + len(done_b)
            logger.log_iteration(iteration=it, env_steps=steps, episodes=n_epis, epis=done_a + done_b, result=result,
                                 extra={"return_a": ret_a, "return_b": ret_b,
                                        "epis_a": traj_a.num_epi, "epis_b": traj_b.num_epi})
            bar.update(traj.num_step)
    bar.close()
    logger.close()

    # a checkpoint `trajkit eval` reads: the policy, with the config of the run-layer recipe that builds it
    cfg = tk.run.resolve("ppo", args.env_a, {"obs_norm": args.obs_norm})
    save_run(args.logdir, cfg, {"pol": pol}, iteration=it, env_steps=steps)
    env_a.close()
    env_b.close()
    print(f"steps {steps}, {time.time() - start:.0f}s; last mean returns: {args.env_a} {ret_a:.1f}, "
          f"{args.env_b} {ret_b:.1f}")
    return {"steps": steps, "return_a": ret_a, "return_b": ret_b}


if __name__ == "__main__":
    run(parse_args())
