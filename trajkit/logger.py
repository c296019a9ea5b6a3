"""Run logging: per-iteration records to CSV, TensorBoard and a compact console table.

A :class:`Logger` is an ordinary object you create and pass around; trajkit keeps no
global logger. Typical use::

    logger = Logger("runs/ppo_s0")
    for it in range(iters):
        epis = sampler.sample(pol, max_steps=2048)
        ...
        result = ppo_clip.train(...)
        logger.log_iteration(iteration=it, env_steps=total_steps, epis=epis, result=result)
    logger.close()

**Returns** (``return_mean`` and friends) are statistics over the last 100 completed
episodes (Stable-Baselines3's ``ep_rew_mean`` convention), kept by the logger's
:class:`~trajkit.episode_stats.EpisodeStats` across iterations, so an iteration that
completes no episode still shows the recent returns rather than NaN; ``window_epis``
says how many episodes the window holds. Pieces cut by the sampler's ``max_steps``
are skipped (see :mod:`trajkit.episode_stats`). For an exact resume, checkpoint the
logger (or its ``episode_stats``): both have ``state_dict()``/``load_state_dict()``.

**CSV** (``LOGDIR/progress.csv``): one row per record, every key. The column set is
fixed by the first record; if a later record brings a new key, the file is rewritten
(atomically) with the widened header and the earlier rows get empty cells, so the file
is always a valid rectangular CSV that ``pandas.read_csv`` or :func:`read_csv` reads.

**TensorBoard** (``LOGDIR/tb/``, needs the ``tensorboard`` extra): every numeric key
as a scalar against ``env_steps``, grouped as ``rollout/`` (returns, lengths),
``time/`` (``sps``, ``time``) and ``train/`` (losses and diagnostics).

**Console**: a table of at most 100 columns with the numbers to watch
(``columns="default"``), every key (``columns="all"``) or the keys you list; see
:mod:`trajkit.console`.

**Resume**: ``Logger(logdir, resume_after=k)`` keeps the CSV rows with
``iteration <= k`` and drops later ones (written after the checkpoint the run resumes
from), and purges TensorBoard events after the checkpoint's ``env_steps``.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from trajkit._atomic import atomic_write
from trajkit.console import Columns, ConsoleTable, ProgressBar, progress_bar
from trajkit.episode_stats import EpisodeStats, return_stats
from trajkit.traj import Traj

__all__ = ["Logger", "read_csv", "return_stats", "EpisodeStats", "ProgressBar", "progress_bar", "CSV_NAME"]

PathLike = str | os.PathLike[str]
Record = dict[str, float]

CSV_NAME = "progress.csv"
TB_DIR = "tb"

#: the keys of :meth:`Logger.log_iteration` records that come first, in this order
FIRST_KEYS = (
    "iteration",
    "env_steps",
    "episodes",
    "return_mean",
    "return_std",
    "return_min",
    "return_max",
    "epi_len_mean",
    "window_epis",
    "sps",
    "time",
)
_ROLLOUT_KEYS = {
    "episodes",
    "return_mean",
    "return_std",
    "return_min",
    "return_max",
    "epi_len_mean",
    "num_epis",
    "window_epis",
}
_TIME_KEYS = {"sps", "time", "iteration"}


def read_csv(path: PathLike) -> dict[str, np.ndarray]:
    """A progress CSV as float columns (empty cells become NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = list(rows[0]) if rows else []
    return {k: np.array([_to_float(r.get(k)) for r in rows], dtype=np.float64) for k in keys}


def _to_float(s: str | None) -> float:
    try:
        return float(s) if s not in (None, "") else float("nan")
    except ValueError:
        return float("nan")


def _csv_cell(v: float) -> str:
    """Integers without a trailing ``.0``; other floats with full precision (``repr``)."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v))


class _Csv:
    """``progress.csv`` with a column set that can only grow (the file is rewritten when it does)."""

    def __init__(self, path: Path, resume_after: int | None) -> None:
        self.path = path
        self.columns: list[str] = []
        if resume_after is not None and path.exists():
            self._truncate(resume_after)
        elif path.exists():
            path.unlink()

    def _truncate(self, last_iteration: int) -> None:
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [r for r in reader if _to_float(r.get("iteration")) <= last_iteration]
            self.columns = list(reader.fieldnames or [])
        self._rewrite(rows)

    def _rewrite(self, rows: Iterable[Mapping[str, Any]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path, lambda f: f.write(buf.getvalue().encode()))

    def write(self, record: Mapping[str, float]) -> None:
        new = [k for k in record if k not in self.columns]
        if new or not self.path.exists():
            old_rows = self._rows() if self.path.exists() else []
            self.columns += new
            self._rewrite(old_rows)
        with open(self.path, "a", newline="") as f:
            row = {k: _csv_cell(record[k]) if k in record else "" for k in self.columns}
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(row)

    def _rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


def _tb_tag(key: str) -> str:
    if key in _ROLLOUT_KEYS:
        return f"rollout/{key}"
    if key in _TIME_KEYS:
        return f"time/{key}"
    return f"train/{key}"


class Logger:
    """Writes per-iteration records to ``logdir`` (CSV, TensorBoard) and a console table.

    Args:
        logdir: directory for ``progress.csv`` and ``tb/`` (None: console only).
        tensorboard: write TensorBoard events; None (default) means "if the
            ``tensorboard`` package is installed"; True raises if it is not.
        console: where table rows go, e.g. ``print`` or a progress bar's ``write``
            (None: no console output).
        console_every: print every this many records.
        header_every: repeat the table header every this many printed rows.
        columns: the console table's columns: ``"default"`` or None (the numbers to watch, rows
            of at most 100 characters), ``"all"`` (every key) or a list of keys. The CSV
            and TensorBoard always get every key.
        episode_stats: the return window :meth:`log_iteration` adds episodes to and
            reports (default: a new ``EpisodeStats(window=100)``); pass your own for
            another window, or one restored from a checkpoint.
        note: the line above the console table (default: what the return columns are).
        resume_after: continue a run from a checkpoint taken after this iteration:
            keep earlier CSV rows, drop later ones (see the module docstring).
        resume_env_steps: with ``resume_after``, the checkpoint's ``env_steps``, from
            which TensorBoard events are purged.
    """

    def __init__(
        self,
        logdir: PathLike | None = None,
        *,
        tensorboard: bool | None = None,
        console: Callable[[str], Any] | None = print,
        console_every: int = 1,
        header_every: int = 20,
        columns: Columns = "default",
        episode_stats: EpisodeStats | None = None,
        note: str | None = None,
        resume_after: int | None = None,
        resume_env_steps: int | None = None,
    ) -> None:
        self.logdir = None if logdir is None else Path(logdir)
        self.episode_stats = EpisodeStats() if episode_stats is None else episode_stats
        self._table: ConsoleTable | None = None
        if console is not None:
            note = self.episode_stats.description() if note is None else note
            self._table = ConsoleTable(console, columns=columns, header_every=header_every, note=note)
        if self.logdir is not None:
            self.logdir.mkdir(parents=True, exist_ok=True)
        self._csv = None if self.logdir is None else _Csv(self.logdir / CSV_NAME, resume_after)
        self._tb = self._open_tb(tensorboard, resume_env_steps if resume_after is not None else None)
        self.console, self.console_every = console, console_every
        self._n_logged = 0
        self._start = self._last_time = time.perf_counter()
        self._last_steps: float | None = None

    def _open_tb(self, tensorboard: bool | None, purge_step: int | None) -> Any:
        if self.logdir is None or tensorboard is False:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            if tensorboard:
                raise ImportError("TensorBoard logging needs: pip install 'trajkit[tensorboard]'") from e
            return None
        purge = None if purge_step is None else purge_step + 1
        return SummaryWriter(str(self.logdir / TB_DIR), purge_step=purge)

    @property
    def csv_path(self) -> Path | None:
        """``LOGDIR/progress.csv`` (None without a logdir)."""
        return None if self._csv is None else self._csv.path

    # ------------------------------------------------------------------ logging
    def log(self, record: Mapping[str, float]) -> None:
        """Write one record (name -> number); it needs ``iteration`` and ``env_steps``."""
        for key in ("iteration", "env_steps"):
            if key not in record:
                raise KeyError(f"a log record needs {key!r}; got {sorted(record)}")
        rec = {k: float(v) for k, v in record.items()}
        if self._csv is not None:
            self._csv.write(rec)
        if self._tb is not None:
            step = int(rec["env_steps"])
            for k, v in rec.items():
                if k != "env_steps":
                    self._tb.add_scalar(_tb_tag(k), v, step)
            self._tb.flush()
        if self._table is not None and self._n_logged % self.console_every == 0:
            self._table.row(rec)
        self._n_logged += 1

    def log_iteration(
        self,
        *,
        iteration: int,
        env_steps: int,
        epis: Traj | Sequence[Mapping[str, Any]],
        episodes: int | None = None,
        result: Any = None,
        extra: Mapping[str, float] | None = None,
    ) -> Record:
        """Add this iteration's episodes to the return window, then build and :meth:`log` its record.

        Args:
            iteration: iteration index. env_steps: env steps so far.
            epis: this iteration's episodes (a Traj or episode dicts, e.g. what the
                sampler returned); pieces cut by the sampler's ``max_steps`` are skipped,
                so passing only the completed ones gives the same record.
            episodes: completed episodes so far; None: ``episode_stats.total``, the
                number the window has been given (restored with it on resume).
            result: a ``TrainResult`` (its ``summary()`` is logged: the last value of
                every loss and every diagnostic) or a mapping of numbers, or None.
            extra: more named numbers to log.

        Returns:
            the record that was logged: ``return_mean/std/min/max`` and
            ``epi_len_mean`` over the window (NaN until an episode completes),
            ``window_epis``, ``sps`` (env steps per second since the previous call, or
            since the logger was created or :meth:`start_clock`) and ``time``.
        """
        now = time.perf_counter()
        prev = self._last_steps
        steps_done = env_steps - prev if prev is not None else None
        sps = float("nan") if not steps_done else steps_done / max(now - self._last_time, 1e-9)
        self._last_time, self._last_steps = now, float(env_steps)
        self.episode_stats.add(epis)
        rec: Record = {
            "iteration": float(iteration),
            "env_steps": float(env_steps),
            "episodes": float(self.episode_stats.total if episodes is None else episodes),
        }
        rec.update(self.episode_stats.stats())
        rec.update(sps=sps, time=now - self._start)
        summary = result.summary() if hasattr(result, "summary") else dict(result or {})
        rec.update({k: float(v) for k, v in summary.items()})
        rec.update({k: float(v) for k, v in (extra or {}).items()})
        self.log(rec)
        return rec

    def start_clock(self, env_steps: int) -> None:
        """Measure the next ``sps`` from now and from ``env_steps`` (call before the first iteration)."""
        self._last_time, self._last_steps = time.perf_counter(), float(env_steps)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """What an exact resume needs: ``{"episode_stats": ...}`` (the return window)."""
        return {"episode_stats": self.episode_stats.state_dict()}

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise (KeyError, ValueError) if ``state`` is not a Logger :meth:`state_dict`."""
        if "episode_stats" not in state:
            raise KeyError(f"logger state lacks 'episode_stats'; has {sorted(state)}")
        self.episode_stats.check_state_dict(state["episode_stats"])

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the return window)."""
        self.check_state_dict(state)
        self.episode_stats.load_state_dict(state["episode_stats"])

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Flush and close the TensorBoard writer. Idempotent."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> Logger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
