"""Learning smoke tests through the example scripts (fast tier) and full runs (slow tier)."""

from __future__ import annotations

import math
import os
import sys

import pytest
import torch

from trajkit.logger import read_csv

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
sys.path.insert(0, EXAMPLES)

import run_ppo  # noqa: E402
import run_trpo  # noqa: E402
import run_vpg  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.learning
def test_ppo_cartpole_passes_200_within_small_budget(tmp_path):
    args, cfg = run_ppo.parse_args(["--steps", "25000", "--seed", "0", "--no-progress", "--logdir", str(tmp_path)])
    out = run_ppo.run(args, cfg)
    assert out["steps"] == math.ceil(25000 / cfg.steps_per_iter) * cfg.steps_per_iter  # whole iterations
    assert out["eval_mean"] >= 200, out
    log = read_csv(tmp_path / "progress.csv")
    assert len(log["iteration"]) == math.ceil(25000 / cfg.steps_per_iter) > 50
    assert log["env_steps"][-1] == out["steps"]


@pytest.mark.parametrize(
    ("module", "extra", "threshold"),
    [(run_trpo, [], 150.0), (run_vpg, [], 150.0), (run_ppo, ["--penalty", "kl"], 100.0)],
    ids=["trpo", "vpg", "ppo_kl"],
)
@pytest.mark.learning
def test_onpolicy_examples_learn_cartpole_quickly(module, extra, threshold, tmp_path):
    """20k steps lift the deterministic return well above a random policy's ~20 (full runs: benchmarks/)."""
    argv = [*extra, "--steps", "20000", "--seed", "0", "--no-progress", "--logdir", str(tmp_path)]
    args, cfg = module.parse_args(argv)
    out = module.run(args, cfg)
    assert out["steps"] == math.ceil(20000 / cfg.steps_per_iter) * cfg.steps_per_iter
    assert out["eval_mean"] >= threshold, out
    log = read_csv(tmp_path / "progress.csv")
    assert len(log["iteration"]) == math.ceil(20000 / cfg.steps_per_iter) > 10
    assert log["env_steps"][-1] == out["steps"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_cartpole_full_bar(seed, tmp_path):
    args, cfg = run_ppo.parse_args(["--seed", str(seed), "--no-progress", "--logdir", str(tmp_path)])
    assert run_ppo.run(args, cfg)["eval_mean"] >= 475
