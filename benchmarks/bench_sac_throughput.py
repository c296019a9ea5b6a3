"""SAC update throughput: trajkit's ``algos.sac.train`` vs stable-baselines3's ``SAC.train``.

Both do gradient steps with batch 256 on 2x256 ReLU MLPs (policy and twin critics),
Adam, automatic temperature, on a replay buffer filled with the same number of
Pendulum-v1 random steps, single-threaded, in the same process. Runs alternate
(trajkit, SB3, trajkit, ...) so both see the same machine load; the figure is the ratio
of the medians over repeats.

    python benchmarks/bench_sac_throughput.py --steps 500 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

import trajkit as tk
from trajkit import nets
from trajkit.algos import sac
from trajkit.buffers import ReplayBuffer


def make_trajkit(env: tk.GymEnv, fill: int, seed: int):
    torch.manual_seed(seed)
    ob, ac = env.observation_space, env.action_space
    od, ad = ob.shape[0], ac.shape[0]
    pol = tk.SquashedGaussianPol(ob, ac, nets.mlp(od, 2 * ad, (256, 256), torch.nn.ReLU, orthogonal=False))
    qf1, qf2 = (
        tk.DeterministicSAVfunc(ob, ac, nets.mlp(od + ad, 1, (256, 256), torch.nn.ReLU, orthogonal=False))
        for _ in range(2)
    )
    target_qf1, target_qf2 = copy.deepcopy(qf1), copy.deepcopy(qf2)
    log_alpha = torch.zeros((), requires_grad=True)
    kw = dict(
        pol=pol, qf1=qf1, qf2=qf2, target_qf1=target_qf1, target_qf2=target_qf2, log_alpha=log_alpha,
        optim_pol=torch.optim.Adam(pol.parameters(), 3e-4),
        optim_qf=torch.optim.Adam([*qf1.parameters(), *qf2.parameters()], 3e-4),
        optim_alpha=torch.optim.Adam([log_alpha], 3e-4),
    )
    buf = ReplayBuffer(100_000)
    rand = tk.RandomPol(ob, ac)
    with tk.EpiSampler(env, rand, seed=seed) as sampler:
        buf.add(tk.Traj.from_epis(sampler.sample(rand, max_steps=fill)))
    g = torch.Generator().manual_seed(seed)

    def run(n: int) -> None:
        sac.train(traj=buf, num_steps=n, batch_size=256, generator=g, **kw)

    return run


def make_sb3(fill: int, seed: int):
    import gymnasium as gym
    from stable_baselines3 import SAC

    env = gym.make("Pendulum-v1")
    model = SAC("MlpPolicy", env, batch_size=256, learning_starts=0, seed=seed, device="cpu",
                policy_kwargs=dict(net_arch=[256, 256]))
    obs, _ = env.reset(seed=seed)
    for _ in range(fill):
        a = env.action_space.sample()
        nobs, r, term, trunc, _ = env.step(a)
        model.replay_buffer.add(obs[None], nobs[None], a[None], np.array([r]), np.array([term]), [{}])
        obs = env.reset()[0] if term or trunc else nobs
    model._logger = __import__("stable_baselines3.common.logger", fromlist=["configure"]).configure(None, [])

    def run(n: int) -> None:
        model.train(gradient_steps=n, batch_size=256)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=500, help="gradient steps per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fill", type=int, default=10_000, help="random steps in each replay buffer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch.get_num_threads() = {torch.get_num_threads()}")
    runs = {"trajkit": make_trajkit(tk.GymEnv("Pendulum-v1"), args.fill, args.seed)}
    try:
        runs["sb3"] = make_sb3(args.fill, args.seed)
    except ImportError:
        print("stable-baselines3 not installed: trajkit only")
    for run in runs.values():
        run(20)  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run(args.steps)
            rates[name].append(args.steps / (time.perf_counter() - t))
    print(f"{'impl':<10} {'median steps/s':>15} {'all':>40}")
    for name, r in rates.items():
        print(f"{name:<10} {statistics.median(r):>15.1f} {' '.join(f'{x:.0f}' for x in r):>40}")
    if "sb3" in rates:
        ratios = [a / b for a, b in zip(rates["trajkit"], rates["sb3"], strict=True)]
        med = statistics.median(rates["trajkit"]) / statistics.median(rates["sb3"])
        paired = statistics.median(ratios)
        print(f"ratio trajkit/sb3: median of medians {med:.2f}, median of paired ratios {paired:.2f}")


if __name__ == "__main__":
    main()
