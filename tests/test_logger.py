"""Logger: return window over completed episodes, console table, CSV, TensorBoard, progress bar."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

import trajkit as tk
from trajkit.logger import Logger, ProgressBar, read_csv, return_stats


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _epi(n: int, r: float = 1.0, *, cut: bool = False) -> dict:
    """An episode of ``n`` steps of reward ``r``: terminated, or cut by the sampler's max_steps."""
    return {
        "obs": np.zeros((n, 1)),
        "acs": np.zeros(n),
        "rews": np.full(n, r, np.float32),
        "terminated": not cut,
        "truncated": cut,
        "final_obs": np.zeros(1),
        "sampler_cut": cut,
    }


def _cells(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines]


# ---------------------------------------------------------------------------- return window
def test_return_stats_of_traj_and_episode_list_agree() -> None:
    epis = [_epi(t, r) for t, r in ((3, 1.0), (5, -2.0), (1, 4.0))]
    a, b = return_stats(epis), return_stats(tk.Traj.from_epis(epis))
    assert a == pytest.approx(b)
    assert (
        a["return_mean"] == pytest.approx((3 - 10 + 4) / 3)
        and a["return_min"] == -10
        and a["return_max"] == 4
    )
    assert a["epi_len_mean"] == 3 and a["num_epis"] == 3
    assert np.isnan(return_stats([])["return_mean"])


def test_iterations_without_a_completed_episode_show_the_last_completed_ones_not_nan() -> None:
    """256-step iterations of 500-step episodes: the console showed nan in most rows."""
    lines: list[str] = []
    lg = Logger(console=lines.append)
    # as the examples call it: only the completed episodes of each iteration
    r1 = lg.log_iteration(iteration=1, env_steps=256, episodes=2, epis=[_epi(100, 1.0), _epi(150, 1.0)])
    r2 = lg.log_iteration(iteration=2, env_steps=512, episodes=2, epis=[])
    r3 = lg.log_iteration(iteration=3, env_steps=768, episodes=3, epis=[_epi(500, 1.0)])
    assert r1["return_mean"] == 125 and r2["return_mean"] == 125 and r2["return_max"] == 150
    assert r3["return_mean"] == pytest.approx(250) and r3["epi_len_mean"] == pytest.approx(250)
    assert [r["window_epis"] for r in (r1, r2, r3)] == [2, 2, 3]
    assert not any("nan" in line for line in lines), lines
    header = next(c for c in _cells(lines) if "ret_mean" in c)
    rows = [c for c in _cells(lines) if c and c[0] in ("1", "2", "3")]
    col = header.index("ret_mean")
    assert [row[col] for row in rows] == ["125", "125", "250"]
    assert [row[header.index("epis")] for row in rows] == ["2", "2", "3"]


def test_pieces_cut_by_the_sampler_are_not_completed_episodes() -> None:
    """Whole sampler output may be passed: the cut piece (sampler_cut) is skipped, time-limit ends are kept."""
    time_limit = {**_epi(30, 2.0), "terminated": False, "truncated": True}
    epis = [_epi(10, 1.0), time_limit, _epi(7, 1.0, cut=True)]
    for given in (epis, tk.Traj.from_epis(epis)):
        lg = Logger(console=None)
        rec = lg.log_iteration(iteration=1, env_steps=47, episodes=2, epis=given)
        assert rec["return_mean"] == pytest.approx(35) and rec["return_min"] == 10
        assert rec["window_epis"] == 2
        rec = lg.log_iteration(iteration=2, env_steps=54, episodes=2, epis=[_epi(7, 1.0, cut=True)])
        assert rec["return_mean"] == pytest.approx(35) and rec["window_epis"] == 2


def test_real_sampler_iterations_that_complete_nothing_keep_the_window() -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = tk.RandomPol(env.observation_space, env.action_space)
    lg = Logger(console=None)
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        first = sampler.sample(pol, max_steps=100)
        done = [e for e in first if not e["sampler_cut"]]
        r1 = lg.log_iteration(iteration=1, env_steps=100, episodes=len(done), epis=done)
        short = sampler.sample(pol, max_steps=5)  # CartPole never ends before 8 steps: one cut piece
        done2 = [e for e in short if not e["sampler_cut"]]
        assert done2 == []
        r2 = lg.log_iteration(iteration=2, env_steps=105, episodes=len(done), epis=done2)
    assert len(done) >= 1 and np.isfinite(r1["return_mean"])
    assert r2["return_mean"] == r1["return_mean"] == pytest.approx(return_stats(done)["return_mean"])


