"""Learning curves from run directories: ``trajkit plot LOGDIR [LOGDIR ...] -o curves.png``.

Each LOGDIR holds a ``progress.csv`` written by :class:`trajkit.logger.Logger`.

**Grouping by seed.** Runs that differ only by seed are drawn as one curve: the mean
over seeds with a shaded band (standard deviation by default, or min-max); the legend
says "± std over N seeds" (or "min-max over N seeds") for a group of N > 1 runs. Two
runs belong to the same group when

* both have a ``config.json`` (``trajkit train`` writes one) and their configs are
  equal apart from ``seed`` and ``steps``; the label is ``"ALGO ENV"``; or, otherwise,
* their directory names are equal after removing a trailing seed suffix
  (``_s0``, ``-s1``, ``_seed2``, ``-seed3``); the label is the stripped name.

**Algorithm and env** of a run (for the title, and for the warning when curves of
different envs share one axis) come from the top-level ``algo`` and ``env`` keys of its
``config.json``; where those are missing, from its directory names: an env id is a
``_``-separated part ending in ``-vN`` (``ppo_CartPole-v1_s0``, or a parent directory
``CartPole-v1/ppo_s0``), and the algorithm is what precedes it in the run's name.

**Smoothing.** ``smooth=k`` replaces each logged point of a run by the mean of it and
the ``k - 1`` points logged before it (a trailing moving average; the first points
average what there is), before the runs of a group are combined. ``smooth=1`` (the
default) draws the points as logged.

Curves of a group are linearly interpolated onto a common grid of env steps covering
the range all its runs reached, then averaged. Needs the ``plot`` extra (matplotlib);
figures are drawn without ``pyplot``, so plotting changes no matplotlib global state.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajkit.checks import check_int
from trajkit.logger import CSV_NAME, read_csv

PathLike = str | os.PathLike[str]

_SEED_SUFFIX = re.compile(r"[_-]s(?:eed)?\d+$")
_ENV_ID = re.compile(r"^[A-Za-z][\w.:-]*-v\d+$")
BANDS = ("std", "minmax", "none")


class MixedEnvsWarning(UserWarning):
    """Curves of different envs are drawn on one axis (their returns are not comparable)."""


@dataclass
class Curve:
    """One group of runs on a common x grid: ``mean``, ``low`` and ``high`` of ``y``, shape ``(P,)``."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    num_runs: int
    algo: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """Algorithm and env of a run (None where unknown)."""

    algo: str | None
    env: str | None


def _config(logdir: PathLike) -> dict[str, Any] | None:
    path = Path(logdir) / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def _info_from_names(logdir: PathLike) -> RunInfo:
    path = Path(logdir).resolve()
    parts = _SEED_SUFFIX.sub("", path.name).split("_")
    envs = [i for i, p in enumerate(parts) if _ENV_ID.match(p)]
    if envs:
        algo = "_".join(parts[: envs[0]])
        return RunInfo(algo or None, parts[envs[0]])
    env = next((p.name for p in path.parents if _ENV_ID.match(p.name)), None)
    return RunInfo("_".join(parts) or None, env)


def run_info(logdir: PathLike) -> RunInfo:
    """A run's algorithm and env: ``config.json``'s ``algo`` and ``env``, else from the directory names."""
    cfg = _config(logdir) or {}
    named = _info_from_names(logdir)
    algo, env = cfg.get("algo"), cfg.get("env")
    return RunInfo(str(algo) if algo is not None else named.algo, str(env) if env is not None else named.env)


def group_key(logdir: PathLike) -> tuple[str, str]:
    """(key, label) of a run: runs with the same key differ only by seed (see the module docstring)."""
    path = Path(logdir)
    cfg = _config(path)
    if cfg is not None:
        rest = {k: v for k, v in cfg.items() if k not in ("seed", "steps")}
        label = " ".join(str(cfg[k]) for k in ("algo", "env") if k in cfg) or path.name
        return json.dumps(rest, sort_keys=True), label
    name = _SEED_SUFFIX.sub("", path.resolve().name)
    return f"name:{name}", name


def group_runs(logdirs: Sequence[PathLike]) -> dict[str, list[Path]]:
    """Label -> run directories, in first-seen order; labels made unique if two groups share one."""
    groups: dict[str, tuple[str, list[Path]]] = {}
    for d in logdirs:
        key, label = group_key(d)
        groups.setdefault(key, (label, []))[1].append(Path(d))
    out: dict[str, list[Path]] = {}
    for label, dirs in groups.values():
        unique, i = label, 2
        while unique in out:
            unique, i = f"{label} ({i})", i + 1
        out[unique] = dirs
    return out


