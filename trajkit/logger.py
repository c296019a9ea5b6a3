"""Run logging: per-iteration records to CSV, TensorBoard and a compact console table.

A :class:`Logger` is an ordinary object you create and pass around; trajkit keeps no
global logger. Typical use::

    logger = Logger("runs/ppo_s0")
    for it in range(iters):
        epis = sampler.sample(pol, max_steps=2048)
        ...
        result = ppo_clip.train(...)
        logger.log_iteration(iteration=it, env_steps=total_steps, episodes=total_epis,
                             epis=epis, result=result)
    logger.close()

**CSV** (``LOGDIR/progress.csv``): one row per record. The column set is fixed by the
first record; if a later record brings a new key, the file is rewritten (atomically)
with the widened header and the earlier rows get empty cells, so the file is always a
valid rectangular CSV that ``pandas.read_csv`` or :func:`read_csv` reads.

**TensorBoard** (``LOGDIR/tb/``, needs the ``tensorboard`` extra): every numeric key
as a scalar against ``env_steps``, grouped as ``rollout/`` (returns, lengths),
``time/`` (``sps``, ``time``) and ``train/`` (losses and diagnostics).

**Resume**: ``Logger(logdir, resume_after=k)`` keeps the CSV rows with
``iteration <= k`` and drops later ones (written after the checkpoint the run resumes
from), and purges TensorBoard events after the checkpoint's ``env_steps``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import numpy as np

from trajkit._atomic import atomic_write
from trajkit.traj import Traj

PathLike = str | os.PathLike[str]
Record = dict[str, float]

CSV_NAME = "progress.csv"
TB_DIR = "tb"

#: columns that come first, in this order, in the CSV and the console table
FIRST_KEYS = (
    "iteration",
    "env_steps",
    "episodes",
    "return_mean",
    "return_std",
    "return_min",
    "return_max",
    "epi_len_mean",
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
}
_TIME_KEYS = {"sps", "time", "iteration"}
_CONSOLE_SKIP = {"episodes", "time", "num_epis"}


def return_stats(epis: Traj | Sequence[Mapping[str, Any]]) -> Record:
    """Undiscounted return and length statistics of some episodes.

    Args:
        epis: a :class:`Traj` or a list of episode dicts (each with ``rews``).

    Returns:
        ``return_mean``, ``return_std`` (population std), ``return_min``,
        ``return_max``, ``epi_len_mean`` and ``num_epis``; NaN statistics for no episodes.
    """
    if isinstance(epis, Traj):
        rews = epis["rews"].detach().double().cpu().numpy()
        b = epis.bounds.numpy()
        rets = np.add.reduceat(rews, b[:-1]) if len(rews) else np.zeros(0)
        rets = np.where(b[1:] > b[:-1], rets, 0.0)
        lens = np.diff(b).astype(np.float64)
    else:
        rets = np.array([float(np.sum(np.asarray(e["rews"], dtype=np.float64))) for e in epis])
        lens = np.array([float(len(e["rews"])) for e in epis])
    if len(rets) == 0:
        nan = float("nan")
        return {
            "return_mean": nan,
            "return_std": nan,
            "return_min": nan,
            "return_max": nan,
            "epi_len_mean": nan,
            "num_epis": 0.0,
        }
    return {
        "return_mean": float(rets.mean()),
        "return_std": float(rets.std()),
        "return_min": float(rets.min()),
        "return_max": float(rets.max()),
        "epi_len_mean": float(lens.mean()),
        "num_epis": float(len(rets)),
    }


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


def _fmt(v: float) -> str:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


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
        resume_after: int | None = None,
        resume_env_steps: int | None = None,
    ) -> None:
        self.logdir = None if logdir is None else Path(logdir)
        if self.logdir is not None:
            self.logdir.mkdir(parents=True, exist_ok=True)
        self._csv = None if self.logdir is None else _Csv(self.logdir / CSV_NAME, resume_after)
        self._tb = self._open_tb(tensorboard, resume_env_steps if resume_after is not None else None)
        self.console, self.console_every, self.header_every = console, console_every, header_every
        self._n_logged = self._n_printed = 0
        self._console_cols: list[str] = []
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
        if self.console is not None and self._n_logged % self.console_every == 0:
            self._print_row(rec)
        self._n_logged += 1

    def log_iteration(
        self,
        *,
        iteration: int,
        env_steps: int,
        episodes: int,
        epis: Traj | Sequence[Mapping[str, Any]],
        result: Any = None,
        extra: Mapping[str, float] | None = None,
    ) -> Record:
        """Build and :meth:`log` the standard record of one training iteration.

        Args:
            iteration: iteration index. env_steps, episodes: totals so far.
            epis: this iteration's (completed) episodes, for :func:`return_stats`.
            result: a ``TrainResult`` (its ``summary()`` is logged: the last value of
                every loss and every diagnostic) or a mapping of numbers, or None.
            extra: more named numbers to log.

        Returns:
            the record that was logged. ``sps`` is env steps per second since the
            previous call (or since the logger was created).
        """
        now = time.perf_counter()
        prev = self._last_steps
        steps_done = env_steps - prev if prev is not None else None
        sps = float("nan") if not steps_done else steps_done / max(now - self._last_time, 1e-9)
        self._last_time, self._last_steps = now, float(env_steps)
        rec: Record = {
            "iteration": float(iteration),
            "env_steps": float(env_steps),
            "episodes": float(episodes),
        }
        rec.update(return_stats(epis))
        rec.pop("num_epis")
        rec.update(sps=sps, time=now - self._start)
        summary = result.summary() if hasattr(result, "summary") else dict(result or {})
        rec.update({k: float(v) for k, v in summary.items()})
        rec.update({k: float(v) for k, v in (extra or {}).items()})
        self.log(rec)
        return rec

    def start_clock(self, env_steps: int) -> None:
        """Measure the next ``sps`` from now and from ``env_steps`` (call before the first iteration)."""
        self._last_time, self._last_steps = time.perf_counter(), float(env_steps)

    # ------------------------------------------------------------------ console
    def _print_row(self, rec: Mapping[str, float]) -> None:
        assert self.console is not None
        cols = [k for k in rec if k not in _CONSOLE_SKIP]
        if cols != self._console_cols or self._n_printed % self.header_every == 0:
            self._console_cols = cols
            self.console(" ".join(f"{_short_name(k):>{_width(k)}}" for k in cols))
        self.console(" ".join(f"{_fmt(rec[k]):>{_width(k)}}" for k in cols))
        self._n_printed += 1

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


_SHORT = {"iteration": "iter", "env_steps": "steps", "epi_len_mean": "len", "explained_var": "expl_var"}


def _short_name(key: str) -> str:
    name = _SHORT.get(key, key.removeprefix("return_").replace("return", "ret"))
    if key.startswith("return_"):
        name = f"ret_{name}"
    return name[:10]


def _width(key: str) -> int:
    return max(len(_short_name(key)), 9 if key != "iteration" else 5)


# ---------------------------------------------------------------------------- progress bar
class ProgressBar:
    """A progress bar over env steps: tqdm's if the ``progress`` extra is installed, else none.

    :meth:`write` prints a line above the bar (use it as a :class:`Logger`'s ``console``).
    """

    def __init__(
        self,
        total: int,
        initial: int = 0,
        enabled: bool = True,
        desc: str = "env steps",
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=total,
                    initial=initial,
                    desc=desc,
                    unit="step",
                    file=self._stream,
                    dynamic_ncols=True,
                    smoothing=0.1,
                )

    @property
    def active(self) -> bool:
        """Whether a real (tqdm) bar is shown."""
        return self._bar is not None

    def update(self, n: int) -> None:
        """Advance by ``n`` steps."""
        if self._bar is not None:
            self._bar.update(n)

    def write(self, line: str) -> None:
        """Print ``line`` without breaking the bar (to stdout)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress_bar(total: int, initial: int = 0, enabled: bool = True) -> ProgressBar:
    """A :class:`ProgressBar` over ``total`` env steps starting at ``initial``."""
    return ProgressBar(total, initial, enabled)
