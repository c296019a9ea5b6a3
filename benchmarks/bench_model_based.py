"""Model-based learning against SAC at equal real env steps, and the planner's speed, side by side.

    python benchmarks/bench_model_based.py                        # everything below, seeds 0 1 2
    python benchmarks/bench_model_based.py --only speed           # planning speed and ensemble forward only
    python benchmarks/bench_model_based.py --only pets --seeds 0  # one part, one seed
    python benchmarks/bench_model_based.py --only bullet --seeds 0  # MBPO against SAC on the Bullet swing-up

Every run is ``trajkit train ALGO --env ENV --steps N --seed S`` (the presets in
``trajkit/run/presets/``, through :func:`trajkit.run.runner.train`), scored by the mean
return of 10 deterministic evaluation episodes after the budget (env seeds kept apart
from training), one torch thread:

* ``pets``: PETS (CEM over a probabilistic ensemble of 5, known reward) at 2000 steps, and SAC at 2000;
* ``mpc``: random-shooting MPC (machina's recipe) at 2000, 5000 and 10000 steps;
* ``mbpo``: MBPO at 3000 steps, and SAC at 3000;
* ``bullet``: MBPO and SAC on ``InvertedPendulumSwingupBulletEnv-v0`` at 20000 real steps
  (the presets' envs blocks), evaluated every 4000 steps on 2 episodes; both curves are
  drawn into ``--image``; runs are kept under ``--logroot`` and resume;
* ``speed``: ``MPCPol`` actions per second with the pets and mpc presets (population,
  horizon and particles printed), the batched ensemble forward against a Python
  loop over 5 separate member MLPs, and one training step (forward, backward, Adam) of
  each.
"""

from __future__ import annotations

import argparse
import csv
import json
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


#: the harder task: the Bullet cart-pole swing-up (1000-step episodes, reward cos(theta), up to 1000)
BULLET_ENV = "InvertedPendulumSwingupBulletEnv-v0"
#: its runs (the presets' envs blocks), with evaluations along the way for the curves
BULLET_RUNS = [("mbpo", 20000), ("sac", 20000)]
BULLET_EVAL = {"eval_every": 4000, "eval_episodes": 2}


def run(algo: str, env: str, steps: int, seed: int, root: Path,
        overrides: dict[str, object] | None = None) -> tuple[float, float]:
    """``trajkit train algo`` for ``steps``: (mean deterministic evaluation return, wall seconds).

    A finished run found in ``root`` (its ``eval.json`` at ``steps``) is read, not rerun
    (wall time NaN); an interrupted one resumes from its checkpoint.
    """
    cfg = resolve(algo, env, overrides=overrides, steps=steps, seed=seed)
    logdir = root / f"{algo}_{steps}_s{seed}"
    done = logdir / "eval.json"
    if done.exists() and json.loads(done.read_text())["env_steps"] >= steps:
        return float(json.loads(done.read_text())["mean"]), float("nan")
    resume = (logdir / "checkpoint.pt").exists()
    t = time.perf_counter()
    outcome = train(cfg, logdir, resume=resume, overwrite=not resume, progress=False, console=False)
    return outcome.eval_mean, time.perf_counter() - t


def eval_curve(logdir: Path) -> tuple[list[int], list[float]]:
    """A run's evaluations: those along the way (``progress.csv``) and the final one (``eval.json``)."""
    with open(logdir / "progress.csv", newline="") as f:
        points = [(int(r["env_steps"]), float(r["eval_return_mean"])) for r in csv.DictReader(f)
                  if r.get("eval_return_mean")]
    final = json.loads((logdir / "eval.json").read_text())
    points.append((int(final["env_steps"]), float(final["mean"])))
    return [x for x, _ in points], [y for _, y in points]


