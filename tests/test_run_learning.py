"""The run layer learns: its presets through its loops (learning tier; full budgets in benchmarks/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajkit.run import resolve
from trajkit.run.runner import train


@pytest.mark.learning
@pytest.mark.parametrize(
    ("algo", "env", "steps", "threshold"),
    [("ppo", "CartPole-v1", 25_000, 200.0), ("sac", "Pendulum-v1", 4_000, -900.0)],
    ids=["ppo", "sac"],
)
def test_preset_learns_through_the_run_layer(algo: str, env: str, steps: int, threshold: float, tmp_path: Path) -> None:
    cfg = resolve(algo, env, steps=steps, seed=0)
    out = train(cfg, tmp_path, progress=False, console=False)
    assert out.env_steps >= steps
    assert out.eval_mean >= threshold, out.eval_returns
