"""Slow tier: every documented recipe (benchmarks/results.py's rows) trained for seed 0 to its documented target.

The same config the results pages document (the preset plus the row's settings, the
row's budget), trained through the run layer as ``trajkit train`` does; minutes each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import results  # noqa: E402

from trajkit.run.presets import resolve  # noqa: E402
from trajkit.run.runner import train  # noqa: E402


def train_on_one_thread(cfg, logdir):  # noqa: ANN001, ANN201
    """``trajkit train``'s run of ``cfg`` on one torch thread (restored afterwards); its outcome."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, logdir, progress=False, console=False)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("row", results.ROWS, ids=[r.name for r in results.ROWS])
def test_recipe_reaches_its_documented_target_on_seed_0(row, tmp_path):
    cfg = resolve(row.algo, row.env, overrides=row.hp, seed=0)
    assert cfg.steps == row.steps, "the documented budget is the preset's"
    outcome = train_on_one_thread(cfg, tmp_path)
    assert outcome.env_steps >= row.steps
    assert outcome.eval_mean >= row.target, (row.name, outcome.eval_returns)


@pytest.mark.slow
def test_recurrent_ppo_preset_learns_pendulum_without_velocities(tmp_path):
    """The ppo preset's PendulumNoVel-v1 block (LSTM, 100k steps) reaches >= -300 (docs/recurrent.md)."""
    cfg = resolve("ppo", "PendulumNoVel-v1", seed=0)
    assert cfg.rnn == "lstm" and cfg.steps == 100_000
    outcome = train_on_one_thread(cfg, tmp_path)
    assert outcome.eval_mean >= -300.0, outcome.eval_returns
