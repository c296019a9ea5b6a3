"""Why one torch thread is the default for small MLPs: PPO updates and sampling at 1 vs N threads.

    python benchmarks/bench_threads.py               # 1 thread vs all cores
    python benchmarks/bench_threads.py --threads 1 2 4

Times, in one run and interleaved so load drifts hit every setting alike: a PPO-clip
update (10 epochs, batch 64, 64x64 MLPs) on a fixed 2048-step CartPole Traj, and 2048
steps of the in-process sampler. Medians over ``--repeats``; ratios against 1 thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import trajkit as tk
from trajkit import ef
from trajkit.algos import ppo_clip


def make_models(env: tk.GymEnv) -> tuple[tk.CategoricalPol, tk.DeterministicSVfunc]:
    pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, out_gain=0.01))
    vf = tk.DeterministicSVfunc(env.observation_space, tk.nets.mlp(4, 1))
    return pol, vf


def time_update(traj: tk.Traj, env: tk.GymEnv) -> float:
    torch.manual_seed(0)
    pol, vf = make_models(env)
    optim_pol, optim_vf = torch.optim.Adam(pol.parameters(), 3e-4), torch.optim.Adam(vf.parameters(), 3e-4)
    start = time.perf_counter()
    ppo_clip.train(traj=traj, pol=pol, vf=vf, optim_pol=optim_pol, optim_vf=optim_vf, epoch=10, batch_size=64,
                   generator=0)
    return time.perf_counter() - start


def time_sampling(pol: torch.nn.Module) -> float:
    with tk.EpiSampler("CartPole-v1", pol, seed=0) as sampler:
        start = time.perf_counter()
        sampler.sample(pol, max_steps=2048)
        return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    env = tk.GymEnv("CartPole-v1")
    pol, vf = make_models(env)
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=2048))
    traj = ef.centerize_advs(ef.compute_advs(ef.compute_rets(ef.compute_vs(traj, vf), 0.99), 0.99, 0.95))

    update: dict[int, list[float]] = {n: [] for n in args.threads}
    sample: dict[int, list[float]] = {n: [] for n in args.threads}
    for _ in range(args.repeats):
        for n in args.threads:
            torch.set_num_threads(n)
            update[n].append(time_update(traj, env))
            sample[n].append(time_sampling(pol))
    base_u, base_s = statistics.median(update[1]), statistics.median(sample[1])
    print(f"cores: {os.cpu_count()}, repeats: {args.repeats}")
    print(f"{'threads':>7} {'update s':>9} {'x slower':>9} {'sample s':>9} {'x slower':>9}")
    for n in args.threads:
        u, s = statistics.median(update[n]), statistics.median(sample[n])
        print(f"{n:>7} {u:>9.3f} {u / base_u:>9.2f} {s:>9.3f} {s / base_s:>9.2f}")


if __name__ == "__main__":
    main()
