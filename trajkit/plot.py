"""Learning curves from run directories: ``trajkit plot LOGDIR [LOGDIR ...] -o curves.png``.

Each LOGDIR holds a ``progress.csv`` written by :class:`trajkit.logger.Logger`.

**Grouping by seed.** Runs that differ only by seed are drawn as one curve: the mean
over seeds with a shaded band (standard deviation by default, or min-max). Two runs
belong to the same group when

* both have a ``config.json`` (``trajkit train`` writes one) and their configs are
  equal apart from ``seed`` and ``steps``; the label is ``"ALGO ENV"``; or, otherwise,
* their directory names are equal after removing a trailing seed suffix
  (``_s0``, ``-s1``, ``_seed2``, ``-seed3``); the label is the stripped name.

Curves of a group are linearly interpolated onto a common grid of env steps covering
the range all its runs reached, then averaged. Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajkit.logger import CSV_NAME, read_csv

PathLike = str | os.PathLike[str]

_SEED_SUFFIX = re.compile(r"[_-]s(?:eed)?\d+$")


@dataclass
class Curve:
    """One group of runs on a common x grid: ``mean``, ``low`` and ``high`` of ``y``, shape ``(P,)``."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    num_runs: int


def group_key(logdir: PathLike) -> tuple[str, str]:
    """(key, label) of a run: runs with the same key differ only by seed (see the module docstring)."""
    path = Path(logdir)
    cfg_path = path / "config.json"
    if cfg_path.exists():
        cfg: dict[str, Any] = json.loads(cfg_path.read_text())
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


def aggregate(
    runs: Sequence[tuple[np.ndarray, np.ndarray]], label: str, band: str = "std", points: int = 200
) -> Curve:
    """Interpolate runs onto a common grid (the x range all of them cover) and reduce them.

    ``band`` is ``"std"`` (mean +- one standard deviation over runs), ``"minmax"`` or
    ``"none"``. A single run gives its own points.
    """
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
    elif band == "none":
        low = high = mean
    else:
        raise ValueError(f"band must be 'std', 'minmax' or 'none', got {band!r}")
    return Curve(label, grid, mean, low, high, len(runs))


def curves(
    logdirs: Sequence[PathLike], x: str = "env_steps", y: str = "return_mean", band: str = "std"
) -> list[Curve]:
    """One :class:`Curve` per group of ``logdirs``."""
    return [
        aggregate([load_run(d, x, y) for d in dirs], label, band)
        for label, dirs in group_runs(logdirs).items()
    ]


def plot_curves(
    logdirs: Sequence[PathLike],
    out: PathLike,
    x: str = "env_steps",
    y: str = "return_mean",
    band: str = "std",
    title: str | None = None,
) -> list[Curve]:
    """Draw the learning curves of ``logdirs`` into the image file ``out`` (PNG, PDF, SVG...)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'trajkit[plot]'") from e
    cs = curves(logdirs, x, y, band)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for c in cs:
        (line,) = ax.plot(c.x, c.mean, label=f"{c.label} ({c.num_runs} run{'s' if c.num_runs > 1 else ''})")
        if c.num_runs > 1 and band != "none":
            ax.fill_between(c.x, c.low, c.high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    band_text = {
        "std": "mean ± std over seeds",
        "minmax": "mean, min-max over seeds",
        "none": "mean over seeds",
    }
    ax.set_title(title or f"{y.replace('_', ' ')} ({band_text.get(band, band)})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return cs
