"""Learning tier: PETS (examples/run_pets.py, the pets preset) learns Pendulum-v1 within 600 real steps.

Marked ``learning``: out of the default tier, run with ``pytest -m learning``. The full
bar (2000 steps, 3 seeds, SAC beside it) is ``benchmarks/bench_model_based.py``.
Calibrated on seed 0: one random episode and two planned ones, then 3 evaluation
episodes, far above a random policy (about -1200).
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import run_pets  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.learning
def test_pets_swings_pendulum_up_within_600_steps(tmp_path):
    args, cfg = run_pets.parse_args(["--steps", "600", "--seed", "0", "--eval-epis", "3", "--no-progress",
                                     "--logdir", str(tmp_path)])
    out = run_pets.run(args, cfg)
    assert out["steps"] == 600
    assert out["eval_mean"] >= -400.0, out
    assert (tmp_path / "progress.csv").exists() and (tmp_path / "checkpoint.pt").exists()
