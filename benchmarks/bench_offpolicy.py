"""Off-policy learning benchmark: SAC, TD3, DDPG on Pendulum-v1 and DQN on CartPole-v1.

Runs the example scripts' ``run()`` (the same code a user runs) for each algorithm and
seed, and with ``--sb3`` the stable-baselines3 equivalent with the same
hyper-parameters, then prints a table of mean deterministic evaluation returns (10
episodes) at the step budget. Not part of the default test tier.

    python benchmarks/bench_offpolicy.py                          # all four, seeds 0 1 2
    python benchmarks/bench_offpolicy.py --algos sac td3 --seeds 0 --sb3
    python benchmarks/bench_offpolicy.py --hidden 64 64           # smaller nets (faster)
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import run_ddpg  # noqa: E402
import run_dqn  # noqa: E402
import run_sac  # noqa: E402
import run_td3  # noqa: E402

#: algorithm -> (example module, env, steps, bar)
SUITE = {
    "sac": (run_sac, "Pendulum-v1", 20_000, -200.0),
    "td3": (run_td3, "Pendulum-v1", 20_000, -200.0),
    "ddpg": (run_ddpg, "Pendulum-v1", 20_000, -250.0),
    "dqn": (run_dqn, "CartPole-v1", 100_000, 475.0),
}


def run_trajkit(algo: str, seed: int, hidden: list[int] | None, out: str, steps: int | None) -> float:
    mod, env, default_steps, _ = SUITE[algo]
    steps = steps or default_steps
    argv = ["--seed", str(seed), "--env", env, "--steps", str(steps), "--no-progress",
            "--logdir", os.path.join(out, f"{algo}_s{seed}"), "--overwrite"]
    if hidden:
        argv += ["--hp", "hidden=" + ",".join(map(str, hidden))]
    return mod.run(*mod.parse_args(argv))["eval_mean"]


def run_sb3(algo: str, seed: int, hidden: list[int] | None, steps: int | None) -> float:
    """The stable-baselines3 counterpart with the preset's hyper-parameters (the same config the example runs)."""
    import gymnasium as gym
    from stable_baselines3 import DDPG, DQN, SAC, TD3
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.noise import NormalActionNoise

    mod, env_id, default_steps, _ = SUITE[algo]
    steps = steps or default_steps
    hidden_hp = ["--hp", "hidden=" + ",".join(map(str, hidden))] if hidden else []
    _, a = mod.parse_args(["--seed", str(seed), *hidden_hp])
    env = gym.make(env_id)
    kw = dict(learning_rate=a.lr, batch_size=a.train.batch_size, buffer_size=a.buffer_size, gamma=a.train.gamma,
              seed=seed,
              learning_starts=a.learning_starts, device="cpu", verbose=0, policy_kwargs=dict(net_arch=list(a.hidden)))
    if algo == "sac":
        model = SAC("MlpPolicy", env, tau=a.train.tau, train_freq=(1, "episode"), gradient_steps=-1, **kw)
    elif algo in ("td3", "ddpg"):
        ad = env.action_space.shape[0]
        scale = float(env.action_space.high[0])  # SB3 adds noise in env units
        noise = NormalActionNoise(np.zeros(ad), a.action_noise * scale * np.ones(ad))
        cls = TD3 if algo == "td3" else DDPG
        model = cls("MlpPolicy", env, tau=a.train.tau, action_noise=noise, train_freq=(1, "episode"),
                    gradient_steps=-1, **kw)
    else:
        # SB3 updates its target between training phases, every `target_update_interval` env steps; the
        # nearest match: Polyak with the same tau every 1/grad_ratio env steps (ours: every gradient step),
        # which SB3 applies between phases rather than inside them.
        interval = max(1, round(a.train.target_update_interval / a.grad_ratio))
        if a.lr_decay_steps:
            def lr(progress_remaining: float) -> float:
                return a.lr * max(0.0, 1 - (1 - progress_remaining) * steps / a.lr_decay_steps)

            kw["learning_rate"] = lr
        model = DQN("MlpPolicy", env, train_freq=a.train_freq, gradient_steps=int(a.train_freq * a.grad_ratio),
                    target_update_interval=interval, tau=a.train.tau, n_steps=a.nstep,
                    exploration_fraction=a.exploration_steps / steps,
                    exploration_final_eps=a.eps_end, **kw)
    model.learn(total_timesteps=steps)
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10_000 + seed)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    return float(mean)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", default=list(SUITE), choices=list(SUITE))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--hidden", type=int, nargs="+", default=None, help="override the examples' hidden sizes")
    ap.add_argument("--steps", type=int, default=None, help="override the step budgets (smoke tests)")
    ap.add_argument("--sb3", action="store_true", help="also run stable-baselines3 with the same settings")
    ap.add_argument("--sb3-only", action="store_true", help="only the stable-baselines3 runs")
    ap.add_argument("--out", default="bench_out/offpolicy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch.get_num_threads() = {torch.get_num_threads()}")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for algo in args.algos:
        for seed in args.seeds:
            ours = float("nan") if args.sb3_only else run_trajkit(algo, seed, args.hidden, args.out, args.steps)
            theirs = run_sb3(algo, seed, args.hidden, args.steps) if args.sb3 or args.sb3_only else float("nan")
            rows.append((algo, seed, ours, theirs))
            print(f"{algo} seed {seed}: trajkit {ours:.1f}  sb3 {theirs:.1f}", flush=True)
    print(f"\n{'algo':<6} {'env':<14} {'steps':>7} {'seed':>4} {'trajkit':>9} {'sb3':>9} {'bar':>7}  ok")
    for algo, seed, ours, theirs in rows:
        _, env, steps, bar = SUITE[algo]
        steps = args.steps or steps
        print(f"{algo:<6} {env:<14} {steps:>7} {seed:>4} {ours:>9.1f} {theirs:>9.1f} {bar:>7.0f}  {ours >= bar}")


if __name__ == "__main__":
    main()
