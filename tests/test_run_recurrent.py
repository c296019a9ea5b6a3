"""The run layer with recurrent models: ``--hp rnn=lstm|gru`` builds them; runs resume exactly and evaluate."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from test_resume import _assert_identical, _rows, _state

from trajkit.logger import read_csv
from trajkit.run import ConfigError, resolve
from trajkit.run.evaluate import load_policy
from trajkit.run.runner import train
from trajkit.run.session import RunOutcome

#: the preset continues episodes across iterations, and a resumed continuing run starts fresh
#: episodes (a checkpoint holds no env state: docs/samplers.md), so the exact-resume test
#: samples whole episodes; test_run_continuing.py covers continuing runs that are resumed
TINY = {"steps_per_iter": 200, "hidden": [16, 8], "epoch": 2, "batch_size": 64, "eval_episodes": 2,
        "continuing": False}


def _run(logdir: Path, steps: int, resume: bool = False, **hp: object) -> RunOutcome:
    cfg = resolve("ppo", "CartPoleNoVel-v1", {**TINY, **hp}, steps=steps, seed=3, checkpoint_every=1)
    return train(cfg, logdir, resume=resume, progress=False, console=False)


# slow tier: three runs with a checkpoint per iteration (~2 s); the default tier resumes
# recurrent PPO at the checkpoint level (test_algos_recurrent.py)
@pytest.mark.parametrize("hp", [pytest.param({"rnn": "lstm"}, id="lstm", marks=pytest.mark.slow),
                                pytest.param({"rnn": "gru", "seq_len": 8, "burn_in": 2}, id="gru",
                                             marks=pytest.mark.slow)])
def test_a_recurrent_ppo_run_is_stopped_and_resumed_bit_identically(tmp_path: Path, hp: dict) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    _run(full, 600, **hp)
    _run(split, 200, **hp)
    torch.manual_seed(1234)
    out = _run(split, 600, resume=True, **hp)
    assert out.iteration == 3 and out.env_steps == 600
    _assert_identical(_state(full / "checkpoint.pt"), _state(split / "checkpoint.pt"))
    assert _rows(full) == _rows(split)
    pol, _ = load_policy(full)  # what trajkit eval rebuilds
    assert pol.recurrent and pol.net.core.hidden_size == 16
    assert len(out.eval_returns) == 2 and out.eval_mean > 0


def test_sequence_settings_without_a_recurrent_model_are_refused() -> None:
    with pytest.raises(ConfigError, match="seq_len and burn_in apply to recurrent models only"):
        resolve("ppo", "CartPole-v1", {**TINY, "seq_len": 8}, steps=400, seed=0)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import run_ppo_rnn  # noqa: E402


@pytest.mark.parametrize("extra", [[], ["--hp", "rnn=gru", "--hp", "seq_len=8", "--hp", "burn_in=2"]],
                         ids=["lstm_episodes", "gru_chunks"])
def test_the_recurrent_ppo_example_runs_end_to_end(tmp_path: Path, extra: list[str]) -> None:
    argv = ["--steps", "400", "--hp", "steps_per_iter=200", "--hp", "hidden=16,8", "--eval-epis", "2",
            "--no-progress", "--logdir", str(tmp_path), *extra]
    out = run_ppo_rnn.run(*run_ppo_rnn.parse_args(argv))
    assert out["steps"] == 400 and out["eval_mean"] > 0
    assert len(read_csv(str(tmp_path / "progress.csv"))["iteration"]) == 2
    pol, _ = load_policy(tmp_path)
    assert pol.recurrent


def test_the_recurrent_example_refuses_an_mlp_preset(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no recurrent model: pass --hp rnn=lstm"):
        run_ppo_rnn.run(*run_ppo_rnn.parse_args(["--env", "CartPole-v1", "--logdir", str(tmp_path)]))
