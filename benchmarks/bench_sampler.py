"""Sampler throughput: env steps per second for every way trajkit collects episodes.

For each env (default HalfCheetahBulletEnv-v0 with a 64x64 MLP GaussianPol, CartPole-v1
with a 64x64 MLP CategoricalPol) it measures, in one run, with the same policy:

* ``bare loop``: ``pol.act`` on one observation, ``to_env_ac``, ``env.step``, reset when
  done: no storage, no bookkeeping. The limit for one process.
* ``in-process``: ``EpiSampler(num_parallel=1)``.
* ``process xW``: the process backend with ``W`` workers (default 2).
* ``ray xW``: the ray backend with ``W`` actors (when Ray is installed).
* ``vec KxW`` / ``vec K in-process``: ``num_envs_per_worker=K`` (default 8).
* ``sb3 SubprocVecEnv xW``: a plain loop over stable-baselines3's ``SubprocVecEnv`` with
  ``W`` processes, the policy batched in the main process (when SB3 is installed). This
  loop stores nothing, so it is a lower bound on SB3's ``collect_rollouts`` cost.

Each configuration is set up once (workers started and warmed outside the timing),
then timed ``--reps`` times collecting ``--steps`` steps, repetitions interleaved across
configurations (Ray's configurations in a phase of their own, since Ray's daemons take CPU
from whatever runs beside them); the table shows the median steps/s, the spread, and ratios to the bare
loop and to the in-process sampler. It also prints steps per CPU-second with every
process of a configuration counted (this one, sampler workers, Ray actors, SB3's env
processes; Linux only): what a step costs, which stays meaningful on a busy machine.
The load average is printed before and after: on a busy machine the wall-clock
parallel figures mean little.

    python benchmarks/bench_sampler.py                       # both envs, all backends
    python benchmarks/bench_sampler.py --envs CartPole-v1 --reps 5 --csv bench_out/sampler.csv
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

import trajkit as tk
from trajkit.envs.gym_env import make_env

DEFAULT_STEPS = {"HalfCheetahBulletEnv-v0": 3000, "CartPole-v1": 10000}

#: one timed repetition: collect ``steps`` env steps, return the seconds it took
Run = Callable[[int], float]


@dataclass
class Setup:
    """A ready configuration: its timed run and the helper processes whose CPU time counts too."""

    run: Run
    helper_pids: list[int]


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by this process and ``pids`` (Linux /proc; NaN elsewhere)."""
    total = time.process_time()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")
    return total


@dataclass
class Result:
    env_id: str
    name: str
    rates: list[float]
    #: steps per CPU-second of this process and its helper processes (workers, actors, SB3 envs)
    cpu_rates: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def make_pol(env: tk.GymEnv) -> torch.nn.Module:
    """A 64x64 tanh MLP policy for the env's action space."""
    od = int(np.prod(env.observation_space.shape))
    if hasattr(env.action_space, "n"):
        return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(od, int(env.action_space.n)))
    a = int(np.prod(env.action_space.shape))
    return tk.GaussianPol(env.observation_space, env.action_space, tk.nets.mlp(od, a))


@contextlib.contextmanager
def bare_loop(env_id: str, pol: torch.nn.Module) -> Iterator[Setup]:
    env = tk.GymEnv(env_id)
    gen = torch.Generator().manual_seed(0)
    obs, _ = env.reset(seed=0)

    def run(steps: int) -> float:
        nonlocal obs
        start = time.perf_counter()
        for _ in range(steps):
            with torch.no_grad():
                ac, _ = pol.act(torch.as_tensor(obs, dtype=torch.float32)[None], False, gen)
            obs, _, terminated, truncated, _ = env.step(pol.to_env_ac(ac[0].numpy()))
            if terminated or truncated:
                obs, _ = env.reset()
        return time.perf_counter() - start

    try:
        yield Setup(run, [])
    finally:
        env.close()


