"""Logger, learning-curve plots and the trajkit command, on logs of real tiny training runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import cli
from trajkit.logger import Logger, ProgressBar, read_csv, return_stats
from trajkit.plot import aggregate, group_runs

TINY_HP = ["--hp", "steps_per_iter=256", "--hp", "hidden=16", "--hp", "epoch=2"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_return_stats_of_traj_and_episode_list_agree() -> None:
    epis = [
        {
            "obs": np.zeros((t, 1)),
            "acs": np.zeros(t),
            "rews": np.full(t, r, np.float32),
            "terminated": True,
            "truncated": False,
            "final_obs": np.zeros(1),
        }
        for t, r in ((3, 1.0), (5, -2.0), (1, 4.0))
    ]
    a, b = return_stats(epis), return_stats(tk.Traj.from_epis(epis))
    assert a == pytest.approx(b)
    assert (
        a["return_mean"] == pytest.approx((3 - 10 + 4) / 3)
        and a["return_min"] == -10
        and a["return_max"] == 4
    )
    assert a["epi_len_mean"] == 3 and a["num_epis"] == 3
    assert np.isnan(return_stats([])["return_mean"])


def test_csv_header_grows_and_resume_truncates(tmp_path: Path) -> None:
    lines: list[str] = []
    with Logger(tmp_path, tensorboard=False, console=lines.append) as lg:
        lg.log({"iteration": 1, "env_steps": 10, "a": 1.5})
        lg.log({"iteration": 2, "env_steps": 20, "a": 2.5, "b": 7})
        lg.log({"iteration": 3, "env_steps": 30, "b": 8})
    rows = _rows(tmp_path / "progress.csv")
    assert list(rows[0]) == ["iteration", "env_steps", "a", "b"]
    assert [r["a"] for r in rows] == ["1.5", "2.5", ""] and [r["b"] for r in rows] == ["", "7", "8"]
    assert any("iter" in line for line in lines) and len(lines) >= 4
    with Logger(tmp_path, tensorboard=False, console=None, resume_after=2) as lg:
        lg.log({"iteration": 3, "env_steps": 30, "b": 9})
    assert [r["b"] for r in _rows(tmp_path / "progress.csv")] == ["", "7", "9"]
    cols = read_csv(tmp_path / "progress.csv")
    assert np.isnan(cols["a"][2]) and cols["b"].tolist() == [pytest.approx(np.nan, nan_ok=True), 7, 9]


def test_log_iteration_includes_train_result_summary(tmp_path: Path) -> None:
    res = tk.algos.TrainResult(losses={"pol_loss": [3.0, 1.0]}, diagnostics={"kl": 0.01})
    epis = [{"rews": np.ones(4)}]
    with Logger(tmp_path, tensorboard=False, console=None) as lg:
        rec = lg.log_iteration(iteration=1, env_steps=4, episodes=1, epis=epis, result=res)
    assert rec["pol_loss"] == 1.0 and rec["kl"] == 0.01 and rec["return_mean"] == 4.0 and "sps" in rec


def test_tensorboard_events_are_written(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    with Logger(tmp_path, tensorboard=True, console=None) as lg:
        lg.log({"iteration": 1, "env_steps": 10, "return_mean": 1.0, "pol_loss": 0.5})
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert {"rollout/return_mean", "train/pol_loss"} <= set(acc.Tags()["scalars"])
    assert acc.Scalars("rollout/return_mean")[0].step == 10


def test_progress_bar_degrades_without_tqdm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with ProgressBar(100) as bar:
        assert not bar.active
        bar.update(10)
        bar.write("row")
    assert capsys.readouterr().out == "row\n"


def test_grouping_by_config_and_by_name(tmp_path: Path) -> None:
    for name, seed, lr in (("x1", 0, 1), ("x2", 1, 1), ("x3", 0, 2)):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(
            json.dumps({"algo": "ppo", "env": "E", "seed": seed, "hparams": {"lr": lr}})
        )
    for name in ("sac_s0", "sac_s1", "sac-seed2", "td3_s0"):
        (tmp_path / name).mkdir()
    groups = group_runs([tmp_path / n for n in ("x1", "x2", "x3", "sac_s0", "sac_s1", "sac-seed2", "td3_s0")])
    assert [len(v) for v in groups.values()] == [2, 1, 3, 1]
    assert list(groups) == ["ppo E", "ppo E (2)", "sac", "td3"]


def test_aggregate_interpolates_onto_common_steps() -> None:
    a = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = (np.array([0.0, 5.0, 20.0]), np.array([2.0, 2.0, 2.0]))
    c = aggregate([a, b], "g", band="minmax", points=3)
    assert c.x.tolist() == [0, 5, 10] and c.mean.tolist() == [1, 3.5, 6]
    assert c.low.tolist() == [0, 2, 2] and c.high.tolist() == [2, 5, 10]


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
    assert "unknown hyper-parameter 'nope'" in capsys.readouterr().err
    assert cli.main([*base, "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    assert cli.main(["eval", str(tmp_path / "bad.pt")]) == 2
    assert "unreadable" in capsys.readouterr().err
    torch.set_num_threads(1)
