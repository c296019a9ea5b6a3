"""The ``trajkit`` command as a new user meets it: config files, refusals before any write, evaluation, video."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trajkit import cli
from trajkit.checkpoint import save_checkpoint

#: a PPO run of two 128-step iterations on CartPole
TINY = ["--steps", "256", "--hp", "steps_per_iter=128", "--hp", "hidden=16", "--hp", "epoch=2",
        "--eval-episodes", "2", "--no-progress", "--quiet"]


def _train(*argv: str) -> int:
    return cli.main(["train", *argv])


def _rows(logdir: Path) -> list[dict[str, str]]:
    with open(logdir / "progress.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("sps", "time")} for r in csv.DictReader(f)]


def test_config_file_reproduces_the_run_exactly(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    assert cli.main(["config", "ppo", "--env", "CartPole-v1", "-o", str(cfg), *TINY[:8]]) == 0
    assert _train("--config", str(cfg), "--logdir", str(tmp_path / "r"), *TINY[8:]) == 0
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(tmp_path / "r2"), *TINY) == 0
    assert _rows(tmp_path / "r") == _rows(tmp_path / "r2") and len(_rows(tmp_path / "r")) == 2
    # a run's own config.json repeats it too
    assert _train("--config", str(tmp_path / "r" / "config.json"), "--logdir", str(tmp_path / "r3"), *TINY[8:]) == 0
    assert _rows(tmp_path / "r3") == _rows(tmp_path / "r")


def test_train_ends_with_a_deterministic_evaluation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--eval-every", "128", *TINY) == 0
    out = capsys.readouterr().out
    assert "deterministic evaluation over 2 episodes" in out
    ev = json.loads((logdir / "eval.json").read_text())
    assert len(ev["returns"]) == 2 and ev["seed"] == 10_000  # evaluation seeds kept apart from training seed 0
    rows = _rows(logdir)
    assert rows[0]["eval_return_mean"] != ""  # the intermediate evaluation after 128 steps


def test_a_wrong_env_id_is_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPol-v1", "--logdir", str(logdir), *TINY) == 2
    err = capsys.readouterr().err.strip()
    assert "Did you mean" in err and "CartPole" in err and len(err.splitlines()) == 1
    assert not logdir.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "steps must be >= 1"),
        (["--steps", "-3"], "steps must be >= 1"),
        (["--checkpoint-every", "-1"], "checkpoint_every must be >= 0"),
        (["--hp", "steps_per_iter=0"], "steps_per_iter must be >= 1"),
        (["--hp", "batch_size=16.5"], "expected an integer"),
        (["--hp", "gamma=1.5"], "gamma must be <= 1.0"),
        (["--hp", "lam=nan"], "lam must be finite"),
        (["--hp", "epoch=none"], "none is not allowed"),
        (["--hp", "gama=0.9"], "did you mean 'gamma'"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "nonsense"], "device"),
    ],
)
def test_settings_that_make_no_sense_are_refused_at_start(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY, *argv) == 2
    assert message in capsys.readouterr().err
    assert not logdir.exists()


def test_another_runs_logdir_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    logdir.mkdir()
    (logdir / "progress.csv").write_text("iteration,env_steps\n1,128\n")
    (logdir / "config.json").write_text('{"algo": "sac"}\n')
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "progress.csv" in err and "--overwrite" in err
    assert (logdir / "progress.csv").read_text() == "iteration,env_steps\n1,128\n"
    # killed before its first checkpoint: cannot resume, says how to start again
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--resume", *TINY) == 2
    assert "--overwrite" in capsys.readouterr().err
    (logdir / "notes.txt").write_text("mine")
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--overwrite", *TINY) == 0
    assert len(_rows(logdir)) == 2 and (logdir / "notes.txt").read_text() == "mine"


def test_resume_with_no_steps_left_is_refused_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 0
    before = {p.name: p.read_bytes() for p in logdir.iterdir() if p.is_file()}
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--resume", *TINY[:1], "128",
                  *TINY[2:]) == 2
    assert "already done 256 env steps" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in logdir.iterdir() if p.is_file()} == before


def test_eval_takes_a_run_directory_and_refuses_a_foreign_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 0
    capsys.readouterr()
    assert cli.main(["eval", str(logdir), "--episodes", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["returns"]) == 2
    foreign = tmp_path / "other.pt"
    save_checkpoint(foreign, {"pol": torch.nn.Linear(2, 2)})
    assert cli.main(["eval", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "holds no run config" in err and "Traceback" not in err
    assert cli.main(["eval", str(tmp_path)]) == 2
    assert "without a checkpoint.pt" in capsys.readouterr().err


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_eval_records_video(tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 0
    assert cli.main(["eval", str(logdir), "--episodes", "1", "--video", str(tmp_path / "v")]) == 0
    assert list((tmp_path / "v").glob("*.mp4"))


def test_version_module_entry_point_and_fast_help() -> None:
    out = subprocess.run([sys.executable, "-m", "trajkit", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("trajkit ")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "trajkit", "train", "--help"], capture_output=True, text=True,
                         check=True)
    assert time.perf_counter() - start < 1.5  # no torch import (about 0.3 s on the 2-core CI machine)
    assert "tuned presets" in out.stdout and "CartPole-v1" in out.stdout


def test_one_evaluator_with_one_default_seed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import trajkit as tk
    from trajkit.run.evaluate import load_policy

    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 0
    capsys.readouterr()
    assert cli.main(["eval", str(logdir), "--episodes", "3", "--json"]) == 0
    via_command = json.loads(capsys.readouterr().out)["returns"]
    pol, _ = load_policy(logdir)
    assert list(tk.evaluate("CartPole-v1", pol, num_epis=3)) == via_command  # same defaults, same episodes


def test_the_final_evaluation_is_of_the_final_policy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    argv = ["ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--eval-every", "128", "--seed", "3", *TINY]
    assert _train(*argv) == 0
    ev = json.loads((logdir / "eval.json").read_text())
    assert ev["env_steps"] == 256 and ev["seed"] == 10_003
    capsys.readouterr()
    assert cli.main(["eval", str(logdir), "--episodes", "2", "--json"]) == 0  # the run's own evaluation seed
    assert json.loads(capsys.readouterr().out)["returns"] == ev["returns"]


def test_resume_may_change_what_a_run_reports_but_not_what_it_learns(tmp_path: Path) -> None:
    logdir = tmp_path / "r"
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), *TINY) == 0
    more = ["--steps", "384", *TINY[2:]]
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(logdir), "--resume", "--eval-every", "128",
                  "--timeout", "60", "--checkpoint-every", "2", *more) == 0
    assert len(_rows(logdir)) == 3


def test_config_refuses_a_wrong_env_and_says_when_no_preset_is_tuned(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["config", "ppo", "--env", "CartPol-v1"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert cli.main(["config", "ppo", "--env", "Acrobot-v1"]) == 0
    captured = capsys.readouterr()
    assert "no tuned ppo preset for Acrobot-v1" in captured.err and "steps_per_iter: 2048" in captured.out


@pytest.mark.parametrize("argv", [["eval", "somewhere", "--episodes", "0"], ["plot", "somewhere", "--smooth", "0"],
                                  ["tune", "ppo", "--env", "CartPole-v1", "--trials", "0", "--steps", "10"]])
def test_counts_below_one_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_evaluating_during_training_does_not_change_what_is_learned(tmp_path: Path) -> None:
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(tmp_path / "a"), *TINY) == 0
    assert _train("ppo", "--env", "CartPole-v1", "--logdir", str(tmp_path / "b"), "--eval-every", "128", *TINY) == 0
    plain = [{k: v for k, v in r.items() if not k.startswith("eval_")} for r in _rows(tmp_path / "b")]
    assert plain == _rows(tmp_path / "a")