def draw_curves(runs: Sequence[tuple[str, Sequence[Path]]], image: Path) -> None:
    """Each algorithm's evaluation returns against real steps (one line per seed) into ``image``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), dpi=80)
    ax = fig.add_subplot()
    for i, (algo, logdirs) in enumerate(runs):
        for j, logdir in enumerate(logdirs):
            xs, ys = eval_curve(logdir)
            ax.plot(xs, ys, marker="o", color=f"C{i}", label=algo.upper() if j == 0 else None)
    ax.set(xlabel="real env steps", ylabel="deterministic evaluation return", title=f"MBPO and SAC on {BULLET_ENV}")
    ax.grid(alpha=0.3)
    ax.legend()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image, bbox_inches="tight")


def bullet_table(seeds: Sequence[int], root: Path, image: Path) -> None:
    """MBPO and SAC on the Bullet swing-up at 20k real steps: final returns, and both curves in ``image``."""
    print(f"| algorithm | env | real steps | {' | '.join(f'seed {s}' for s in seeds)} | mean | wall s/run |")
    print(f"|---|---|---|{'---|' * len(seeds)}---|---|")
    for algo, steps in BULLET_RUNS:
        rets, walls = zip(*(run(algo, BULLET_ENV, steps, s, root, BULLET_EVAL) for s in seeds), strict=True)
        print(f"| {algo} | {BULLET_ENV} | {steps} | {' | '.join(f'{r:.1f}' for r in rets)} | "
              f"{statistics.mean(rets):.1f} | {statistics.mean(walls):.0f} |", flush=True)
    draw_curves([(algo, [root / f"{algo}_{steps}_s{s}" for s in seeds]) for algo, steps in BULLET_RUNS], image)
    print(f"curves: {image}")


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


def train_step_times(net: nn.Module, members: list[nn.Sequential], x: torch.Tensor, y: torch.Tensor,
                     repeats: int) -> tuple[float, float]:
    """Median seconds of one MSE step of ``net`` on ``x: (E, B, I)``, and of the loop stepping each member."""
    optim = torch.optim.Adam(net.parameters(), 1e-3)
    optims = [torch.optim.Adam(m.parameters(), 1e-3) for m in members]

    def batched() -> None:
        optim.zero_grad()
        (net(x) - y).pow(2).mean(dim=(1, 2)).sum().backward()
        optim.step()

    def loop() -> None:
        for e, (m, o) in enumerate(zip(members, optims, strict=True)):
            o.zero_grad()
            (m(x[e]) - y[e]).pow(2).mean().backward()
            o.step()

    return timed(batched, repeats), timed(loop, repeats)


def ensemble_train_speed(repeats: int) -> None:
    """One MSE gradient step (forward, backward, Adam) of the ensemble against 5 member MLPs with their own Adam."""
    env = gym.make(ENV)
    print("| members | hidden | rows per member | batched step ms | loop over members ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for hidden in ((64, 64), (200, 200, 200)):
        for rows in (32, 256):
            model = GaussianDynamicsModel(env.observation_space, env.action_space, num_members=5, hidden=hidden)
            members = member_loop(model)
            x, y = torch.randn(5, rows, 4), torch.randn(5, rows, model.net.layers[-1].weight.shape[-1])
            t_batched, t_loop = train_step_times(model.net, members, x, y, repeats)
            print(f"| 5 | {'x'.join(map(str, hidden))} | {rows} | {t_batched * 1e3:.3f} | {t_loop * 1e3:.3f} | "
                  f"{t_loop / t_batched:.1f}x |")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=[*PARTS, "speed", "bullet"], default=None)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--env", default=ENV)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--logroot", type=Path, default=Path("runs/bench_model_based"),
                   help="where the bullet part's runs go (an interrupted run resumes from its checkpoint)")
    p.add_argument("--image", type=Path, default=Path("docs/results/model_based_swingup.png"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    parts = args.only or [*PARTS, "speed"]
    if "speed" in parts:
        planning_speed(args.repeats)
        print()
        ensemble_speed(args.repeats * 10)
        print()
        ensemble_train_speed(args.repeats * 5)
        print()
    learning = [q for q in parts if q not in ("speed", "bullet")]
    if learning:
        learning_table(learning, args.env, args.seeds)
    if "bullet" in parts:
        bullet_table(args.seeds, args.logroot, args.image)


if __name__ == "__main__":
    main()
