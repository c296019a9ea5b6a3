"""Estimator speed on a large ragged Traj, against per-episode Python loops and the value-network limit.

    python benchmarks/bench_estimators.py                 # 1M steps, 1000 episodes, obs dim 17
    python benchmarks/bench_estimators.py --steps 100000  # smaller
    python benchmarks/bench_estimators.py --sb3           # also time SB3's RolloutBuffer GAE (needs the bench extra)

Rows (medians over ``--repeats``, all in one run, one torch thread unless ``--threads``):

* ``loop rets+advs``: returns and GAE with a per-episode, per-step Python loop (the
  textbook implementation; machina's estimators are written this way).
* ``ef rets+advs``: ``ef.compute_rets`` + ``ef.compute_advs``.
* ``ef advs``: ``ef.compute_advs`` alone (bar: under 100 ms).
* ``kernel gae``: the ``ef.gae`` tensor kernel ``compute_advs`` wraps (the wrapper
  should cost next to nothing on top).
* ``vf forward``: one batched no-grad forward pass of the 64x64 value MLP over all
  observations, the limit for ``compute_vs``.
* ``ef vs``: ``ef.compute_vs`` (bar: within 1.1x of ``vf forward``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

import trajkit as tk
from trajkit import ef


def make_traj(num_step: int, num_epi: int, obs_dim: int, seed: int) -> tk.Traj:
    """A Traj of ``num_epi`` ragged episodes summing to ``num_step`` steps, random data."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, num_step), num_epi - 1, replace=False))
    lens = np.diff(np.concatenate([[0], cuts, [num_step]]))
    bounds = torch.zeros(num_epi + 1, dtype=torch.int64)
    bounds[1:] = torch.as_tensor(np.cumsum(lens))
    terminated = torch.as_tensor(rng.random(num_epi) < 0.5)
    data = {
        "obs": torch.as_tensor(rng.standard_normal((num_step, obs_dim), dtype=np.float32)),
        "rews": torch.as_tensor(rng.standard_normal(num_step, dtype=np.float32)),
    }
    epi = {
        "terminated": terminated,
        "truncated": ~terminated,
        "final_obs": torch.as_tensor(rng.standard_normal((num_epi, obs_dim), dtype=np.float32)),
    }
    return tk.Traj(data, epi, bounds)


def loop_rets_advs(traj: tk.Traj, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode, per-step Python loop: the slow, obviously-correct reference."""
    rews, vs = traj["rews"].numpy(), traj["vs"].numpy()
    final_vs = traj.epi_col("final_vs").numpy()
    terminated = traj.epi_col("terminated").numpy()
    bounds = traj.bounds.numpy()
    rets, advs = np.zeros(len(rews)), np.zeros(len(rews))
    for e in range(traj.num_epi):
        s, t = bounds[e], bounds[e + 1]
        ret = 0.0 if terminated[e] else final_vs[e]
        adv, next_v = 0.0, ret
        for i in range(t - 1, s - 1, -1):
            ret = rews[i] + gamma * ret
            delta = rews[i] + gamma * next_v - vs[i]
            adv = delta + gamma * lam * adv
            rets[i], advs[i], next_v = ret, adv, vs[i]
    return rets, advs


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sb3_gae_time(traj: tk.Traj, gamma: float, lam: float, repeats: int) -> float | None:
    """SB3's RolloutBuffer.compute_returns_and_advantage over the same steps as one env (flat)."""
    try:
        from stable_baselines3.common.buffers import RolloutBuffer
    except ImportError:
        return None
    import gymnasium as gym

    n, d = traj.num_step, traj["obs"].shape[1]
    buf = RolloutBuffer(n, gym.spaces.Box(-1, 1, (d,)), gym.spaces.Box(-1, 1, (1,)), gamma=gamma, gae_lambda=lam)
    buf.rewards[:, 0] = traj["rews"].numpy()
    buf.values[:, 0] = traj["vs"].numpy()
    starts = np.zeros(n, dtype=np.float32)
    starts[traj.first_idx().numpy()] = 1.0
    buf.episode_starts[:, 0] = starts
    buf.full = True
    last_v = torch.zeros(1)

    def run() -> None:
        buf.compute_returns_and_advantage(last_v, np.zeros(1))

    return median_time(run, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--epis", type=int, default=1000)
    p.add_argument("--obs-dim", type=int, default=17)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--loop-repeats", type=int, default=1, help="repeats of the slow Python loop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sb3", action="store_true", help="also time stable-baselines3's GAE loop")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; {args.steps} steps in {args.epis} episodes, "
          f"obs dim {args.obs_dim}")

    traj = make_traj(args.steps, args.epis, args.obs_dim, seed=0)
    vf = tk.DeterministicSVfunc(
        gym.spaces.Box(-np.inf, np.inf, (args.obs_dim,)),
        tk.nets.mlp(args.obs_dim, 1, hidden=(64, 64)),
    )
    gamma, lam = 0.99, 0.95
    traj_v = ef.compute_vs(traj, vf)

    def forward() -> None:
        with torch.no_grad():
            vf(traj["obs"])

    def ef_vs() -> None:
        ef.compute_vs(traj, vf)

    def ef_rets_advs() -> None:
        ef.compute_advs(ef.compute_rets(traj_v, gamma), gamma, lam)

    def ef_advs() -> None:
        ef.compute_advs(traj_v, gamma, lam)

    rews, vs, final_vs = traj_v["rews"], traj_v["vs"], traj_v.epi_col("final_vs")
    terminated = traj_v.epi_col("terminated")

    def kernel_gae() -> None:
        ef.gae(rews, vs, final_vs, terminated, traj_v.bounds, gamma=gamma, lam=lam)

    # correctness first: the fast path must agree with the loop
    ref_rets, ref_advs = loop_rets_advs(traj_v, gamma, lam)
    fast = ef.compute_advs(ef.compute_rets(traj_v, gamma), gamma, lam)
    np.testing.assert_allclose(fast["rets"].numpy(), ref_rets, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fast["advs"].numpy(), ref_advs, rtol=1e-4, atol=1e-3)

    forward()  # warm-up
    rows = {
        "loop rets+advs": median_time(lambda: loop_rets_advs(traj_v, gamma, lam), args.loop_repeats),
        "ef rets+advs": median_time(ef_rets_advs, args.repeats),
        "ef advs": median_time(ef_advs, args.repeats),
        "kernel gae": median_time(kernel_gae, args.repeats),
        "vf forward": median_time(forward, args.repeats),
        "ef vs": median_time(ef_vs, args.repeats),
    }
    sb3 = sb3_gae_time(traj_v, gamma, lam, args.repeats) if args.sb3 else None
    if sb3 is not None:
        rows["sb3 rets+advs"] = sb3
    print(f"{'what':<16} {'median ms':>10}")
    for k, v in rows.items():
        print(f"{k:<16} {v * 1e3:>10.1f}")
    speedup = rows["loop rets+advs"] / rows["ef rets+advs"]
    vs_ratio = rows["ef vs"] / rows["vf forward"]
    print(f"\nrets+advs speed-up over the per-episode loop: {speedup:.0f}x (bar: >= 20x)")
    print(f"GAE alone: {rows['ef advs'] * 1e3:.1f} ms (bar: < 100 ms)")
    print(f"compute_vs / one forward pass: {vs_ratio:.3f} (bar: <= 1.1)")
    if sb3 is not None:
        print(f"SB3 GAE loop / ef rets+advs: {sb3 / rows['ef rets+advs']:.1f}x")


if __name__ == "__main__":
    main()
