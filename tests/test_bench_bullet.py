"""benchmarks/bench_bullet.py and the SB3 counterparts it trains: the same settings reach SB3."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_bullet  # noqa: E402
import results_report as rr  # noqa: E402

pytest.importorskip("stable_baselines3")


def test_every_bullet_row_is_its_preset_with_a_block_in_the_page():
    from trajkit.run.presets import preset_envs

    for row in bench_bullet.ROWS:
        assert row.env in preset_envs(row.algo), row
    page = (BENCH.parent / "docs" / "bullet.md").read_text()
    assert rr.BEGIN in page and rr.END in page
    with pytest.raises(SystemExit, match="unknown rows"):
        bench_bullet.select(["ppo_cartpole"])


def test_sb3_ppo_gets_the_presets_envs_nets_and_normalization():
    import sb3_runs
    from stable_baselines3.common.vec_env import VecNormalize

    from trajkit.run.presets import resolve

    cfg = resolve("ppo", "Pendulum-v1", {"num_envs": "4", "steps_per_iter": "64", "obs_norm": "true",
                                         "rew_norm": "true", "activation": "relu", "ortho_init": "false",
                                         "log_std_init": "-2", "hidden": "16,16", "batch_size": "32", "epoch": "1"})
    model = sb3_runs.ppo(cfg, cfg.env, 0)
    assert model.n_envs == 4 and model.n_steps == 16
    norm = model.get_vec_normalize_env()
    assert isinstance(norm, VecNormalize) and norm.norm_obs and norm.norm_reward
    policy = model.policy
    assert policy.ortho_init is False and policy.activation_fn is torch.nn.ReLU
    assert torch.allclose(policy.log_std.detach(), torch.full((1,), -2.0))
    model.learn(total_timesteps=64)
    rets = sb3_runs.evaluate_sb3(model, cfg.env, 0, 1)  # observations normalized as in training
    assert len(rets) == 1 and np.isfinite(rets[0])


def test_sb3_ppo_keeps_the_cartpole_recipe():
    import sb3_runs

    from trajkit.run.presets import resolve

    model = sb3_runs.ppo(resolve("ppo", "CartPole-v1"), "CartPole-v1", 0)
    assert (model.n_envs, model.n_steps, model.batch_size, model.n_epochs) == (8, 32, 256, 20)
    assert model.get_vec_normalize_env() is None
    assert model.policy.ortho_init is True and model.policy.activation_fn is torch.nn.Tanh
