"""The mixed-env and sim-and-real examples run end to end (tiny budgets; Humanoid in the slow tier)."""

from __future__ import annotations

import os
import sys

import pytest

from trajkit.logger import read_csv

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
sys.path.insert(0, EXAMPLES)

import run_mixed_env  # noqa: E402
import run_sim_and_real  # noqa: E402


def test_mixed_env_small_trains_on_both_envs(tmp_path: object) -> None:
    out = run_mixed_env.run(run_mixed_env.parse_args(
        ["--small", "--steps", "1000", "--max-steps-per-iter", "500", "--epoch", "2", "--no-progress",
         "--logdir", str(tmp_path)]))
    assert out["steps"] == 1000
    log = read_csv(os.path.join(str(tmp_path), "progress.csv"))
    assert len(log["iteration"]) == 2 and (log["epis_a"] >= 1).all() and (log["epis_b"] >= 1).all()  # both envs


def test_mixed_env_refuses_envs_with_different_spaces() -> None:
    args = run_mixed_env.parse_args(["--env-a", "Pendulum-v1", "--env-b", "MountainCarContinuous-v0"])
    with pytest.raises(SystemExit, match="differ in spaces"):
        run_mixed_env.make_envs(args)


@pytest.mark.slow
def test_mixed_env_runs_on_both_humanoids(tmp_path: object) -> None:
    pytest.importorskip("pybullet_envs_gymnasium")
    out = run_mixed_env.run(run_mixed_env.parse_args(
        ["--steps", "2048", "--max-steps-per-iter", "1024", "--epoch", "1", "--num-parallel", "2",
         "--no-progress", "--logdir", str(tmp_path)]))
    assert out["steps"] == 2048


def test_sim_and_real_runs_with_a_server_process(tmp_path: object) -> None:
    out = run_sim_and_real.run(run_sim_and_real.parse_args(
        ["--steps", "800", "--max-steps-per-iter", "400", "--epoch", "1", "--no-progress", "--logdir", str(tmp_path)]))
    assert out["steps"] == 800
    log = read_csv(os.path.join(str(tmp_path), "progress.csv"))
    assert len(log["iteration"]) == 2 and (log["steps_real"] == 100).all()  # a quarter of each iteration is remote
