"""PPO on CartPole-v1: trajkit against stable-baselines3, same budget, same machine.

    python benchmarks/bench_ppo.py                    # seeds 0 1 2, 100k steps, + SB3 if installed
    python benchmarks/bench_ppo.py --seeds 0 --no-sb3

trajkit runs ``examples/run_ppo.py`` with its defaults (the rl-zoo CartPole recipe:
256 steps per iteration, 20 epochs, batch 256, gamma 0.98, lambda 0.8, lr 1e-3 and clip
0.2 decaying linearly). stable-baselines3 runs PPO with the rl-zoo hyper-parameters for
CartPole-v1 (8 envs x 32 steps, the same epochs, batch, gamma, lambda and schedules).
Both are scored by the mean of 10 deterministic evaluation episodes after the budget,
with one torch thread. Bar: trajkit >= 475 for every seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import run_ppo  # noqa: E402


def run_trajkit(seed: int, steps: int) -> dict[str, float]:
    args, cfg = run_ppo.parse_args(["--seed", str(seed), "--steps", str(steps), "--no-progress",
                                    "--logdir", f"runs/bench_ppo/trajkit_s{seed}", "--overwrite"])
    return run_ppo.run(args, cfg)


def run_sb3(seed: int, steps: int) -> dict[str, float] | None:
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError:
        return None

    def linear(v: float):  # noqa: ANN202 - SB3 schedule signature
        return lambda progress_remaining: progress_remaining * v

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu")
    start = time.time()
    model.learn(total_timesteps=steps)
    train_time = time.time() - start
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=10_000 + seed)
    rets, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True, return_episode_rewards=True)
    return {"steps": steps, "eval_mean": float(np.mean(rets)), "eval_std": float(np.std(rets)),
            "train_time": train_time}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--no-sb3", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    rows = []
    for seed in args.seeds:
        rows.append(("trajkit", seed, run_trajkit(seed, args.steps)))
        if not args.no_sb3:
            sb3 = run_sb3(seed, args.steps)
            if sb3 is not None:
                rows.append(("sb3", seed, sb3))
    print(f"\n{'library':<8} {'seed':>4} {'steps':>7} {'eval mean':>10} {'eval std':>9} {'train s':>8}")
    for lib, seed, r in rows:
        print(f"{lib:<8} {seed:>4} {r['steps']:>7} {r['eval_mean']:>10.1f} {r['eval_std']:>9.1f} "
              f"{r['train_time']:>8.1f}")
    ours = [r for lib, _, r in rows if lib == "trajkit"]
    theirs = [r for lib, _, r in rows if lib == "sb3"]
    ok = all(r["eval_mean"] >= 475 for r in ours)
    print(f"\ntrajkit: min eval {min(r['eval_mean'] for r in ours):.1f} (bar >= 475: {'met' if ok else 'NOT met'})")
    if theirs:
        ratio = np.median([r["train_time"] for r in theirs]) / np.median([r["train_time"] for r in ours])
        print(f"median train time sb3 / trajkit: {ratio:.2f}")


if __name__ == "__main__":
    main()
