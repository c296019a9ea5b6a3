"""Model-based learning against SAC at equal real env steps, and the planner's speed, side by side.

    python benchmarks/bench_model_based.py                        # everything below, seeds 0 1 2
    python benchmarks/bench_model_based.py --only speed           # planning speed and ensemble forward only
    python benchmarks/bench_model_based.py --only pets --seeds 0  # one part, one seed

Every run is ``trajkit train ALGO --env ENV --steps N --seed S`` (the presets in
``trajkit/run/presets/``, through :func:`trajkit.run.runner.train`), scored by the mean
return of 10 deterministic evaluation episodes after the budget (env seeds kept apart
from training), one torch thread:

* ``pets``: PETS (CEM over a probabilistic ensemble of 5, known reward) at 2000 steps, and SAC at 2000;
* ``mpc``: random-shooting MPC (machina's recipe) at 2000, 5000 and 10000 steps;
* ``mbpo``: MBPO at 3000 steps, and SAC at 3000;
* ``speed``: ``MPCPol`` actions per second with the pets and mpc presets (population,
  horizon and particles printed), and the batched ensemble forward against a Python
  loop over 5 separate member MLPs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import torch
from torch import nn

from trajkit.models import DynamicsModel, GaussianDynamicsModel
from trajkit.run.models import build_mpc
from trajkit.run.presets import resolve
from trajkit.run.runner import train

ENV = "Pendulum-v1"
#: part -> the (algorithm, steps) runs it compares
PARTS: dict[str, list[tuple[str, int]]] = {
    "pets": [("pets", 2000), ("sac", 2000)],
    "mpc": [("mpc", 2000), ("mpc", 5000), ("mpc", 10000)],
    "mbpo": [("mbpo", 3000), ("sac", 3000)],
}


def run(algo: str, env: str, steps: int, seed: int, root: Path) -> tuple[float, float]:
    """``trajkit train algo`` for ``steps``: (mean deterministic evaluation return, wall seconds)."""
    cfg = resolve(algo, env, steps=steps, seed=seed)
    t = time.perf_counter()
    outcome = train(cfg, root / f"{algo}_{steps}_s{seed}", progress=False, console=False)
    return outcome.eval_mean, time.perf_counter() - t


def learning_table(parts: Sequence[str], env: str, seeds: Sequence[int]) -> None:
    print(f"| algorithm | env | real steps | {' | '.join(f'seed {s}' for s in seeds)} | mean | wall s/run |")
    print(f"|---|---|---|{'---|' * len(seeds)}---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for part in parts:
            for algo, steps in PARTS[part]:
                rets, walls = zip(*(run(algo, env, steps, s, Path(tmp)) for s in seeds), strict=True)
                cells = " | ".join(f"{r:.1f}" for r in rets)
                print(f"| {algo} | {env} | {steps} | {cells} | {statistics.mean(rets):.1f} | "
                      f"{statistics.mean(walls):.0f} |", flush=True)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def planning_speed(repeats: int) -> None:
    env = gym.make(ENV)
    print("| preset | optimizer | population | horizon | CEM rounds | particles | ms/action | actions/s |")
    print("|---|---|---|---|---|---|---|---|")
    for algo in ("pets", "mpc"):
        cfg = resolve(algo, ENV)
        pol = build_mpc(cfg, env.observation_space, env.action_space).pol
        obs, g = torch.randn(1, 3), torch.Generator().manual_seed(0)
        sec = timed(lambda pol=pol, obs=obs, g=g: pol.act(obs, generator=g), repeats)
        rounds = cfg.cem_iters if cfg.optimizer == "cem" else 1
        print(f"| {algo} | {cfg.optimizer} | {cfg.num_samples} | {cfg.horizon} | {rounds} | {pol.particles} | "
              f"{sec * 1e3:.1f} | {1 / sec:.0f} |")


def member_loop(model: DynamicsModel) -> list[nn.Sequential]:
    """The ensemble's members as separate ``nn.Linear`` MLPs with the same weights (the loop to beat)."""
    members = []
    for e in range(model.num_members):
        layers: list[nn.Module] = []
        for i, layer in enumerate(model.net.layers):
            lin = nn.Linear(*layer.weight.shape[1:])
            with torch.no_grad():
                lin.weight.copy_(layer.weight[e].T)
                lin.bias.copy_(layer.bias[e, 0])
            layers += [lin] if i == len(model.net.layers) - 1 else [lin, nn.SiLU()]
        members.append(nn.Sequential(*layers))
    return members


def ensemble_speed(repeats: int) -> None:
    env = gym.make(ENV)
    print("| members | hidden | rows per member | batched forward ms | loop over members ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for hidden in ((64, 64), (200, 200, 200)):
        for rows in (1, 10, 100, 500):
            model = GaussianDynamicsModel(env.observation_space, env.action_space, num_members=5, hidden=hidden)
            members = member_loop(model)
            x = torch.randn(5, rows, 4)
            with torch.no_grad():
                torch.testing.assert_close(torch.stack([m(x[e]) for e, m in enumerate(members)]), model.net(x))
                batched = timed(lambda model=model, x=x: model.net(x), repeats)
                loop = timed(lambda members=members, x=x: [m(x[e]) for e, m in enumerate(members)], repeats)
            print(f"| 5 | {'x'.join(map(str, hidden))} | {rows} | {batched * 1e3:.3f} | {loop * 1e3:.3f} | "
                  f"{loop / batched:.1f}x |")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=[*PARTS, "speed"], default=None)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--env", default=ENV)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    parts = args.only or [*PARTS, "speed"]
    if "speed" in parts:
        planning_speed(args.repeats)
        print()
        ensemble_speed(args.repeats * 10)
        print()
    learning = [q for q in parts if q != "speed"]
    if learning:
        learning_table(learning, args.env, args.seeds)


if __name__ == "__main__":
    main()
