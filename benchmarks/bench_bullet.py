"""PPO and SAC on Bullet beside stable-baselines3: equal steps, equal hyper-parameters.

    python benchmarks/bench_bullet.py                                 # 4 rows, seed 0, trajkit and SB3
    python benchmarks/bench_bullet.py --rows sac_hopper --seeds 0 1   # some rows, more seeds
    python benchmarks/bench_bullet.py --libraries sb3                 # one library (run the other beside it)
    python benchmarks/bench_bullet.py --report-only                   # the docs table from the results file

Each row is the trajkit preset of an algorithm on a Bullet env (``trajkit train ALGO
--env ENV``: rl-zoo's Bullet recipe without gSDE, ``presets/ppo.yaml`` and
``presets/sac.yaml``), trained through :func:`trajkit.run.train`, and SB3 with the same
settings (``sb3_runs.py``; ``use_sde`` off on both sides, since trajkit has no gSDE).
Evaluations every tenth of the budget and at the end, 10 deterministic episodes, one
torch thread per run. Runs are recorded in ``docs/results/bullet.csv`` as soon as they
end (the columns of ``results.csv``; an interrupted trajkit run resumes from its
checkpoint), the curves go to ``docs/results/ROW.png`` and the table to the results
block of ``docs/bullet.md``. Logs: ``runs/bullet/ROW/{trajkit,sb3}_sSEED``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results  # noqa: E402
import results_report  # noqa: E402

ROOT = results.ROOT
Row = results_report.Row
CHEETAH, HOPPER = "HalfCheetahBulletEnv-v0", "HopperBulletEnv-v0"
#: no target: the bar is "within noise of SB3 or better at equal steps"
NO_TARGET = float("-inf")

ROWS: list[Row] = [
    Row("ppo_halfcheetah", "ppo", CHEETAH, 500_000, NO_TARGET, "bullet", label="PPO"),
    Row("ppo_hopper", "ppo", HOPPER, 500_000, NO_TARGET, "bullet", label="PPO"),
    Row("sac_halfcheetah", "sac", CHEETAH, 100_000, NO_TARGET, "bullet", label="SAC"),
    Row("sac_hopper", "sac", HOPPER, 100_000, NO_TARGET, "bullet", label="SAC"),
]
ROWS_BY_NAME = {r.name: r for r in ROWS}


def select(names: Sequence[str] | None) -> list[Row]:
    """The rows named (all if None)."""
    if not names:
        return list(ROWS)
    unknown = [n for n in names if n not in ROWS_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {', '.join(ROWS_BY_NAME)}")
    return [ROWS_BY_NAME[n] for n in names]


def block(rows: Sequence[Row], records: Sequence[dict], data: Path, image_dir: str) -> list[str]:
    """The docs block: per row, a table of trajkit and SB3 per seed with wall and CPU time, and its curves."""
    lines: list[str] = []
    for row in rows:
        runs = results_report.runs_of(records, row, "trajkit") + results_report.runs_of(records, row, "sb3")
        lines += [f"**{row.title}** on {row.env}, {row.steps:,} env steps. Reproduce: "
                  f"`python benchmarks/bench_bullet.py --rows {row.name}`.", ""]
        if not runs:
            lines += ["Not run yet.", ""]
            continue
        seeds = sorted({r["seed"] for r in runs})
        lines += [*results_report.row_table(row, records, seeds), ""]
        if (data / f"{row.name}.png").exists():
            lines += [f"![{row.title} on {row.env}: deterministic evaluation return against env steps, trajkit "
                      f"and SB3]({image_dir}/{row.name}.png)", ""]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=None, help=f"rows (default: all): {', '.join(ROWS_BY_NAME)}")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--libraries", nargs="+", choices=["trajkit", "sb3"], default=["trajkit", "sb3"])
    ap.add_argument("--steps", type=int, default=None, help="override every row's budget (smoke tests)")
    ap.add_argument("--rerun", action="store_true", help="train again even where a result is recorded")
    ap.add_argument("--report-only", action="store_true", help="no training: the docs block from the file")
    ap.add_argument("--logroot", type=Path, default=ROOT / "runs" / "bullet")
    ap.add_argument("--data", type=Path, default=ROOT / "docs" / "results", help="bullet.csv and images")
    ap.add_argument("--page", type=Path, default=ROOT / "docs" / "bullet.md", help="the page whose block is rewritten")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = select(args.rows)
    results_file = args.data / "bullet.csv"
    if not args.report_only:
        for row in rows:
            for seed in args.seeds:
                for library in args.libraries:
                    results.train_recorded(results_file, row, seed, library, args.logroot, args.steps, args.rerun)
    records = results_report.read_records(results_file)
    report_rows = [dataclasses.replace(r, steps=args.steps) if args.steps else r for r in ROWS]
    drawn = {r.name for r in (report_rows if args.report_only else rows)}
    for row in report_rows:
        if row.name in drawn:
            try:
                results_report.write_image(row, records, ROOT, args.data / f"{row.name}.png")
            except KeyError as e:  # a run too short to have evaluated before its end
                print(f"{row.name}: no curves ({e})")
    image_dir = os.path.relpath(args.data, args.page.parent)
    page = args.page.read_text()
    lines = block(report_rows, records, args.data, image_dir)
    args.page.write_text(results_report.replace_block(page, lines, args.page))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
