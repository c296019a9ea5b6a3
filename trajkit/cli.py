"""The ``trajkit`` command: ``train``, ``config``, ``tune``, ``eval``, ``plot`` and ``record``.

Examples::

    trajkit train ppo --env CartPole-v1                      # the tuned CartPole preset, 100k steps
    trajkit train sac --env Pendulum-v1 --seed 1 --hp lr=3e-4
    trajkit config ppo --env CartPole-v1 -o run.yaml         # every setting, resolved
    trajkit train --config run.yaml --logdir runs/a          # ... and run exactly that
    trajkit train --config runs/a/config.json --logdir runs/b --seed 1
    trajkit tune ppo --env CartPole-v1 --trials 8 --steps 20000
    trajkit eval runs/a --episodes 10 [--video videos/]
    trajkit plot runs/a runs/b -o curves.png
    trajkit record runs/a --env CartPole-v1 --episodes 10 -o expert.npz
    trajkit train bc --env CartPole-v1 --expert expert.npz   # behaviour cloning (trajkit.run.imitation)

Only the standard library and PyYAML are imported until a command runs, so ``--help``
answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from trajkit import __version__
from trajkit.run.config import RunSettings
from trajkit.run.fields import ConfigError
from trajkit.run.presets import ALGOS, load_config_file, parse_overrides, preset_envs, resolve, to_values


#: run settings the command line sets directly (None: the preset's or config file's value)
def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


RUN_FLAGS = ("steps", "seed", "num_parallel", "device", "eval_every", "eval_episodes", "checkpoint_every", "timeout")


def _algo_list() -> str:
    rows = [f"  {name:<7} {cls.summary}" for name, cls in ALGOS.items()]
    envs = [f"  {name:<7} {', '.join(preset_envs(name)) or '-'}" for name in ALGOS]
    return "algorithms:\n" + "\n".join(rows) + "\n\ntuned presets (other envs get the algorithm's default block):\n" + \
        "\n".join(envs) + "\n\n'trajkit config ALGO --env ID' prints every setting with its value."


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=None, help="env steps (default: the preset's budget)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument("--num-parallel", type=int, default=None, help="sampler worker processes (default: 1, in-process)")
    p.add_argument("--device", default=None, help="torch device of models and batches (default: cpu)")
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="deterministic evaluation every N env steps (default: 0, only at the end)")
    p.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default: 10)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="K",
                   help="checkpoint every K iterations, and always at the end (default: 10)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds any env reset/step or policy forward may take before the run stops "
                   "(default: 300; 0: no limit)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, typed by its field (e.g. lr=1e-3, hidden=32,32, target_kl=none)")


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train an algorithm on an environment",
        description="Train ALGO on a gymnasium env with its tuned preset, or a config file, with logging, "
        "checkpoints, evaluation and exact resume. LOGDIR receives config.json, progress.csv, tb/, "
        "checkpoint.pt and eval.json.",
        epilog=_algo_list(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("algo", nargs="?", metavar="ALGO",
                   help=f"one of: {', '.join(ALGOS)}, or bc with --expert (or give --config)")
    p.add_argument("--env", default=None, help="gymnasium env id, e.g. CartPole-v1")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a config file (trajkit config, trajkit tune, or a run's config.json)")
    _add_run_flags(p)
    p.add_argument("--expert", default=None, metavar="FILE",
                   help="imitation (bc, gail, gail_sac, airl): a Traj file of expert episodes "
                   "(trajkit record, tk.record_epis, tk.save_traj)")
    p.add_argument("--logdir", default=None, help="run directory (default: runs/ALGO_ENV_sSEED)")
    p.add_argument("--resume", action="store_true", help="continue exactly from LOGDIR/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="replace trajkit's files in a used LOGDIR")
    p.add_argument("--columns", default=None,
                   help="console columns: comma-separated names, or 'all' (default: a set that fits 100 columns)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no console table")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch intra-op threads (default: 1)")


def _add_config(sub: Any) -> None:
    p = sub.add_parser(
        "config", help="write the fully resolved config of a run",
        description="Resolve ALGO's preset for ENV (plus the flags given) and write every setting as YAML, "
        "a file 'trajkit train --config' runs exactly.",
    )
    p.add_argument("algo", metavar="ALGO", help=f"one of: {', '.join(ALGOS)}")
    p.add_argument("--env", required=True, help="gymnasium env id")
    p.add_argument("-o", "--output", default=None, help="file to write (default: print)")
    _add_run_flags(p)


def _add_tune(sub: Any) -> None:
    p = sub.add_parser(
        "tune", help="search hyper-parameters with Optuna",
        description="Search the preset's space for ALGO on ENV: TRIALS trials of STEPS env steps, pruned on "
        "intermediate evaluations (after 3 trials, in the second half of a trial). The study is LOGDIR/study.db "
        "(a killed search resumes); the best config is written to LOGDIR/best.yaml for 'trajkit train --config'. "
        "Needs the tune extra (optuna).",
    )
    p.add_argument("algo", metavar="ALGO", help=f"one of: {', '.join(ALGOS)}")
    p.add_argument("--env", required=True, help="gymnasium env id")
    p.add_argument("--trials", type=_positive_int, required=True,
                   help="trials in the study (resumed studies count theirs)")
    p.add_argument("--steps", type=_positive_int, required=True, help="env steps per trial")
    p.add_argument("--seed", type=int, default=0, help="seed of every trial and of the sampler (default: 0)")
    p.add_argument("--eval-every", type=int, default=None, help="env steps between evaluations (default: STEPS/4)")
    p.add_argument("--eval-episodes", type=int, default=5, help="episodes per evaluation (default: 5)")
    p.add_argument("--logdir", default=None, help="study directory (default: runs/tune_ALGO_ENV)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="fixed overrides")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch intra-op threads (default: 1)")


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a trained policy",
        description="Run the policy of a 'trajkit train' run (its directory or checkpoint.pt) for N episodes "
        "and print the mean and standard deviation of the undiscounted returns.",
    )
    p.add_argument("path", metavar="RUN", help="a run directory or a checkpoint.pt written by 'trajkit train'")
    p.add_argument("--env", default=None, help="env id (default: the one the run trained on)")
    p.add_argument("--episodes", type=_positive_int, default=10, help="number of episodes (default: 10)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    p.add_argument("--seed", type=int, default=None,
                   help="env and action seed (default: the run's evaluation seed, 10000 + its training seed)")
    p.add_argument("--num-parallel", type=_positive_int, default=1, help="sampler worker processes (default: 1)")
    p.add_argument("--video", default=None, metavar="DIR",
                   help="record every episode to DIR with gymnasium's RecordVideo (needs the video extra)")
    p.add_argument("--json", action="store_true", help="print a JSON object with the returns")


def _add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot", help="plot learning curves of run directories",
        description="Plot return against env steps for LOGDIRs. Runs that differ only by seed (same config.json "
        "apart from seed, or names ending in _sN / _seedN) become one curve: the mean with a shaded band.",
    )
    p.add_argument("logdirs", nargs="+", metavar="LOGDIR", help="run directories holding progress.csv")
    p.add_argument("-o", "--output", default="curves.png", help="image file to write (default: curves.png)")
    p.add_argument("--x", default="env_steps", help="x column (default: env_steps)")
    p.add_argument("--y", default="return_mean", help="y column (default: return_mean)")
    p.add_argument("--band", choices=["std", "minmax", "none"], default="std", help="band over seeds (default: std)")
    p.add_argument("--smooth", type=_positive_int, default=1,
                   help="moving-average window over logged points (default: 1)")
    p.add_argument("--title", default=None, help="plot title (default: algorithm and env)")


def _add_record(sub: Any) -> None:
    p = sub.add_parser(
        "record", help="record episodes of a trained policy as expert data",
        description="Run the policy of a 'trajkit train' run (its directory or checkpoint.pt) for N whole episodes "
        "and save them as a Traj file (trajkit.load_traj reads it), terminations and truncations kept.",
    )
    p.add_argument("path", metavar="CHECKPOINT", help="a run directory or a checkpoint.pt written by 'trajkit train'")
    p.add_argument("--env", default=None, help="env id (default: the one the run trained on)")
    p.add_argument("--episodes", type=_positive_int, default=10, help="number of episodes (default: 10)")
    p.add_argument("-o", "--output", required=True, help="the Traj file to write (.npz)")
    p.add_argument("--seed", type=int, default=0, help="env and action seed (default: 0)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")


def build_parser() -> argparse.ArgumentParser:
    """The ``trajkit`` argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(prog="trajkit", description="trajkit: train, tune, evaluate and plot RL runs.")
    parser.add_argument("--version", action="version", version=f"trajkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_config, _add_tune, _add_eval, _add_plot, _add_record):
        add(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> RunSettings:
    """The run's config: the config file or ALGO's preset for --env, then the run flags, then --hp."""
    run = {k: getattr(args, k) for k in RUN_FLAGS}
    overrides = parse_overrides(args.hp)
    if getattr(args, "expert", None):
        overrides["expert"] = args.expert
    if getattr(args, "config", None):
        cfg = load_config_file(args.config, overrides, **run, **({"env": args.env} if args.env else {}))
        if args.algo and args.algo != cfg.algo:
            raise ConfigError(f"ALGO {args.algo!r} differs from the config file's algo {cfg.algo!r}")
        return cfg
    if not args.algo or not args.env:
        raise ConfigError("give ALGO and --env (or --config FILE)")
    return resolve(args.algo, args.env, overrides, **run)


def _columns(text: str | None) -> list[str] | str | None:
    if text is None or text == "all":
        return text
    return [c.strip() for c in text.split(",") if c.strip()]


def cmd_train(args: argparse.Namespace) -> int:
    if args.algo == "bc":
        return cmd_train_bc(args)
    cfg = config_from_args(args)
    import torch

    from trajkit.run.runner import train

    torch.set_num_threads(args.threads)
    logdir = args.logdir or f"runs/{cfg.algo}_{cfg.env}_s{cfg.seed}"
    out = train(cfg, logdir, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                console=not args.quiet, columns=_columns(args.columns))
    print(f"done: {out.iteration} iterations, {out.env_steps} env steps; deterministic evaluation over "
          f"{len(out.eval_returns)} episodes: {out.eval_mean:.2f}; run in {logdir}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from trajkit.run.runner import env_spaces

    args.config = None
    cfg = config_from_args(args)
    env_spaces(cfg.env)  # a wrong env id is refused here, with gymnasium's "did you mean"
    if cfg.env not in preset_envs(cfg.algo):
        print(f"note: no tuned {cfg.algo} preset for {cfg.env}; using the default block", file=sys.stderr)
    text = f"# trajkit {__version__}: 'trajkit train --config FILE' runs exactly this\n"
    text += yaml.safe_dump(to_values(cfg), sort_keys=False)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    import torch

    from trajkit.run.tune import tune

    torch.set_num_threads(args.threads)
    logdir = args.logdir or f"runs/tune_{args.algo}_{args.env}"
    out = tune(args.algo, args.env, trials=args.trials, steps=args.steps, logdir=logdir, seed=args.seed,
               eval_every=args.eval_every, eval_episodes=args.eval_episodes, overrides=parse_overrides(args.hp))
    print(f"{out.num_complete} trials complete, {out.num_pruned} pruned; best: trial {out.best_trial}, "
          f"mean return {out.best_value:.2f}, {out.best_params}")
    print(f"wrote {out.best_config} (run it with: trajkit train --config {out.best_config})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from trajkit.run.evaluate import evaluate_run

    torch.set_num_threads(1)
    rets = evaluate_run(args.path, env=args.env, episodes=args.episodes, deterministic=not args.stochastic,
                        seed=args.seed, num_parallel=args.num_parallel,
                        video_dir=args.video)
    mean, std = float(np.mean(rets)), float(np.std(rets))
    if args.json:
        print(json.dumps({"mean": mean, "std": std, "returns": [float(r) for r in rets]}))
    else:
        mode = "stochastic" if args.stochastic else "deterministic"
        print(f"return over {len(rets)} episodes ({mode}): mean {mean:.2f}  std {std:.2f}")
    if args.video:
        print(f"videos in {args.video}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from trajkit.plot import plot_curves

    cs = plot_curves(args.logdirs, args.output, x=args.x, y=args.y, band=args.band, title=args.title,
                     smooth=args.smooth)
    for c in cs:
        print(f"{c.label}: {c.num_runs} run(s), final {args.y} {c.mean[-1]:.4g}")
    print(f"wrote {args.output}")
    return 0


def cmd_train_bc(args: argparse.Namespace) -> int:
    """``trajkit train bc --env ID --expert FILE``: behaviour cloning with the imitation preset."""
    if not args.expert or not args.env:
        raise ConfigError("behaviour cloning needs its expert data and env: 'trajkit train bc --env ID --expert FILE'")
    import torch

    from trajkit.run.imitation import BCSettings, train_bc_run

    torch.set_num_threads(args.threads)
    overrides = {k: yaml_value(v) for k, v in parse_overrides(args.hp).items()}
    seed = 0 if args.seed is None else args.seed
    logdir = args.logdir or f"runs/bc_{args.env}_s{seed}"
    rets = train_bc_run(expert=args.expert, env=args.env, settings=BCSettings.for_env(args.env, **overrides),
                        seed=seed, logdir=logdir, eval_episodes=args.eval_episodes or 10)
    print(f"done: behaviour cloning on {args.expert}; deterministic evaluation over {len(rets)} episodes: "
          f"{sum(rets) / len(rets):.2f}; policy in {logdir}/policy.pt")
    return 0


def yaml_value(text: str) -> Any:
    """An ``--hp`` value as YAML reads it (``1e-3`` a float, ``32,32`` a list of ints)."""
    import yaml

    if "," in text:
        return [yaml.safe_load(x) for x in text.split(",")]
    return yaml.safe_load(text)


def cmd_record(args: argparse.Namespace) -> int:
    import torch

    from trajkit.run.imitation import record_checkpoint

    torch.set_num_threads(1)
    traj = record_checkpoint(args.path, env=args.env, episodes=args.episodes, output=args.output, seed=args.seed,
                             stochastic=args.stochastic)
    ended = int(traj.epi["terminated"].sum())
    print(f"recorded {traj.num_epi} episodes ({traj.num_step} steps; {ended} terminated, "
          f"{traj.num_epi - ended} truncated) to {args.output}")
    return 0


COMMANDS = {"train": cmd_train, "config": cmd_config, "tune": cmd_tune, "eval": cmd_eval, "plot": cmd_plot,
            "record": cmd_record}


def _is_user_error(e: BaseException) -> bool:
    """Errors a user fixes by changing the command or its files (one line, no traceback), not bugs."""
    files = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
    if isinstance(e, (ConfigError, ImportError, TimeoutError, *files)):
        return True
    if type(e).__module__.startswith("gymnasium.error"):
        return True
    if "trajkit.checkpoint" in sys.modules or "trajkit.io" in sys.modules:  # loaded only if a command used them
        from trajkit.checkpoint import CheckpointError
        from trajkit.io import TrajFileError

        return isinstance(e, (CheckpointError, TrajFileError))
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajkit`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except Exception as e:
        if not _is_user_error(e):
            raise
        print(f"trajkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
