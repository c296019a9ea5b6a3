"""Learning-curve plots: grouping by seed, title, legend, smoothing, mixed-env warning (Agg, small figures)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from trajkit.plot import aggregate, group_runs, plot_curves

pytest.importorskip("matplotlib")


def _run(d: Path, ys: Sequence[float], config: dict | None = None) -> Path:
    """A run directory with a progress.csv of ``ys`` at env steps 10, 20, ... (and a config.json)."""
    d.mkdir(parents=True)
    rows = "".join(f"{i + 1},{10 * (i + 1)},{y}\n" for i, y in enumerate(ys))
    (d / "progress.csv").write_text("iteration,env_steps,return_mean\n" + rows)
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    return d


def _ppo(tmp_path: Path, seed: int, env: str = "CartPole-v1", ys: Sequence[float] = (1, 2, 3)) -> Path:
    cfg = {"algo": "ppo", "env": env, "seed": seed, "hparams": {"lr": 3e-4}}
    return _run(tmp_path / f"r{seed}_{env}", ys, cfg)


def _figure(dirs: Sequence[Path], **kw):  # noqa: ANN202
    from trajkit.plot import make_figure

    fig, cs = make_figure(dirs, figsize=(3, 2), **kw)
    ax = fig.axes[0]
    return ax, [t.get_text() for t in ax.get_legend().get_texts()], cs


# ---------------------------------------------------------------------------- grouping
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


# ---------------------------------------------------------------------------- title and legend
def test_title_names_algorithm_and_env_from_config(tmp_path: Path) -> None:
    runs = [_ppo(tmp_path, 0), _ppo(tmp_path, 1)]
    ax, _, _ = _figure(runs)
    assert ax.get_title() == "ppo on CartPole-v1"
    ax, _, _ = _figure(runs[:1], title="mine")
    assert ax.get_title() == "mine"


def test_title_from_directory_names_without_config(tmp_path: Path) -> None:
    a = _run(tmp_path / "runs" / "ppo_kl_Pendulum-v1_s0", [1, 2])
    b = _run(tmp_path / "runs" / "Pendulum-v1" / "sac_s3", [1, 2])
    ax, _, cs = _figure([a, b])
    assert [(c.algo, c.env) for c in cs] == [("ppo_kl", "Pendulum-v1"), ("sac", "Pendulum-v1")]
    assert ax.get_title() == "ppo_kl, sac on Pendulum-v1"
    ax, _, _ = _figure([_run(tmp_path / "td3_s0", [1])])
    assert ax.get_title() == "td3"


def test_legend_names_the_band_only_for_several_seeds(tmp_path: Path) -> None:
    seeds = [_ppo(tmp_path, s, ys=(s, s + 1, s + 2)) for s in range(3)]
    single = _run(tmp_path / "sac_CartPole-v1_s0", [1, 2, 3])
    _, legend, _ = _figure([*seeds, single])
    assert legend == ["ppo CartPole-v1 (± std over 3 seeds)", "sac_CartPole-v1"]
    _, legend, _ = _figure(seeds, band="minmax")
    assert legend == ["ppo CartPole-v1 (min-max over 3 seeds)"]


# ---------------------------------------------------------------------------- smoothing
def test_smoothing_is_a_trailing_moving_average_over_logged_points(tmp_path: Path) -> None:
    d = _run(tmp_path / "ppo_s0", [0, 3, 6, 0, 3])
    (c,) = plot_curves([d], tmp_path / "s.png", smooth=3)
    assert c.mean.tolist() == pytest.approx([0, 1.5, 3, 3, 3])
    (raw,) = plot_curves([d], tmp_path / "r.png")
    assert raw.mean.tolist() == [0, 3, 6, 0, 3]
    ax, _, _ = _figure([d], smooth=3)
    assert "moving average over 3 logged points" in ax.get_ylabel()
    with pytest.raises(ValueError, match="smooth"):
        plot_curves([d], tmp_path / "x.png", smooth=0)


# ---------------------------------------------------------------------------- envs on one axis
def test_warns_when_curves_of_different_envs_share_one_axis(tmp_path: Path) -> None:
    a, b = _ppo(tmp_path, 0, "CartPole-v1"), _ppo(tmp_path, 0, "Acrobot-v1")
    with pytest.warns(UserWarning, match="CartPole-v1, Acrobot-v1"):
        plot_curves([a, b], tmp_path / "mixed.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cs = plot_curves([a, _ppo(tmp_path, 1, "CartPole-v1")], tmp_path / "same.png")
    assert [c.num_runs for c in cs] == [2]
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "same.png")
    assert img.shape[0] >= 300 and img[..., :3].std() > 0.05