@contextlib.contextmanager
def sampler(env_id: str, pol: torch.nn.Module, workers: int, envs_per_worker: int = 1,
            backend: str = "process") -> Iterator[Setup]:
    with tk.EpiSampler(env_id, pol, num_parallel=workers, seed=0, num_envs_per_worker=envs_per_worker,
                       backend=backend) as s:
        s.sample(pol, max_steps=200 * max(1, workers) * envs_per_worker)  # warm up

        def run(steps: int) -> float:
            start = time.perf_counter()
            epis = s.sample(pol, max_steps=steps)
            elapsed = time.perf_counter() - start
            assert sum(len(e["rews"]) for e in epis) == steps
            return elapsed

        yield Setup(run, s.worker_pids)


class _MakeEnv:
    """A picklable env factory for SubprocVecEnv (imports the Bullet registrations in the child)."""

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id

    def __call__(self) -> object:
        return make_env(self.env_id)


@contextlib.contextmanager
def sb3_subproc(env_id: str, pol: torch.nn.Module, workers: int) -> Iterator[Setup]:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([_MakeEnv(env_id) for _ in range(workers)])
    venv.seed(0)
    obs = venv.reset()
    gen = torch.Generator().manual_seed(0)

    def run(steps: int) -> float:
        nonlocal obs
        start = time.perf_counter()
        for _ in range(-(-steps // workers)):
            with torch.no_grad():
                acs, _ = pol.act(torch.as_tensor(obs, dtype=torch.float32), False, gen)
            acs = acs.numpy()
            obs, _, _, _ = venv.step(np.stack([np.asarray(pol.to_env_ac(a)) for a in acs]))
        return time.perf_counter() - start

    try:
        run(200 * workers)  # warm up
        yield Setup(run, [p.pid for p in venv.processes])
    finally:
        venv.close()


def configs(
    env_id: str, pol: torch.nn.Module, workers: int, k: int, skip: set[str], ray_only: bool = False
) -> list[tuple[str, Callable]]:
    """(name, context-manager factory) for every configuration available here (only Ray's with ``ray_only``)."""
    if ray_only:
        return [(f"ray x{workers}", lambda: sampler(env_id, pol, workers, backend="ray"))]
    out: list[tuple[str, Callable]] = [
        ("bare loop", lambda: bare_loop(env_id, pol)),
        ("in-process", lambda: sampler(env_id, pol, 1)),
        (f"process x{workers}", lambda: sampler(env_id, pol, workers)),
        (f"vec {k} in-process", lambda: sampler(env_id, pol, 1, k)),
        (f"vec {k}x{workers} process", lambda: sampler(env_id, pol, workers, k)),
    ]
    if "ray" not in skip and _importable("ray"):
        out.append((f"ray x{workers}", lambda: sampler(env_id, pol, workers, backend="ray")))
    if "sb3" not in skip and _importable("stable_baselines3"):
        out.append((f"sb3 SubprocVecEnv x{workers}", lambda: sb3_subproc(env_id, pol, workers)))
    return out


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def bench_env(
    env_id: str, steps: int, reps: int, workers: int, k: int, skip: set[str], ray_only: bool = False
) -> list[Result]:
    """Time every configuration on one env; repetitions are interleaved across configurations."""
    torch.manual_seed(0)
    probe = tk.GymEnv(env_id)
    pol = make_pol(probe)
    probe.close()
    with contextlib.ExitStack() as stack:
        setups = configs(env_id, pol, workers, k, skip, ray_only)
        runs = [(name, stack.enter_context(factory())) for name, factory in setups]
        results = [Result(env_id, name, [], []) for name, _ in runs]
        for rep in range(reps):  # idle workers block on their sockets, so they cost nothing meanwhile
            for (name, setup), res in zip(runs, results, strict=True):
                cpu = cpu_seconds(setup.helper_pids)
                res.rates.append(steps / setup.run(steps))
                res.cpu_rates.append(steps / (cpu_seconds(setup.helper_pids) - cpu))
                print(f"  rep {rep}  {env_id:26s} {name:26s} {res.rates[-1]:10.0f} steps/s", flush=True)
    return results


def print_table(results: list[Result]) -> None:
    by_env: dict[str, list[Result]] = {}
    for r in results:
        by_env.setdefault(r.env_id, []).append(r)
    for env_id, rs in by_env.items():
        base = {r.name: r.median for r in rs}
        bare, local = base["bare loop"], base["in-process"]
        print(f"\n{env_id}")
        head = ("configuration", "steps/s (median)", "min-max", "x bare", "x in-process")
        print(f"| {head[0]:26s} | {head[1]:>16s} | {head[2]:>15s} | {head[3]:>6s} | {head[4]:>12s} |")
        print(f"|{'-' * 28}|{'-' * 18}|{'-' * 17}|{'-' * 8}|{'-' * 14}|")
        for r in rs:
            spread = f"{min(r.rates):.0f}-{max(r.rates):.0f}"
            print(f"| {r.name:26s} | {r.median:16.0f} | {spread:>15s} | {r.median / bare:6.2f} "
                  f"| {r.median / local:12.2f} |")
        print_bar_ratios(base)
        print_cpu_ratios(rs)


def print_cpu_ratios(rs: list[Result]) -> None:
    """Steps per CPU-second, all processes of a configuration counted: robust to other jobs on the machine.

    Wall-clock parallel speed-ups need idle cores; this shows the work each step costs.
    """
    print("  steps per CPU-second (this process + its workers/actors/env processes):")
    for r in rs:
        print(f"    {r.name:26s} {statistics.median(r.cpu_rates):10.0f}")


def print_bar_ratios(base: dict[str, float]) -> None:
    """The ratios the sampler's performance bar is stated in, where both sides were measured."""
    names = list(base)
    proc = next((n for n in names if n.startswith("process x")), None)
    vec = next((n for n in names if n.startswith("vec ") and n.endswith(" process")), None)
    sb3 = next((n for n in names if n.startswith("sb3")), None)
    pairs = [("in-process / bare loop", "in-process", "bare loop")]
    if proc:
        pairs.append((f"{proc} / in-process", proc, "in-process"))
    if proc and vec:
        pairs.append((f"{vec} / {proc}", vec, proc))
    if proc and sb3:
        pairs.append((f"{proc} / {sb3}", proc, sb3))
    if vec and sb3:
        pairs.append((f"{vec} / {sb3}", vec, sb3))
    for label, a, b in pairs:
        print(f"  {label:48s} {base[a] / base[b]:6.2f}")


def write_csv(path: str, results: list[Result], load: tuple[float, float]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["env", "configuration", "median_steps_per_s", "min", "max", "reps",
                    "median_steps_per_cpu_s", "load_before", "load_after"])
        for r in results:
            w.writerow([r.env_id, r.name, f"{r.median:.1f}", f"{min(r.rates):.1f}", f"{max(r.rates):.1f}",
                        len(r.rates), f"{statistics.median(r.cpu_rates):.1f}", f"{load[0]:.2f}", f"{load[1]:.2f}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_STEPS))
    p.add_argument("--steps", type=int, default=None, help="steps per repetition (default: per env)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--envs-per-worker", type=int, default=8)
    p.add_argument("--skip", nargs="*", default=[], choices=["ray", "sb3"])
    p.add_argument("--csv", default=None, help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}, cpus: {os.cpu_count()}, load before: {os.getloadavg()}")
    load_before = os.getloadavg()[0]
    # Ray's own daemons (raylet, GCS) use CPU while alive, so Ray is started only for its own
    # phase, after every other configuration has been timed, and shut down afterwards.
    results = []
    for env_id in args.envs:
        steps = args.steps or DEFAULT_STEPS.get(env_id, 5000)
        results += bench_env(env_id, steps, args.reps, args.workers, args.envs_per_worker, set(args.skip) | {"ray"})
    if "ray" not in args.skip and _importable("ray"):
        import ray

        ray.init(num_cpus=max(args.workers, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
        for env_id in args.envs:
            steps = args.steps or DEFAULT_STEPS.get(env_id, 5000)
            results += bench_env(env_id, steps, args.reps, args.workers, args.envs_per_worker, set(), ray_only=True)
        ray.shutdown()
    load_after = os.getloadavg()[0]
    print_table(results)
    print(f"\nload average (1 min) before: {load_before:.2f}, after: {load_after:.2f}")
    if args.csv:
        write_csv(args.csv, results, (load_before, load_after))


if __name__ == "__main__":
    main()
