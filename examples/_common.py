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
