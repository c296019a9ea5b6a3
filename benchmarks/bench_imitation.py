"""Imitation benchmark: behaviour cloning, DAgger and teacher distillation against trained experts.

    python benchmarks/bench_imitation.py --cache /tmp/imit_cache          # all three, seeds 0 1 2
    python benchmarks/bench_imitation.py --only bc --seeds 0

Experts are trained with the run layer's presets (``ppo`` on CartPole-v1 for 100k steps,
``sac`` on Pendulum-v1 for 20k steps, seed 0) into ``--cache`` (reused when present).
Prints, per seed: the expert's and BC's deterministic returns from 10 expert episodes;
DAgger's return after each round on CartPole-v1 with the expert as a callable; and the
distilled half-width student's return and env steps on Pendulum-v1. Every evaluation
is 10 episodes from ``EVAL_SEED``, the same episodes for expert and learner.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from trajkit.evaluation import EVAL_SEED, evaluate
from trajkit.expert_data import record_epis
from trajkit.pols import BasePol
from trajkit.run.imitation import (
    BCSettings,
    DAggerSettings,
    DistillSettings,
    clone,
    distill,
    run_dagger,
)

EXPERTS = {"CartPole-v1": ("ppo", 100_000), "Pendulum-v1": ("sac", 20_000)}


def expert(env: str, cache: Path) -> tuple[BasePol, int]:
    """The cached (or newly trained) expert policy of ``env`` and its env steps."""
    from trajkit.run import resolve
    from trajkit.run.evaluate import load_policy
    from trajkit.run.runner import train

    algo, steps = EXPERTS[env]
    logdir = cache / f"{algo}_{env}_s0"
    if not (logdir / "checkpoint.pt").exists():
        train(resolve(algo, env, {}, steps=steps, seed=0), logdir, overwrite=True, progress=False, console=False)
    return load_policy(logdir)[0], steps


def mean_return(env: str, pol: BasePol) -> float:
    return float(evaluate(env, pol, num_epis=10, seed=EVAL_SEED).mean())


def bench_bc(env: str, cache: Path, seeds: list[int]) -> None:
    pol, _ = expert(env, cache)
    data = record_epis(env, pol, 10, seed=0)
    ret = mean_return(env, pol)
    print(f"[bc] {env}: expert return {ret:.1f} ({data.num_epi} episodes, {data.num_step} steps recorded)")
    for seed in seeds:
        t = time.time()
        student = clone(env, data, BCSettings.for_env(env), seed=seed)
        r = mean_return(env, student)
        bar = r >= 0.95 * ret if env == "CartPole-v1" else r >= ret - 50
        print(f"[bc] {env} seed {seed}: BC return {r:.1f} (expert {ret:.1f}) {'PASS' if bar else 'FAIL'}"
              f"  ({time.time() - t:.0f}s)")


def bench_dagger(cache: Path, seeds: list[int]) -> None:
    env = "CartPole-v1"
    pol, _ = expert(env, cache)
    for seed in seeds:
        def expert_fn(obs: torch.Tensor) -> torch.Tensor:
            return pol.act(obs, deterministic=True)[0]

        rounds = run_dagger(env, expert_fn, DAggerSettings.for_env(env), seed=seed)
        text = ", ".join(f"{r:.1f}" for r in rounds)
        print(f"[dagger] {env} seed {seed}: return per round [{text}] "
              f"{'PASS' if max(rounds) >= 475 else 'FAIL'}")


def bench_distill(cache: Path, seeds: list[int]) -> None:
    env = "Pendulum-v1"
    teacher, teacher_steps = expert(env, cache)
    ret = mean_return(env, teacher)
    settings = DistillSettings.for_env(env)
    for seed in seeds:
        student, steps = distill(env, teacher, settings, seed=seed)
        r = mean_return(env, student)
        ok = r >= ret - 0.05 * abs(ret) and steps <= teacher_steps // 10
        print(f"[distill] {env} seed {seed}: student return {r:.1f} (teacher {ret:.1f}) after {steps} env steps "
              f"(teacher: {teacher_steps}) {'PASS' if ok else 'FAIL'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default="/tmp/imit_cache", help="directory of the trained experts")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", choices=("bc", "dagger", "distill"), default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    cache = Path(args.cache)
    if args.only in (None, "bc"):
        for env in EXPERTS:
            bench_bc(env, cache, args.seeds)
    if args.only in (None, "dagger"):
        bench_dagger(cache, args.seeds)
    if args.only in (None, "distill"):
        bench_distill(cache, args.seeds)


if __name__ == "__main__":
    main()
