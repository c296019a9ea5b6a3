"""A run session: its directory, seeding, counters, checkpoints, exact resume and evaluation.

Everything a run is asked to do is checked before anything is written: the config
(already typed and bounded), the env and its spaces, the models, and the run directory.
A directory is refused unless it is empty, or it is this run's and ``resume`` is set, or
``overwrite`` is set (then trajkit's own files in it are removed, and nothing else).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajkit.checkpoint import load_checkpoint, read_checkpoint_data, save_checkpoint
from trajkit.episode_stats import EpisodeStats
from trajkit.evaluation import EVAL_SEED, evaluate
from trajkit.logger import Logger, ProgressBar
from trajkit.run.config import OnPolicyConfig, RunSettings
from trajkit.run.fields import ConfigError
from trajkit.run.presets import to_values
from trajkit.samplers import DEFAULT_TIMEOUT

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"
EVAL_NAME = "eval.json"
#: what trajkit writes into a run directory (``overwrite`` removes these, nothing else)
RUN_FILES = (CHECKPOINT_NAME, CONFIG_NAME, EVAL_NAME, "progress.csv", "tb")

#: called after each evaluation with (env steps, mean return); may raise to stop the run
EvalHook = Callable[[int, float], None]


@dataclass
class RunOutcome:
    """What a run returns: final counters, the last logged record, the final evaluation and the checkpoint."""

    iteration: int
    env_steps: int
    episodes: int
    last_record: dict[str, float]
    eval_returns: list[float]
    checkpoint: Path

    @property
    def eval_mean(self) -> float:
        """Mean undiscounted return of the final deterministic evaluation."""
        return float(np.mean(self.eval_returns))


def sampler_timeout(cfg: RunSettings) -> float | None:
    """The ``EpiSampler`` timeout of ``cfg``: its default for none, no limit for 0."""
    if cfg.timeout is None:
        return DEFAULT_TIMEOUT
    return None if cfg.timeout == 0 else cfg.timeout


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy's global generator and Python's ``random`` (the command line's model initialization)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _listing(logdir: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in logdir.iterdir())
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def check_logdir(logdir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a run directory that would lose data or cannot be resumed; writes nothing."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    ckpt = logdir / CHECKPOINT_NAME
    if resume:
        if not ckpt.exists():
            what = "it holds no run" if not logdir.exists() else f"it holds: {_listing(logdir)}"
            raise ConfigError(
                f"--resume: no checkpoint at {ckpt} ({what}); a run stopped before its first checkpoint "
                "cannot be resumed: start it again with --overwrite"
            )
        return
    if logdir.exists() and not logdir.is_dir():
        raise ConfigError(f"--logdir {logdir} is a file")
    if logdir.exists() and any(logdir.iterdir()) and not overwrite:
        raise ConfigError(
            f"--logdir {logdir} is not empty (it holds: {_listing(logdir)}); pass --resume to continue the run "
            "in it, --overwrite to replace trajkit's files in it, or choose another --logdir"
        )


def clear_run_files(logdir: Path) -> None:
    """Remove trajkit's own files (``RUN_FILES``) from ``logdir``; other files stay."""
    for name in RUN_FILES:
        p = logdir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


#: settings a resumed run may change: they decide how long it runs and what it reports, not what it learns
RESUME_MAY_CHANGE = frozenset({"steps", "eval_every", "eval_episodes", "checkpoint_every", "timeout"})


def check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any], done_steps: int) -> None:
    """Refuse resuming with other settings than the checkpoint's (but ``RESUME_MAY_CHANGE``), or no steps left."""
    keys = sorted((set(saved) | set(current)) - RESUME_MAY_CHANGE)
    diff = [(k, saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)]
    if diff:
        detail = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, a, b in diff)
        raise ConfigError(f"cannot resume exactly with different settings ({detail})")
    if current["steps"] <= done_steps:
        raise ConfigError(
            f"--resume: the run has already done {done_steps} env steps; pass --steps above that to continue"
        )


