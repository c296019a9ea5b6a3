"""The trajkit command (train, eval, plot) on logs of real tiny training runs.

The logger's and the plots' own tests are in test_logger.py and test_plot.py.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trajkit import cli

TINY_HP = ["--hp", "steps_per_iter=256", "--hp", "hidden=16", "--hp", "epoch=2"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_help_lists_options_for_every_command(capsys: pytest.CaptureFixture) -> None:
    out = subprocess.run([sys.executable, "-m", "trajkit.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and all(c in out.stdout for c in ("train", "eval", "plot"))
    for argv, expected in (
        (["train", "--help"], ["--checkpoint-every", "--resume", "--num-parallel", "ppo_kl"]),
        (["eval", "--help"], ["--episodes", "--env"]),
        (["plot", "--help"], ["--band", "-o"]),
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert all(e in text for e in expected), argv


def test_train_eval_plot_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    runs = [tmp_path / "runs" / f"ppo_s{s}" for s in (0, 1)]
    for seed, d in enumerate(runs):
        argv = [
            "train",
            "ppo",
            "--env",
            "CartPole-v1",
            "--steps",
            "768",
            "--seed",
            str(seed),
            "--logdir",
            str(d),
            "--checkpoint-every",
            "2",
            "--no-progress",
            "--quiet",
            *TINY_HP,
        ]
        assert cli.main(argv) == 0
        assert {"config.json", "progress.csv", "checkpoint.pt"} <= {p.name for p in d.iterdir()}
        assert len(_rows(d / "progress.csv")) == 3
    capsys.readouterr()
    assert cli.main(["eval", str(runs[0] / "checkpoint.pt"), "--episodes", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["returns"]) == 3 and res["mean"] == pytest.approx(np.mean(res["returns"]))
    assert res["mean"] >= 8  # CartPole never ends before 8 steps
    png = tmp_path / "curves.png"
    assert cli.main(["plot", *map(str, runs), "-o", str(png)]) == 0
    assert "ppo CartPole-v1: 2 run(s)" in capsys.readouterr().out
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[0] >= 300 and img.shape[1] >= 500 and img[..., :3].std() > 0.05


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = [
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--logdir",
        str(tmp_path / "r"),
        "--no-progress",
        "--quiet",
    ]
    assert cli.main([*base, "--hp", "nope=1"]) == 2
    assert "unknown setting 'nope'" in capsys.readouterr().err
    assert cli.main([*base, "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    assert cli.main(["eval", str(tmp_path / "bad.pt")]) == 2
    assert "unreadable" in capsys.readouterr().err
    torch.set_num_threads(1)
