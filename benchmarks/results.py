"""The results pages, regenerated: every documented recipe on its env and seeds, beside SB3.

    python benchmarks/results.py                             # every row, seeds 0 1 2, with SB3
    python benchmarks/results.py --algos ppo --seeds 0       # one row (its table and image)
    python benchmarks/results.py --report-only               # tables and images from the results file

Each row of :data:`ROWS` is an algorithm's preset (``trajkit train ALGO --env ENV``
exactly, through :func:`trajkit.run.train`) with optional settings (the prioritized
variants), a step budget and a target. For each row and seed the benchmark trains
trajkit, then its stable-baselines3 / sb3-contrib counterpart where one exists
(``sb3_runs.py``: same hyper-parameters), evaluating both every tenth of the budget
and at the end (10 deterministic episodes). One torch thread.

Outputs:

* ``docs/results/results.csv``: one line per run (row, algo, env, library, seed,
  steps, final evaluation mean and std, wall and CPU seconds, library versions, date).
  A run is appended as soon as it ends, so an interrupted benchmark keeps what it
  finished; rerunning skips the runs recorded with their logs present and resumes a
  trajkit run from its checkpoint (an interrupted SB3 run starts again).
* ``docs/results/ROW.png``: the evaluation curves of every seed (mean and band over
  seeds), trajkit and SB3 on one axis, drawn by :mod:`trajkit.plot` (the figure of
  ``trajkit plot --y eval_return_mean LOGDIRS``, its legend naming the libraries).
* the ``<!-- results begin -->`` / ``<!-- results end -->`` block of each algorithm's
  page in ``docs/algorithms/``, of ``docs/benchmark_results.md`` and of ``README.md``
  (the README only when the docs tree is the repository's).

Logs go to ``runs/results/ROW/{trajkit,sb3}_sSEED``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


Row = results_report.Row
CARTPOLE, PENDULUM = "CartPole-v1", "Pendulum-v1"
PER = {"prioritized": True}
ROWS: list[Row] = [
    Row("ppo", "ppo", CARTPOLE, 100_000, 475.0, "ppo", label="PPO"),
    Row("ppo_kl", "ppo_kl", CARTPOLE, 100_000, 475.0, "ppo_kl", label="PPO-KL"),
    Row("trpo", "trpo", CARTPOLE, 100_000, 475.0, "trpo", label="TRPO"),
    Row("vpg", "vpg", CARTPOLE, 100_000, 475.0, "vpg", label="VPG"),
    Row("dqn", "dqn", CARTPOLE, 100_000, 475.0, "dqn", label="DQN"),
    Row("dqn_per", "dqn", CARTPOLE, 100_000, 475.0, "dqn", PER, "prioritized DQN"),
    Row("sac", "sac", PENDULUM, 20_000, -200.0, "sac", label="SAC"),
    Row("sac_per", "sac", PENDULUM, 20_000, -200.0, "sac", PER, "prioritized SAC"),
    Row("td3", "td3", PENDULUM, 20_000, -200.0, "td3", label="TD3"),
    Row("td3_per", "td3", PENDULUM, 20_000, -200.0, "td3", PER, "prioritized TD3"),
    Row("ddpg", "ddpg", PENDULUM, 20_000, -200.0, "ddpg", label="DDPG"),
    Row("ddpg_per", "ddpg", PENDULUM, 20_000, -200.0, "ddpg", PER, "prioritized DDPG"),
    Row("qtopt", "qtopt", PENDULUM, 20_000, -200.0, "qtopt", label="QT-Opt"),
    Row("mpc", "mpc", PENDULUM, 10_000, -300.0, "model_based", label="random-shooting MPC"),
    # PETS plans every action, evaluations too: 3 evaluations along the way, not 9
    Row("pets", "pets", PENDULUM, 2_000, -200.0, "model_based", {"eval_every": 500}, label="PETS"),
    Row("mbpo", "mbpo", PENDULUM, 3_000, -200.0, "model_based", label="MBPO"),
]
ROWS_BY_NAME = {r.name: r for r in ROWS}


def select(names: Sequence[str] | None) -> list[Row]:
    """The rows named (a row name such as ``sac_per``, or an algorithm: all its rows); None: all."""
    if not names:
        return list(ROWS)
    unknown = [n for n in names if n not in ROWS_BY_NAME and all(r.algo != n for r in ROWS)]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {', '.join(ROWS_BY_NAME)}")
    return [r for r in ROWS if r.name in names or r.algo in names]


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import gymnasium

    import trajkit

    out = {"trajkit": trajkit.__version__, "torch": torch.__version__.split("+")[0], "gymnasium": gymnasium.__version__}
    try:
        import stable_baselines3

        out["sb3"] = stable_baselines3.__version__
    except ImportError:
        out["sb3"] = ""
    return out


def config(row: Row, seed: int, steps: int | None) -> Any:
    """The trajkit config of ``row`` for ``seed`` (the preset, evaluations every tenth, the row's settings)."""
    from trajkit.run.presets import resolve

    budget = steps or row.steps
    return resolve(row.algo, row.env, overrides={"eval_every": max(1, budget // 10), **row.hp}, steps=budget,
                   seed=seed)


def _clock() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def train_trajkit(cfg: Any, logdir: Path) -> dict[str, Any]:
    """Train ``cfg`` into ``logdir``, resuming from a checkpoint there; its final evaluation."""
    from trajkit.run.runner import train

    resume = (logdir / "checkpoint.pt").exists()
    outcome = train(cfg, logdir, resume=resume, overwrite=not resume, progress=False, console=False)
    rets = outcome.eval_returns
    return {"env_steps": outcome.env_steps, "mean": statistics.fmean(rets), "std": statistics.pstdev(rets)}


def run_one(row: Row, seed: int, library: str, logroot: Path, steps: int | None) -> dict[str, Any]:
    """Train one run of ``row`` and return its record for the results file."""
    cfg = config(row, seed, steps)
    logdir = logroot / row.name / f"{library}_s{seed}"
    wall0, cpu0 = _clock()
    if library == "trajkit":
        out = train_trajkit(cfg, logdir)
    else:
        import sb3_runs

        out = sb3_runs.run(cfg, logdir)
    wall1, cpu1 = _clock()
    v = versions()
    return {"row": row.name, "algo": row.algo, "env": row.env, "library": library, "seed": seed,
            "steps": out["env_steps"], "budget": cfg.steps, "eval_mean": round(out["mean"], 2),
            "eval_std": round(out["std"], 2), "wall_s": round(wall1 - wall0, 1), "cpu_s": round(cpu1 - cpu0, 1),
            "trajkit": v["trajkit"], "torch": v["torch"], "gymnasium": v["gymnasium"],
            "sb3": v["sb3"] if library == "sb3" else "", "date": date.today().isoformat(),
            "logdir": str(logdir.relative_to(ROOT) if logdir.is_relative_to(ROOT) else logdir)}


def train_recorded(results_file: Path, row: Row, seed: int, library: str, logroot: Path, steps: int | None,
                   rerun: bool) -> None:
    """Train one run of ``row`` and add its record to ``results_file``, unless a record with its logs is there
    (and not ``rerun``); prints the outcome."""
    budget = steps or row.steps
    old = results_report.find(results_report.read_records(results_file), row.name, library, seed, budget)
    if old is not None and not rerun and (ROOT / old["logdir"]).exists():
        print(f"{row.name} {library} seed {seed}: recorded {old['eval_mean']} (skipped)")
        return
    rec = run_one(row, seed, library, logroot, steps)
    results_report.add_record(results_file, rec)
    print(f"{row.name} {library} seed {seed}: {rec['eval_mean']:.1f} at {rec['steps']} steps "
          f"(wall {rec['wall_s']:.0f} s, CPU {rec['cpu_s']:.0f} s)", flush=True)


def libraries(row: Row, sb3: bool) -> list[str]:
    """trajkit, and SB3 where it has the algorithm (and the row is the plain recipe)."""
    import sb3_runs

    return ["trajkit"] + (["sb3"] if sb3 and row.algo in sb3_runs.BUILDERS and not row.hp else [])


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", default=None, help="rows or algorithms (default: all rows)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--no-sb3", action="store_true", help="skip the stable-baselines3 runs")
    ap.add_argument("--steps", type=int, default=None, help="override every row's budget (smoke tests)")
    ap.add_argument("--rerun", action="store_true", help="train again even where a result is recorded")
    ap.add_argument("--reverse", action="store_true",
                    help="run the rows last to first (a second benchmark beside a first one meets it midway)")
    ap.add_argument("--report-only", action="store_true", help="no training: tables and images from the file")
    ap.add_argument("--logroot", type=Path, default=ROOT / "runs" / "results")
    ap.add_argument("--data", type=Path, default=ROOT / "docs" / "results", help="results.csv and images")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="the docs tree whose pages are rewritten")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = select(args.algos)
    results_file = args.data / "results.csv"
    if not args.report_only:  # several benchmarks may run side by side on different rows
        for row in reversed(rows) if args.reverse else rows:
            for seed in args.seeds:
                for library in libraries(row, not args.no_sb3):
                    train_recorded(results_file, row, seed, library, args.logroot, args.steps, args.rerun)
    records = results_report.read_records(results_file)
    report_rows = [dataclasses.replace(r, steps=args.steps) if args.steps else r for r in ROWS]
    readme = ROOT / "README.md" if args.docs.resolve() == (ROOT / "docs").resolve() else None
    results_report.write_docs(report_rows, records, args.data, args.docs, ROOT, only={r.name for r in rows},
                              readme=readme)
    print(results_report.summary_text(report_rows, records))


if __name__ == "__main__":
    main()