@dataclass
class Session:
    """Bookkeeping every training loop shares: settings, counters, checkpoints, logging, evaluation.

    Build it with :meth:`open` (checks and writes ``config.json``), hand the loop's
    checkpoint entries to :meth:`restore`, wrap the loop in :meth:`reporting`, and call
    :meth:`end_iteration` after each iteration.
    """

    cfg: RunSettings
    logdir: Path
    resume: bool = False
    progress: bool = True
    console: bool = True
    columns: Sequence[str] | str | None = None
    global_rng: bool = True
    on_eval: EvalHook | None = None
    #: what evaluations run (None: ``cfg.env``; DIAYN's loop sets its SkillEnv factory)
    eval_env: Any = None
    counters: dict[str, int] = field(default_factory=lambda: {"iteration": 0, "env_steps": 0, "episodes": 0})
    algo_state: dict[str, Any] = field(default_factory=dict)
    eval_returns: list[float] = field(default_factory=list)
    #: env steps at the latest evaluation (-1: none yet)
    eval_steps: int = -1
    #: the console's return window, checkpointed with the run so a resumed run logs the same numbers
    episode_stats: EpisodeStats = field(default_factory=EpisodeStats)

    @property
    def ckpt_path(self) -> Path:
        return self.logdir / CHECKPOINT_NAME

    @property
    def values(self) -> dict[str, Any]:
        """The config as plain values (what ``config.json`` holds)."""
        return to_values(self.cfg)

    def open(self, overwrite: bool = False) -> Session:
        """Check the directory (and, on resume, the checkpoint's settings), then write ``config.json``."""
        check_logdir(self.logdir, self.resume, overwrite)
        if self.resume:
            data = read_checkpoint_data(self.ckpt_path)
            if "config" not in data or "counters" not in data:
                raise ConfigError(f"{self.ckpt_path} was not written by 'trajkit train' (no config in it)")
            check_resumable(data["config"], self.values, int(data["counters"]["env_steps"]))
        elif overwrite and self.logdir.exists():
            clear_run_files(self.logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        (self.logdir / CONFIG_NAME).write_text(json.dumps(self.values, indent=2) + "\n")
        return self

    def restore(self, entries: Mapping[str, Any]) -> None:
        """On resume: load ``entries`` (and the global RNG states), counters and algorithm state."""
        if not self.resume:
            return
        ck = load_checkpoint(self.ckpt_path, {**entries, "episode_stats": self.episode_stats},
                             restore_rng=self.global_rng)
        self.counters = {k: int(v) for k, v in ck.data["counters"].items()}
        self.algo_state = dict(ck.data.get("algo_state", {}))

    @contextmanager
    def reporting(self, total_steps: int) -> Iterator[tuple[ProgressBar, Logger]]:
        """A progress bar over ``total_steps`` env steps and a logger (resumed after the checkpoint's iteration)."""
        c = self.counters
        bar = ProgressBar(total_steps, c["env_steps"], enabled=self.progress)
        logger = Logger(
            self.logdir,
            note=self.console_note(),
            console=bar.write if self.console else None,
            columns=self.columns if self.columns is not None else "default",
            episode_stats=self.episode_stats,
            resume_after=c["iteration"] if self.resume else None,
            resume_env_steps=c["env_steps"],
        )
        logger.start_clock(c["env_steps"])
        with bar, logger:
            yield bar, logger

    def console_note(self) -> str:
        """The line above the console table: what the return columns are, and what they cannot show."""
        note = self.episode_stats.description()
        if isinstance(self.cfg, OnPolicyConfig):
            note += (f"\nepisodes longer than an iteration ({self.cfg.steps_per_iter} steps) are cut there and "
                     "not counted")
        return note

    def evaluation_due(self, steps_before: int) -> bool:
        """Whether the iteration that started at ``steps_before`` env steps crossed an ``eval_every`` mark."""
        every = self.cfg.eval_every
        return every > 0 and self.counters["env_steps"] // every > steps_before // every

    def evaluate(self, pol: torch.nn.Module) -> dict[str, float]:
        """A deterministic evaluation of ``pol`` (env seeds kept apart from training); calls ``on_eval``."""
        env = self.cfg.env if self.eval_env is None else self.eval_env
        rets = evaluate(env, pol, num_epis=self.cfg.eval_episodes, seed=EVAL_SEED + self.cfg.seed,
                        timeout=sampler_timeout(self.cfg))
        self.eval_returns = [float(r) for r in rets]
        self.eval_steps = self.counters["env_steps"]
        mean = float(np.mean(rets))
        if self.on_eval is not None:
            self.on_eval(self.counters["env_steps"], mean)
        return {"eval_return_mean": mean, "eval_return_std": float(np.std(rets))}

    def end_iteration(self, entries: Mapping[str, Any], last: bool) -> None:
        """Save a checkpoint after the last iteration and every ``checkpoint_every`` iterations."""
        every = self.cfg.checkpoint_every
        if last or (every and self.counters["iteration"] % every == 0):
            data = {"counters": self.counters, "algo_state": self.algo_state, "config": self.values}
            stats = {"episode_stats": self.episode_stats}
            save_checkpoint(self.ckpt_path, {**entries, **stats, **data}, rng=self.global_rng)

    def finish(self, pol: torch.nn.Module, record: dict[str, float]) -> RunOutcome:
        """The final deterministic evaluation (written to ``eval.json``) and the run's outcome.

        It runs after the last checkpoint was written, so it never changes what a resumed run does.
        """
        if self.eval_steps != self.counters["env_steps"]:
            self.evaluate(pol)
        out = {"env_steps": self.counters["env_steps"], "returns": self.eval_returns,
               "mean": float(np.mean(self.eval_returns)), "std": float(np.std(self.eval_returns)),
               "seed": EVAL_SEED + self.cfg.seed}
        (self.logdir / EVAL_NAME).write_text(json.dumps(out, indent=2) + "\n")
        c = self.counters
        return RunOutcome(c["iteration"], c["env_steps"], c["episodes"], record, self.eval_returns, self.ckpt_path)
