"""The results file of ``results.py`` and the docs it regenerates: tables, curve images, the summary page.

Pure functions of the records (dicts, one per run, as in ``results.csv``) except for
the writers; ``tests/test_results_report.py`` checks them on made-up records.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ["row", "algo", "env", "library", "seed", "steps", "budget", "eval_mean", "eval_std", "wall_s", "cpu_s",
          "trajkit", "torch", "gymnasium", "sb3", "date", "logdir"]
NUMERIC = {"seed": int, "steps": int, "budget": int, "eval_mean": float, "eval_std": float, "wall_s": float,
           "cpu_s": float}
BEGIN, END = "<!-- results begin -->", "<!-- results end -->"
SUMMARY_PAGE = "benchmark_results.md"


@dataclass(frozen=True)
class Row:
    """One results row: an algorithm's preset on an env, with settings (``--hp``), budget, target and docs page."""

    name: str
    algo: str
    env: str
    steps: int
    target: float
    page: str
    hp: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def title(self) -> str:
        """The row's name in tables and figures."""
        return self.label or self.algo.upper()


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a results file (none if it does not exist), numbers parsed."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, typ in NUMERIC.items():
            r[k] = typ(r[k])
    return rows


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write ``records`` sorted by row, library and seed (atomically: a temp file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(sorted(records, key=lambda r: (r["row"], r["library"], r["seed"], r["budget"])))
    tmp.replace(path)


def find(records: Sequence[dict[str, Any]], row: str, library: str, seed: int, budget: int) -> dict[str, Any] | None:
    """The record of one run, or None."""
    for r in records:
        if (r["row"], r["library"], r["seed"], r["budget"]) == (row, library, seed, budget):
            return r
    return None


def add_record(path: Path, rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``rec`` to the results file (replacing an earlier record of its run) and return all records.

    The file is re-read under an exclusive lock, so benchmarks running side by side
    (different rows) keep each other's results.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_records(path, replace(read_records(path), rec))
        return read_records(path)


def replace(records: Sequence[dict[str, Any]], rec: dict[str, Any]) -> list[dict[str, Any]]:
    """``records`` with ``rec`` instead of any earlier record of the same run."""
    key = (rec["row"], rec["library"], rec["seed"], rec["budget"])
    return [r for r in records if (r["row"], r["library"], r["seed"], r["budget"]) != key] + [rec]


def runs_of(records: Sequence[dict[str, Any]], row: Row, library: str) -> list[dict[str, Any]]:
    """The records of ``row``'s ``library`` runs at the row's budget, by seed."""
    return sorted((r for r in records if r["row"] == row.name and r["library"] == library and r["budget"] == row.steps),
                  key=lambda r: r["seed"])


def mean_std(values: Sequence[float]) -> str:
    """``"m ± s"`` over seeds (population std), or ``"m"`` for one value, ``"—"`` for none."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.pstdev(values):.1f}"


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "—"


#: the peer library of an algorithm when it is not stable-baselines3 itself
PEERS = {"trpo": "sb3-contrib"}


def peer_name(algo: str) -> str:
    """``SB3``, or the SB3 family library that has ``algo``."""
    return PEERS.get(algo, "SB3")


def library_label(library: str, runs: Sequence[dict[str, Any]]) -> str:
    """``trajkit 0.2.0`` or ``SB3 2.3.2`` from the runs' recorded versions."""
    if not runs:
        return library
    if library == "trajkit":
        return f"trajkit {runs[0]['trajkit']}"
    return f"{peer_name(runs[0]['algo'])} {runs[0]['sb3']}"


def row_table(row: Row, records: Sequence[dict[str, Any]], seeds: Sequence[int]) -> list[str]:
    """The markdown table of one row: a line per library, a column per seed, mean ± std, median times."""
    head = ["library", *(f"seed {s}" for s in seeds), "mean ± std", "wall s (median)", "CPU s (median)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for library in ("trajkit", "sb3"):
        runs = runs_of(records, row, library)
        if not runs:
            continue
        by_seed = {r["seed"]: r["eval_mean"] for r in runs}
        cells = [library_label(library, runs), *(f"{by_seed[s]:.1f}" if s in by_seed else "—" for s in seeds),
                 mean_std([r["eval_mean"] for r in runs]), _median([r["wall_s"] for r in runs]),
                 _median([r["cpu_s"] for r in runs])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_met(row: Row, records: Sequence[dict[str, Any]]) -> bool | None:
    """Whether every trajkit seed of ``row`` reached its target (None: no runs)."""
    runs = runs_of(records, row, "trajkit")
    return None if not runs else all(r["eval_mean"] >= row.target for r in runs)


def command(row: Row) -> str:
    """The command that reproduces ``row``."""
    return f"python benchmarks/results.py --algos {row.name}"


def settings_text(row: Row) -> str:
    """The row's settings beyond the preset, as ``--hp`` would take them."""
    return ", ".join(f"`{k}={v}`" for k, v in row.hp.items()) or "the preset"


def row_block(row: Row, records: Sequence[dict[str, Any]], image_dir: str) -> list[str]:
    """An algorithm page's part for one row: heading line, table, verdict, image."""
    runs = runs_of(records, row, "trajkit") + runs_of(records, row, "sb3")
    seeds = sorted({r["seed"] for r in runs}) or [0, 1, 2]
    met = target_met(row, records)
    verdict = {None: "not run yet", True: "reached on every seed", False: "**not** reached on every seed"}[met]
    lines = [f"**{row.title}** on {row.env}, {row.steps:,} env steps, {settings_text(row)}; target >= "
             f"{row.target:g} ({verdict}). Reproduce: `{command(row)}`.", ""]
    if runs:
        lines += [*row_table(row, records, seeds), ""]
        lines += [f"![{row.title} on {row.env}: deterministic evaluation return against env steps, mean and band "
                  f"(one std) over seeds]({image_dir}/{row.name}.png)", ""]
    return lines


def replace_block(text: str, block: Sequence[str], path: Path) -> str:
    """``text`` with the lines between its results markers replaced by ``block``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no '{BEGIN}' ... '{END}' block to regenerate")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n" + "\n".join(block).rstrip() + "\n" + END + tail


def summary_lines(rows: Sequence[Row], records: Sequence[dict[str, Any]], pages: bool = True) -> list[str]:
    """The summary table: every row, trajkit's and SB3's mean ± std, worst seed, target (and its docs page)."""
    lines = ["| algorithm | env | steps | trajkit (mean ± std) | worst seed | seeds | target | met | SB3 (mean ± std) |"
             + (" page |" if pages else ""), "|---|---|---|---|---|---|---|---|---|" + ("---|" if pages else "")]
    for row in rows:
        ours, theirs = runs_of(records, row, "trajkit"), runs_of(records, row, "sb3")
        worst = f"{min(r['eval_mean'] for r in ours):.1f}" if ours else "—"
        met = {None: "—", True: "yes", False: "**no**"}[target_met(row, records)]
        lines.append(f"| {row.title} | {row.env} | {row.steps:,} | {mean_std([r['eval_mean'] for r in ours])} | "
                     f"{worst} | {', '.join(str(r['seed']) for r in ours) or '—'} | >= {row.target:g} | {met} | "
                     f"{mean_std([r['eval_mean'] for r in theirs])} |"
                     + (f" {{doc}}`algorithms/{row.page}` |" if pages else ""))
    return lines


def summary_text(rows: Sequence[Row], records: Sequence[dict[str, Any]]) -> str:
    """The summary table as plain text for the console."""
    return "\n".join(summary_lines(rows, records, pages=False))


def write_image(row: Row, records: Sequence[dict[str, Any]], root: Path, out: Path) -> bool:
    """Draw ``row``'s evaluation curves (trajkit and SB3 seeds) into ``out``; False if its logs are gone."""
    from trajkit.plot import make_figure

    logdirs = [root / r["logdir"] for r in runs_of(records, row, "trajkit") + runs_of(records, row, "sb3")]
    logdirs = [d for d in logdirs if (d / "progress.csv").exists()]
    if not logdirs:
        return False
    fig, _ = make_figure(logdirs, y="eval_return_mean", title=f"{row.title} on {row.env}", figsize=(6.0, 3.6))
    ax = fig.axes[0]
    ax.set_ylabel("deterministic evaluation return")
    for text in ax.get_legend().get_texts():  # "sac Pendulum-v1 (± std ...)" -> "trajkit (± std ...)"
        name, _, rest = text.get_text().partition(f" {row.env}")
        text.set_text(("trajkit" if not name.startswith("sb3-") else peer_name(row.algo)) + rest)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return True


def write_docs(rows: Sequence[Row], records: Sequence[dict[str, Any]], data: Path, docs: Path, root: Path,
               only: set[str] | None = None, readme: Path | None = None) -> None:
    """Rewrite the results blocks of the algorithm pages, the summary page and ``readme``; draw ``only``'s images."""
    for row in rows:
        if only is None or row.name in only:
            write_image(row, records, root, data / f"{row.name}.png")
    image_dir = "../" + data.relative_to(docs).as_posix() if data.is_relative_to(docs) else data.as_posix()
    for page in dict.fromkeys(r.page for r in rows):
        path = docs / "algorithms" / f"{page}.md"
        block: list[str] = []
        for row in (r for r in rows if r.page == page):
            block += row_block(row, records, image_dir)
        path.write_text(replace_block(path.read_text(), block, path))
    summary = docs / SUMMARY_PAGE
    summary.write_text(replace_block(summary.read_text(), summary_lines(rows, records), summary))
    if readme is not None:
        readme.write_text(replace_block(readme.read_text(), summary_lines(rows, records, pages=False), readme))