def load_run(logdir: PathLike, x: str = "env_steps", y: str = "return_mean") -> tuple[np.ndarray, np.ndarray]:
    """The finite ``(x, y)`` points of a run's ``progress.csv``."""
    path = Path(logdir) / CSV_NAME
    if not path.exists():
        raise FileNotFoundError(f"{logdir} has no {CSV_NAME}; is it a trajkit log directory?")
    cols = read_csv(path)
    for key in (x, y):
        if key not in cols:
            raise KeyError(f"{path} has no column {key!r}; columns: {sorted(cols)}")
    ok = np.isfinite(cols[x]) & np.isfinite(cols[y])
    return cols[x][ok], cols[y][ok]


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average: point ``i`` becomes the mean of ``y[max(0, i - window + 1) : i + 1]``; shape kept."""
    window = check_int("smooth", window, min_value=1)
    if window == 1 or len(y) == 0:
        return y
    sums = np.cumsum(np.concatenate([[0.0], np.asarray(y, dtype=np.float64)]))
    i = np.arange(1, len(y) + 1)
    start = np.maximum(i - window, 0)
    return (sums[i] - sums[start]) / (i - start)


def aggregate(
    runs: Sequence[tuple[np.ndarray, np.ndarray]], label: str, band: str = "std", points: int = 200
) -> Curve:
    """Interpolate runs onto a common grid (the x range all of them cover) and reduce them.

    ``band`` is ``"std"`` (mean +- one standard deviation over runs), ``"minmax"`` or
    ``"none"``. A single run gives its own points.
    """
    if band not in BANDS:
        raise ValueError(f"band must be 'std', 'minmax' or 'none', got {band!r}")
    runs = [(x, y) for x, y in runs if len(x) > 0]
    if not runs:
        raise ValueError(f"{label}: no data points")
    if len(runs) == 1:
        x, y = runs[0]
        return Curve(label, x, y, y, y, 1)
    lo = max(float(x.min()) for x, _ in runs)
    hi = min(float(x.max()) for x, _ in runs)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    ys = np.stack([np.interp(grid, x, y) for x, y in runs])
    mean = ys.mean(0)
    if band == "std":
        low, high = mean - ys.std(0), mean + ys.std(0)
    elif band == "minmax":
        low, high = ys.min(0), ys.max(0)
    else:
        low = high = mean
    return Curve(label, grid, mean, low, high, len(runs))


def curves(
    logdirs: Sequence[PathLike],
    x: str = "env_steps",
    y: str = "return_mean",
    band: str = "std",
    smooth: int = 1,
) -> list[Curve]:
    """One :class:`Curve` per group of ``logdirs``, each run smoothed over ``smooth`` logged points first."""
    check_int("smooth", smooth, min_value=1)
    out = []
    for label, dirs in group_runs(logdirs).items():
        runs = [load_run(d, x, y) for d in dirs]
        curve = aggregate([(rx, moving_average(ry, smooth)) for rx, ry in runs], label, band)
        info = run_info(dirs[0])
        curve.algo, curve.env = info.algo, info.env
        out.append(curve)
    return out


def _unique(items: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))


def legend_label(curve: Curve, band: str = "std") -> str:
    """``curve.label``, with what the band shows where more than one seed was averaged."""
    if curve.num_runs < 2:
        return curve.label
    text = {"std": "± std", "minmax": "min-max", "none": "mean"}[band]
    return f"{curve.label} ({text} over {curve.num_runs} seeds)"


def default_title(cs: Sequence[Curve]) -> str:
    """``"ALGO[, ALGO...] on ENV[, ENV...]"`` from the curves' algorithms and envs (either may be unknown)."""
    algos, envs = ", ".join(_unique([c.algo for c in cs])), ", ".join(_unique([c.env for c in cs]))
    if algos and envs:
        return f"{algos} on {envs}"
    return algos or envs or "learning curves"


def warn_if_mixed_envs(cs: Sequence[Curve]) -> None:
    """Warn (:class:`MixedEnvsWarning`, naming the envs) if the curves come from more than one env."""
    envs = _unique([c.env for c in cs])
    if len(envs) > 1:
        warnings.warn(
            f"curves of different envs share one axis: {', '.join(envs)}; their returns are not "
            "comparable (plot each env separately)",
            MixedEnvsWarning,
            stacklevel=3,
        )


def make_figure(
    logdirs: Sequence[PathLike],
    *,
    x: str = "env_steps",
    y: str = "return_mean",
    band: str = "std",
    title: str | None = None,
    smooth: int = 1,
    figsize: tuple[float, float] = (7.0, 4.5),
) -> tuple[Any, list[Curve]]:
    """A matplotlib ``Figure`` of the learning curves of ``logdirs`` (not attached to pyplot), and its curves.

    Arguments as in :func:`plot_curves`.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'trajkit[plot]'") from e
    cs = curves(logdirs, x, y, band, smooth)
    warn_if_mixed_envs(cs)
    fig = Figure(figsize=figsize, dpi=120)
    ax = fig.subplots()
    for c in cs:
        (line,) = ax.plot(c.x, c.mean, label=legend_label(c, band))
        if c.num_runs > 1 and band != "none":
            ax.fill_between(c.x, c.low, c.high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x.replace("_", " "))
    smoothed = f" (moving average over {smooth} logged points)" if smooth > 1 else ""
    ax.set_ylabel(y.replace("_", " ") + smoothed)
    ax.set_title(title or default_title(cs))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig, cs


def plot_curves(
    logdirs: Sequence[PathLike],
    out: PathLike,
    *,
    x: str = "env_steps",
    y: str = "return_mean",
    band: str = "std",
    title: str | None = None,
    smooth: int = 1,
) -> list[Curve]:
    """Draw the learning curves of ``logdirs`` into the image file ``out`` (PNG, PDF, SVG...).

    Args:
        logdirs: run directories, each with a ``progress.csv``; runs of one config
            that differ by seed are grouped (module docstring).
        out: the image file to write (its format from the suffix).
        x, y: the CSV columns to draw (``y`` against ``x``).
        band: ``"std"`` (mean ± one standard deviation over seeds), ``"minmax"`` or
            ``"none"``; the legend names it for groups of more than one seed.
        title: the title; None: ``"ALGO on ENV"`` from the runs' configs or names.
        smooth: trailing moving-average window over logged points (1: no smoothing).

    Returns:
        the drawn curves, one per group. Warns (:class:`MixedEnvsWarning`) when the
        curves come from different envs.
    """
    fig, cs = make_figure(logdirs, x=x, y=y, band=band, title=title, smooth=smooth)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return cs
