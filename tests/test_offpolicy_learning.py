"""Learning-tier tests for the off-policy examples (full bars: benchmarks/results.py).

Marked ``learning``: out of the default tier, run with ``pytest -m learning``.

Budgets and thresholds were calibrated on seed 0: each run ends far above a random
policy (about -1200 on Pendulum-v1, about 20 on CartPole-v1) and well below the full bar.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import run_ddpg  # noqa: E402
import run_dqn  # noqa: E402
import run_qtopt  # noqa: E402
import run_td3  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.learning  # each trains to a score threshold (26 to 60 s)
@pytest.mark.parametrize(
    ("module", "steps", "threshold"),
    [(run_td3, 6000, -600.0), (run_ddpg, 4000, -600.0), (run_qtopt, 8000, -600.0), (run_dqn, 20000, 80.0)],
    ids=["td3", "ddpg", "qtopt", "dqn"],
)
@pytest.mark.learning
def test_offpolicy_example_learns_clearly_within_a_small_budget(module, steps, threshold, tmp_path):
    args, cfg = module.parse_args(["--steps", str(steps), "--seed", "0", "--no-progress", "--logdir", str(tmp_path)])
    out = module.run(args, cfg)
    assert out["steps"] >= steps
    assert out["eval_mean"] >= threshold, out
    assert (tmp_path / "progress.csv").exists()
