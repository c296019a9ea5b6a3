"""Plumbing the example scripts share: the command line and the checkpoint they leave behind.

Each ``run_*.py`` reads its settings from the algorithm's preset (the same
``trajkit/run/presets/ALGO.yaml`` that ``trajkit train`` reads), so an example's defaults
reproduce the documented result and ``--hp KEY=VALUE`` changes any setting. The loop
itself stays in the example, top to bottom.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import trajkit as tk
from trajkit.checkpoint import save_checkpoint
from trajkit.evaluation import EVAL_SEED
from trajkit.run import RunSettings, resolve, to_values
from trajkit.run.presets import parse_overrides
from trajkit.run.session import check_logdir, clear_run_files


def parse_run_args(
    algo: str, doc: str | None, default_env: str, argv: list[str] | None = None, extra: Any = None
) -> tuple[argparse.Namespace, RunSettings]:
    """The example's options and the config its preset gives for ``--env`` (with ``--hp`` applied).

    ``extra(parser)`` may add options of its own.
    """
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=default_env)
    p.add_argument("--steps", type=int, default=None, help="total env steps (default: the preset's budget)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-parallel", type=int, default=1, help="sampler worker processes (0/1: in-process)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--eval-epis", type=int, default=10)
    p.add_argument("--logdir", default=None, help="progress.csv, tb/ and checkpoint.pt (default: runs/ALGO_ENV_sSEED)")
    p.add_argument("--overwrite", action="store_true", help="replace trajkit's files in a used --logdir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log table")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    cfg = resolve(algo, args.env, parse_overrides(args.hp), steps=args.steps, seed=args.seed,
                  num_parallel=args.num_parallel)
    args.logdir = args.logdir or f"runs/{algo}_{cfg.env}_s{cfg.seed}"
    check_logdir(Path(args.logdir), resume=False, overwrite=args.overwrite)  # never another run's files
    if args.overwrite:
        clear_run_files(Path(args.logdir))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(f"torch threads: {torch.get_num_threads()}, {algo} on {cfg.env}, seed {cfg.seed}, {cfg.steps} steps")
    return args, cfg


def save_run(logdir: str | Path, cfg: RunSettings, entries: dict[str, Any], **counters: int) -> Path:
    """Write ``logdir/checkpoint.pt`` in the layout ``trajkit eval`` reads (models plus the config)."""
    path = Path(logdir) / "checkpoint.pt"
    save_checkpoint(path, {**entries, "config": to_values(cfg), "counters": dict(counters)})
    return path


def finish(
    args: argparse.Namespace, cfg: RunSettings, pol: torch.nn.Module, steps: int, start: float
) -> dict[str, float]:
    """The deterministic evaluation every example ends with (env seeds apart from training), printed and returned."""
    train_time = time.time() - start
    rets = tk.evaluate(cfg.env, pol, num_epis=args.eval_epis, seed=EVAL_SEED + cfg.seed)
    print(f"steps {steps}, {train_time:.0f}s; deterministic eval over {args.eval_epis} episodes: "
          f"{np.mean(rets):.1f} +- {np.std(rets):.1f}")
    return {"steps": steps, "eval_mean": float(np.mean(rets)), "eval_std": float(np.std(rets)),
            "train_time": train_time}


#: the expert each imitation example trains (or reuses) for an env: the run layer's algorithm
EXPERT_ALGOS = {"CartPole-v1": "ppo", "Pendulum-v1": "sac"}


def imitation_args(doc: str | None, default_env: str, argv: list[str] | None = None,
                   extra: Any = None) -> argparse.Namespace:
    """The imitation examples' options: ``--env``, ``--steps`` (the expert's or teacher's training
    steps, default its preset's budget), ``--seed`` (the learner's), ``--expert-dir``, ``--eval-epis``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=default_env)
    p.add_argument("--steps", type=int, default=None, help="expert training steps (default: its preset's budget)")
    p.add_argument("--seed", type=int, default=0, help="the learner's seed")
    p.add_argument("--expert-dir", default=None,
                   help="a 'trajkit train' run of the expert, reused if present (default: runs/expert_ALGO_ENV)")
    p.add_argument("--eval-epis", type=int, default=10)
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    return args


def expert_policy(env: str, steps: int | None, expert_dir: str | None) -> tuple[tk.pols.BasePol, int]:
    """The expert of ``env`` (PPO for CartPole, SAC for Pendulum, seed 0, its preset), trained into
    ``expert_dir`` with ``trajkit.run.runner.train`` unless a run is already there; and its env steps."""
    from trajkit.run.evaluate import load_policy
    from trajkit.run.runner import train

    algo = EXPERT_ALGOS.get(env)
    if algo is None:
        raise SystemExit(f"no expert recipe for {env}; the imitation examples know {sorted(EXPERT_ALGOS)}")
    cfg = resolve(algo, env, {}, steps=steps, seed=0)
    run_dir = Path(expert_dir or f"runs/expert_{algo}_{env}")
    if not (run_dir / "checkpoint.pt").exists():
        print(f"training the {algo} expert on {env} for {cfg.steps} steps into {run_dir}")
        train(cfg, run_dir, overwrite=True, progress=False, console=False)
    pol, values = load_policy(run_dir)
    return pol, int(values["steps"])


def print_eval(env: str, pol: torch.nn.Module, epis: int, seed: int, what: str) -> float:
    """A deterministic evaluation (env seeds apart from training), printed; returns the mean."""
    rets = tk.evaluate(env, pol, num_epis=epis, seed=EVAL_SEED + seed)
    print(f"{what}: deterministic eval over {epis} episodes: {np.mean(rets):.1f} +- {np.std(rets):.1f}")
    return float(np.mean(rets))
