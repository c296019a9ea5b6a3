"""``trajkit tune``: an Optuna study in the logdir that resumes after a kill and writes a config that trains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajkit import cli
from trajkit.run import ConfigError
from trajkit.run.presets import load_config_file
from trajkit.run.tune import BEST_FILE, STUDY_FILE, tune

optuna = pytest.importorskip("optuna")

#: tiny PPO trials: 256 steps, evaluated (and prunable) every 128
TINY = {"steps_per_iter": 128, "hidden": [16], "epoch": 1}


def _trials(logdir: Path) -> list[object]:
    study = optuna.load_study(study_name="ppo_CartPole-v1", storage=f"sqlite:///{logdir / STUDY_FILE}")
    return study.get_trials(deepcopy=False)


def test_tune_writes_a_best_config_that_trains(tmp_path: Path) -> None:
    out = tune("ppo", "CartPole-v1", trials=2, steps=256, logdir=tmp_path, eval_every=128, eval_episodes=1,
               overrides=TINY)
    assert out.num_complete + out.num_pruned == 2 and out.num_complete >= 1
    assert (tmp_path / STUDY_FILE).exists() and out.best_config == tmp_path / BEST_FILE
    cfg = load_config_file(out.best_config)
    assert cfg.algo == "ppo" and cfg.hidden == [16]  # type: ignore[attr-defined]
    assert all(getattr(cfg, k, None) == v or getattr(cfg.train, k, None) == v for k, v in out.best_params.items())
    argv = ["train", "--config", str(out.best_config), "--steps", "128", "--logdir", str(tmp_path / "best"),
            "--eval-episodes", "1", "--no-progress", "--quiet"]
    assert cli.main(argv) == 0
    # running the same command again finds the study complete and trains nothing more
    again = tune("ppo", "CartPole-v1", trials=2, steps=256, logdir=tmp_path, eval_every=128, eval_episodes=1,
                 overrides=TINY)
    assert again.best_trial == out.best_trial and len(_trials(tmp_path)) == 2


@pytest.mark.slow  # two studies over one storage: seconds (slow tier)
def test_a_trial_left_running_by_a_kill_is_failed_and_the_study_completes(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="ppo_CartPole-v1", storage=f"sqlite:///{tmp_path / STUDY_FILE}",
                                direction="maximize")
    study.ask()  # what a killed search leaves behind: a trial that will never finish
    out = tune("ppo", "CartPole-v1", trials=2, steps=256, logdir=tmp_path, eval_every=256, eval_episodes=2,
               overrides=TINY)
    states = [t.state for t in _trials(tmp_path)]  # type: ignore[attr-defined]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert out.num_complete + out.num_pruned == 2 and len(states) == 3


@pytest.mark.slow
def test_tune_survives_a_real_kill(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "trajkit", "tune", "ppo", "--env", "CartPole-v1", "--trials", "4", "--steps",
            "1024", "--eval-every", "512", "--eval-episodes", "2", "--logdir", str(tmp_path),
            "--hp", "steps_per_iter=128", "--hp", "hidden=16", "--hp", "epoch=2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (tmp_path / "trial_1").exists() and time.time() < deadline:  # trial 0 done, trial 1 running
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / BEST_FILE).exists()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    finished = [t for t in _trials(tmp_path) if t.state.is_finished()]  # type: ignore[attr-defined]
    assert sum(t.state != optuna.trial.TrialState.FAIL for t in finished) == 4  # type: ignore[attr-defined]
    assert load_config_file(tmp_path / BEST_FILE).algo == "ppo"


@pytest.mark.slow  # a second study over the same storage: seconds (slow tier)
def test_a_resumed_search_makes_new_suggestions(tmp_path: Path) -> None:
    tune("ppo", "CartPole-v1", trials=1, steps=128, logdir=tmp_path, eval_every=128, eval_episodes=1, overrides=TINY)
    tune("ppo", "CartPole-v1", trials=2, steps=128, logdir=tmp_path, eval_every=128, eval_episodes=1, overrides=TINY)
    first, second = (t.params for t in _trials(tmp_path))  # type: ignore[attr-defined]
    assert first != second


@pytest.mark.slow  # a second study over the same storage: seconds (slow tier)
def test_a_study_resumes_only_with_the_same_settings(tmp_path: Path) -> None:
    tune("ppo", "CartPole-v1", trials=1, steps=128, logdir=tmp_path, eval_every=128, eval_episodes=1, overrides=TINY)
    with pytest.raises(ConfigError, match="other settings"):
        tune("ppo", "CartPole-v1", trials=2, steps=256, logdir=tmp_path, eval_every=128, eval_episodes=1,
             overrides=TINY)
