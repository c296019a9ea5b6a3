"""On-policy runs with ``num_envs`` vectorized envs and ``continuing`` episodes (the run layer's
``EpiSampler(..., num_envs_per_worker=, continuing=)``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from trajkit.run import ConfigError, resolve
from trajkit.run.runner import train
from trajkit.run.session import RunOutcome

#: Pendulum's episodes always last 200 steps; 100 steps per iteration over 2 envs give each
#: env 50 steps, so an episode spans 4 iterations
TINY = {"steps_per_iter": 100, "num_envs": 2, "hidden": [8], "epoch": 1, "batch_size": 50, "eval_episodes": 1}


def _run(logdir: Path, steps: int = 800, resume: bool = False, **hp: object) -> tuple[RunOutcome, list[dict[str, str]]]:
    cfg = resolve("ppo", "Pendulum-v1", {**TINY, **hp}, steps=steps, seed=0, checkpoint_every=1)
    out = train(cfg, logdir, resume=resume, progress=False, console=False)
    with open(logdir / "progress.csv", newline="") as f:
        return out, list(csv.DictReader(f))


def test_continuing_episodes_span_iterations_and_are_logged_whole(tmp_path: Path) -> None:
    out, rows = _run(tmp_path / "c", continuing=True)
    assert out.env_steps == 800 and len(rows) == 8
    # each of the 2 envs ends an episode after iterations 4 and 8: 200 steps, joined from 4 pieces
    assert [int(r["episodes"]) for r in rows] == [0, 0, 0, 2, 2, 2, 2, 4]
    assert float(rows[3]["epi_len_mean"]) == 200.0 and float(rows[7]["epi_len_mean"]) == 200.0
    assert float(rows[3]["return_mean"]) < 0  # Pendulum's rewards are negative: a real return, not empty


def test_without_continuing_every_iteration_starts_fresh_episodes(tmp_path: Path) -> None:
    out, rows = _run(tmp_path / "f")
    assert out.env_steps == 800
    assert all(int(r["episodes"]) == 0 for r in rows)  # 50-step pieces of 200-step episodes never end


def test_a_resumed_continuing_run_starts_fresh_episodes(tmp_path: Path) -> None:
    """A checkpoint holds no env state, so the episodes in progress at a stop are dropped (documented)."""
    _run(tmp_path / "r", steps=300, continuing=True)  # stopped after 3 iterations, mid-episode
    out, rows = _run(tmp_path / "r", resume=True, continuing=True)
    assert out.env_steps == 800 and len(rows) == 8
    # fresh 200-step episodes from iteration 4 end after iteration 7 (uninterrupted: after 4 and 8)
    assert [int(r["episodes"]) for r in rows] == [0, 0, 0, 0, 0, 0, 2, 2]


@pytest.mark.slow  # worker processes (~5 s)
def test_continuing_with_worker_processes(tmp_path: Path) -> None:
    out, rows = _run(tmp_path / "w", continuing=True, num_parallel=2, steps_per_iter=200)
    assert out.env_steps == 800 and [int(r["episodes"]) for r in rows] == [0, 0, 0, 4]


def test_too_few_steps_for_the_envs_is_refused() -> None:
    with pytest.raises(ConfigError, match="less than one step for each of the 8 envs"):
        resolve("ppo", "CartPole-v1", {"steps_per_iter": 4, "num_envs": 8})


def test_a_recurrent_continuing_run_carries_the_value_function_state(tmp_path: Path) -> None:
    out, rows = _run(tmp_path / "rnn", continuing=True, rnn="gru", steps=400)
    assert out.env_steps == 400 and [int(r["episodes"]) for r in rows] == [0, 0, 0, 2]
