"""The ``trajkit`` command: ``train``, ``eval`` and ``plot``.

Examples::

    trajkit train ppo --env CartPole-v1 --steps 50000 --seed 0 --logdir runs/ppo_s0
    trajkit train ppo --env CartPole-v1 --steps 100000 --seed 0 --logdir runs/ppo_s0 --resume
    trajkit train sac --env Pendulum-v1 --steps 20000 --seed 0 --logdir runs/sac_s0
    trajkit eval runs/ppo_s0/checkpoint.pt --episodes 10
    trajkit plot runs/ppo_s0 runs/ppo_s1 -o curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import torch

from trajkit import recipes
from trajkit.checkpoint import CheckpointError


def _parse_value(text: str, default: Any) -> Any:
    """A command-line value, typed like the default it overrides (lists: comma-separated)."""
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(default, list):
        return [int(v) for v in text.split(",") if v]
    if text.lower() == "none":
        return None
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float) or default is None:
        return float(text)
    return text


def parse_overrides(algo: str, items: Sequence[str]) -> dict[str, Any]:
    """``["lr=1e-3", "hidden=32,32"]`` -> typed overrides of ``algo``'s defaults."""
    defaults = recipes.recipe(algo).defaults
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise recipes.ConfigError(f"--hp expects KEY=VALUE, got {item!r}")
        if key not in defaults:
            raise recipes.ConfigError(
                f"unknown hyper-parameter {key!r} for {algo}; known: {sorted(defaults)}"
            )
        try:
            out[key] = _parse_value(value, defaults[key])
        except ValueError as e:
            raise recipes.ConfigError(f"--hp {item}: {e}") from e
    return out


def _add_train(sub: Any) -> None:
    epilog = "defaults per algorithm (override with --hp KEY=VALUE):\n" + "\n".join(
        recipes.describe(a) for a in recipes.RECIPES
    )
    p = sub.add_parser(
        "train",
        help="train an algorithm on an environment",
        description="Train ALGO on a gymnasium environment with logging, checkpoints and exact resume. "
        "LOGDIR receives config.json, progress.csv, tb/ (TensorBoard) and checkpoint.pt.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "algo",
        choices=sorted(recipes.RECIPES),
        metavar="ALGO",
        help=f"one of: {', '.join(sorted(recipes.RECIPES))}",
    )
    p.add_argument("--env", required=True, help="gymnasium env id, e.g. CartPole-v1")
    p.add_argument(
        "--steps",
        type=int,
        default=100_000,
        help="env steps, rounded up to whole iterations (default: 100000)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--logdir", default=None, help="run directory (default: runs/ALGO_ENV_sSEED)")
    p.add_argument(
        "--num-parallel",
        type=int,
        default=1,
        help="sampler worker processes; 0 or 1 samples in this process (default: 1)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        metavar="K",
        help="save a checkpoint every K iterations, and always at the end (default: 10)",
    )
    p.add_argument("--resume", action="store_true", help="continue exactly from LOGDIR/checkpoint.pt")
    p.add_argument(
        "--hp", action="append", default=[], metavar="KEY=VALUE", help="override a hyper-parameter"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no console table")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint's policy",
        description="Run the policy of a 'trajkit train' checkpoint for N episodes and print the mean and "
        "standard deviation of the undiscounted returns.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.pt written by 'trajkit train'")
    p.add_argument("--env", default=None, help="env id (default: the one the checkpoint was trained on)")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default: 10)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    p.add_argument("--seed", type=int, default=12345, help="env and action seed (default: 12345)")
    p.add_argument("--num-parallel", type=int, default=1, help="sampler worker processes (default: 1)")
    p.add_argument("--json", action="store_true", help="print a JSON object with the returns")


def _add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="plot learning curves of run directories",
        description="Plot return against env steps for LOGDIRs. Runs that differ only by seed "
        "(same config.json "
        "apart from seed, or names ending in _sN / _seedN) become one curve: the mean with a shaded band.",
    )
    p.add_argument("logdirs", nargs="+", metavar="LOGDIR", help="run directories holding progress.csv")
    p.add_argument("-o", "--output", default="curves.png", help="image file to write (default: curves.png)")
    p.add_argument("--x", default="env_steps", help="x column (default: env_steps)")
    p.add_argument("--y", default="return_mean", help="y column (default: return_mean)")
    p.add_argument(
        "--band",
        choices=["std", "minmax", "none"],
        default="std",
        help="shaded band over seeds (default: std)",
    )
    p.add_argument("--title", default=None, help="plot title")


def build_parser() -> argparse.ArgumentParser:
    """The ``trajkit`` argument parser with its three sub-commands."""
    parser = argparse.ArgumentParser(prog="trajkit", description="trajkit: train, evaluate and plot RL runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_eval(sub)
    _add_plot(sub)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    spec = recipes.RunSpec(
        algo=args.algo,
        env=args.env,
        steps=args.steps,
        seed=args.seed,
        num_parallel=args.num_parallel,
        logdir=args.logdir or f"runs/{args.algo}_{args.env}_s{args.seed}",
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        hparams=parse_overrides(args.algo, args.hp),
        progress=not args.no_progress,
        console=not args.quiet,
    )
    out = recipes.train(spec)
    ret = out.last_record.get("return_mean", float("nan"))
    print(
        f"done: {out.iteration} iterations, {out.env_steps} env steps, last return_mean {ret:.4g}; "
        f"checkpoint {out.checkpoint}"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    res = recipes.evaluate(
        args.checkpoint,
        env=args.env,
        episodes=args.episodes,
        deterministic=not args.stochastic,
        seed=args.seed,
        num_parallel=args.num_parallel,
    )
    if args.json:
        print(json.dumps({"mean": res.mean, "std": res.std, "returns": res.returns}))
    else:
        mode = "stochastic" if args.stochastic else "deterministic"
        print(f"return over {len(res.returns)} episodes ({mode}): mean {res.mean:.2f}  std {res.std:.2f}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from trajkit.plot import plot_curves

    cs = plot_curves(args.logdirs, args.output, x=args.x, y=args.y, band=args.band, title=args.title)
    for c in cs:
        print(f"{c.label}: {c.num_runs} run(s), final {args.y} {c.mean[-1]:.4g}")
    print(f"wrote {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajkit`` console script."""
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "eval": cmd_eval, "plot": cmd_plot}
    try:
        return commands[args.command](args)
    except (recipes.ConfigError, CheckpointError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"trajkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
