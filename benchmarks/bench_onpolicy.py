"""PPO-KL, TRPO and VPG on CartPole-v1 through the example scripts, seeds side by side.

    python benchmarks/bench_onpolicy.py                          # all three, seeds 0 1 2, 100k steps
    python benchmarks/bench_onpolicy.py --algos trpo --seeds 0 --steps 50000

Each run uses the example's defaults (``examples/run_ppo.py --penalty kl``,
``examples/run_trpo.py``, ``examples/run_vpg.py``) and is scored by the mean of 10
deterministic evaluation episodes after the budget, one torch thread.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import run_ppo  # noqa: E402
import run_trpo  # noqa: E402
import run_vpg  # noqa: E402

SCRIPTS = {"ppo_kl": (run_ppo, ["--penalty", "kl"]), "trpo": (run_trpo, []), "vpg": (run_vpg, [])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", choices=sorted(SCRIPTS), default=["ppo_kl", "trpo", "vpg"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--env", default="CartPole-v1")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    rows = []
    for algo in args.algos:
        module, extra = SCRIPTS[algo]
        for seed in args.seeds:
            run_args = module.parse_args([*extra, "--env", args.env, "--seed", str(seed), "--steps", str(args.steps),
                                          "--no-progress", "--overwrite",
                                          "--logdir", f"runs/bench_onpolicy/{algo}_s{seed}"])
            rows.append((algo, seed, module.run(*run_args)))
    print(f"\n{'algo':<7} {'seed':>4} {'steps':>7} {'eval mean':>10} {'eval std':>9} {'train s':>8}")
    for algo, seed, r in rows:
        print(f"{algo:<7} {seed:>4} {r['steps']:>7} {r['eval_mean']:>10.1f} {r['eval_std']:>9.1f} "
              f"{r['train_time']:>8.1f}")


if __name__ == "__main__":
    main()
