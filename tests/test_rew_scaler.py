"""``trajkit.RewScaler`` and ``ef.scale_rews`` against slow references; ``rew_norm`` in the run layer."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from epi_factories import make_epis

import trajkit as tk
from trajkit import ef
from trajkit.run import resolve
from trajkit.run.runner import train


def _slow_returns(traj: tk.Traj, gamma: float) -> list[float]:
    """Each step's discounted return to the end of its episode, by a Python loop (no bootstrap)."""
    rews, b = traj["rews"].tolist(), traj.bounds.tolist()
    out: list[float] = []
    for e in range(len(b) - 1):
        seg = rews[b[e]:b[e + 1]]
        out += [sum(gamma**k * r for k, r in enumerate(seg[t:])) for t in range(len(seg))]
    return out


def test_the_scale_is_the_std_of_every_return_seen_so_far() -> None:
    gamma = 0.9
    trajs = [tk.Traj.from_epis(make_epis([5, 3, 7], [True, False, True], seed=s)) for s in range(3)]
    scaler = tk.RewScaler(gamma)
    assert scaler.std == pytest.approx(1.0)  # before any update: rewards unchanged
    seen: list[float] = []
    for traj in trajs:
        scaler.update(traj)
        seen += _slow_returns(traj, gamma)
        assert scaler.std == pytest.approx(math.sqrt(np.var(seen) + 1e-8), rel=1e-9)
    rews = trajs[0]["rews"]
    torch.testing.assert_close(scaler(rews), (rews / scaler.std).clamp(-10, 10))


def test_scaled_rewards_are_clipped_and_an_empty_traj_changes_nothing() -> None:
    scaler = tk.RewScaler(0.99, clip=0.5)
    traj = tk.Traj.from_epis(make_epis([6], [True]))
    scaler.update(traj)
    before = scaler.state_dict()
    scaler.update(traj.select_epis([]))
    assert all(torch.equal(before[k], v) for k, v in scaler.state_dict().items())
    out = scaler(torch.tensor([-100.0, 0.0, 100.0]))
    assert out.tolist() == [-0.5, 0.0, 0.5]


@pytest.mark.parametrize(("kwargs", "match"), [({"gamma": 1.5}, "gamma"), ({"gamma": 0.9, "clip": 0.0}, "clip"),
                                               ({"gamma": 0.9, "eps": -1.0}, "eps")])
def test_bad_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tk.RewScaler(**kwargs)


def test_scale_rews_is_pure_keeps_the_raw_rewards_and_refuses_a_second_scaling() -> None:
    traj = tk.Traj.from_epis(make_epis([4, 6], [False, True]))
    raw = traj["rews"].clone()
    out = ef.scale_rews(traj, lambda r: r * 0.5)
    torch.testing.assert_close(out["rews"], raw * 0.5)
    torch.testing.assert_close(out["raw_rews"], raw)
    assert torch.equal(traj["rews"], raw) and "raw_rews" not in traj
    with pytest.raises(ValueError, match="already scaled"):
        ef.scale_rews(out, lambda r: r)
    with pytest.raises(ValueError, match="the rewards' shape"):
        ef.scale_rews(traj, lambda r: r[:3])


def test_a_rew_norm_run_keeps_its_scaler_in_the_checkpoint_and_logs_env_returns(tmp_path: Path) -> None:
    hp = {"steps_per_iter": 200, "hidden": [8], "epoch": 1, "batch_size": 100, "eval_episodes": 1}
    outs = {}
    for flag in (False, True):
        cfg = resolve("ppo", "Pendulum-v1", {**hp, "rew_norm": flag}, steps=400, seed=0)
        outs[flag] = train(cfg, tmp_path / str(flag), progress=False, console=False)
    outer = torch.load(tmp_path / "True" / "checkpoint.pt", weights_only=True)
    entries = torch.load(io.BytesIO(outer["payload"]), weights_only=True)["entries"]
    assert "rew_scaler" in entries and "rew_scaler" not in torch.load(
        io.BytesIO(torch.load(tmp_path / "False" / "checkpoint.pt", weights_only=True)["payload"]), weights_only=True
    )["entries"]
    assert float(entries["rew_scaler"]["state"]["stats.count"]) == 400.0  # every sampled step
    # the same seed samples the same first iteration, whose logged returns are the env's in both runs
    first = [(tmp_path / str(f) / "progress.csv").read_text().splitlines()[1].split(",") for f in (False, True)]
    header = (tmp_path / "True" / "progress.csv").read_text().splitlines()[0].split(",")
    i = header.index("return_mean")
    assert first[0][i] == first[1][i] and float(first[1][i]) < -100