def test_window_holds_the_last_n_completed_episodes_and_counts_them_all() -> None:
    from trajkit.episode_stats import EpisodeStats

    lg = Logger(console=None, episode_stats=EpisodeStats(window=3))
    for it, r in enumerate((1.0, 2.0, 3.0, 4.0, 5.0)):
        rec = lg.log_iteration(iteration=it, env_steps=it + 1, epis=[_epi(1, r)])
    assert rec["return_mean"] == 4 and rec["return_min"] == 3 and rec["window_epis"] == 3
    assert rec["episodes"] == 5
    with pytest.raises(ValueError, match="window"):
        EpisodeStats(window=0)


def test_return_window_survives_a_checkpoint_round_trip(tmp_path: Path) -> None:
    from trajkit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from trajkit.episode_stats import EpisodeStats

    a = Logger(console=None, episode_stats=EpisodeStats(window=4))
    for it in range(6):
        a.log_iteration(iteration=it, env_steps=it, epis=[_epi(it + 1, 0.5)])
    save_checkpoint(tmp_path / "c.pt", {"logger": a, "stats": a.episode_stats})
    b, stats = Logger(console=None, episode_stats=EpisodeStats(window=4)), EpisodeStats(window=4)
    load_checkpoint(tmp_path / "c.pt", {"logger": b, "stats": stats})
    assert b.state_dict() == a.state_dict() and stats.state_dict() == a.episode_stats.state_dict()
    ra = a.log_iteration(iteration=6, env_steps=6, epis=[_epi(9, 1.0)])
    rb = b.log_iteration(iteration=6, env_steps=6, epis=[_epi(9, 1.0)])
    keys = ("return_mean", "return_std", "return_min", "return_max", "epi_len_mean", "window_epis", "episodes")
    assert {k: ra[k] for k in keys} == {k: rb[k] for k in keys}
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "c.pt", {"logger": stats})
    with pytest.raises(ValueError, match="1 returns but 0 lengths"):
        b.load_state_dict({"episode_stats": {"window": 4, "total": 1, "returns": [1.0], "lengths": []}})


# ---------------------------------------------------------------------------- console table
def _wide_record() -> dict[str, float]:
    keys = [
        "iteration", "env_steps", "episodes", "return_mean", "return_std", "return_min", "return_max",
        "epi_len_mean", "window_epis", "sps", "time", "pol_loss", "vf_loss", "kl", "ent", "clip_frac",
        "explained_var", "grad_norm", "eval_return_mean", "eval_return_std",
    ]  # fmt: skip
    rec = {k: -123456.789 * (i + 1) for i, k in enumerate(keys)}
    rec.update(iteration=12345, env_steps=123456789, window_epis=100, episodes=99999)
    return rec


def test_console_header_says_what_the_returns_are() -> None:
    lines: list[str] = []
    Logger(console=lines.append).log_iteration(iteration=1, env_steps=8, episodes=1, epis=[_epi(8)])
    assert "mean over the last 100 completed episodes" in lines[0]


def test_default_console_rows_fit_100_columns() -> None:
    rec = _wide_record()
    assert len(rec) == 20
    lines: list[str] = []
    lg = Logger(console=lines.append)
    lg.log(rec)
    lg.log({**rec, "iteration": 99999999, "sps": float("nan"), "pol_loss": float("inf")})
    assert len(lines) >= 3 and max(len(line) for line in lines) <= 100, [len(line) for line in lines]
    header = _cells(lines)[1]
    assert header[:4] == ["iter", "steps", "ret_mean", "epis"]
    assert {"eval_ret", "pol_loss", "vf_loss", "sps", "time"} <= set(header)
    assert "kl" not in header and "clip_frac" not in header


def test_wide_mode_and_explicit_columns() -> None:
    rec = _wide_record()
    lines: list[str] = []
    Logger(console=lines.append, columns="all").log(rec)
    header, row = _cells(lines)[1:3]
    assert len(header) == len(row) == 20
    assert {"clip_frac", "expl_var", "grad_norm", "eval_std"} <= set(header)
    lines.clear()
    with pytest.warns(UserWarning, match=r"\['nope'\] are not in the record"):  # a typo is said, not hidden
        Logger(console=lines.append, columns=["env_steps", "kl", "nope"]).log(rec)
    assert _cells(lines)[1:3] == [["steps", "kl"], ["123456789", "-1.728e+06"]]
    with pytest.raises(ValueError, match="'wide'"):
        Logger(console=print, columns="wide")


def test_csv_keeps_every_column(tmp_path: Path) -> None:
    rec = _wide_record()
    with Logger(tmp_path, tensorboard=False, console=lambda s: None) as lg:
        lg.log(rec)
    assert list(_rows(tmp_path / "progress.csv")[0]) == list(rec)


# ---------------------------------------------------------------------------- files
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
    from trajkit.algos import TrainResult

    res = TrainResult(losses={"pol_loss": [3.0, 1.0]}, diagnostics={"kl": 0.01})
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
