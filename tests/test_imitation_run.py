"""The run layer of GAIL, AIRL and DIAYN: `trajkit train gail|gail_sac|airl|diayn_sac`, experts, reward transfer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import cli
from trajkit.checkpoint import load_checkpoint
from trajkit.discrims import AIRLDiscrim, StateReward
from trajkit.run import ConfigError, resolve
from trajkit.run.adversarial import (
    build_adversarial,
    load_airl_discrim,
    load_expert,
    recovered_reward,
    skill_env,
    train_on_reward,
)
from trajkit.run.evaluate import evaluate_run
from trajkit.run.experts import expert_return
from trajkit.run.runner import env_spaces

QUIET = ["--eval-episodes", "2", "--no-progress", "--quiet"]
#: tiny SAC-learner runs: 2 iterations of 100 steps after 100 warm-up steps, small batches
TINY_SAC = ["--steps", "300", "--hp", "steps_per_iter=100", "--hp", "learning_starts=100", "--hp", "hidden=16",
            "--hp", "discrim_hidden=16", "--hp", "discrim_steps=2", "--hp", "batch_size=32",
            "--hp", "discrim_batch_size=32", *QUIET]


def random_expert(env: str, path: Path, epis: int = 2) -> Path:
    """A stand-in expert file: episodes of an untrained stochastic policy (enough for the plumbing)."""
    from trajkit.run.models import build_on_policy

    torch.manual_seed(0)
    pol = build_on_policy(resolve("ppo", env), *env_spaces(env)).pol  # type: ignore[arg-type]
    with tk.EpiSampler(env, pol, seed=0) as s:
        tk.save_traj(tk.Traj.from_epis(s.sample(pol, max_epis=epis)), path)
    return path


def test_gail_trains_from_an_expert_file(tmp_path: Path) -> None:
    expert = random_expert("CartPole-v1", tmp_path / "e.npz")
    logdir = tmp_path / "r"
    assert cli.main(["train", "gail", "--env", "CartPole-v1", "--expert", str(expert), "--logdir", str(logdir),
                     "--steps", "256", "--hp", "steps_per_iter=128", "--hp", "epoch=1", "--hp", "discrim_steps=2",
                     *QUIET]) == 0
    rows = (logdir / "progress.csv").read_text().splitlines()
    assert len(rows) == 3 and "discrim_loss" in rows[0] and "pseudo_rew" in rows[0]
    assert json.loads((logdir / "config.json").read_text())["expert"] == str(expert)
    assert len(json.loads((logdir / "eval.json").read_text())["returns"]) == 2
    assert expert_return(expert) == pytest.approx(float(tk.load_traj(expert)["rews"].sum()) / 2)


def test_imitation_without_an_expert_says_so_and_writes_nothing(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    logdir = tmp_path / "r"
    assert cli.main(["train", "gail", "--env", "CartPole-v1", "--logdir", str(logdir), *QUIET]) == 2
    assert "--expert FILE" in capsys.readouterr().err
    assert not logdir.exists()


def test_an_expert_of_another_env_is_refused(tmp_path: Path) -> None:
    expert = random_expert("Pendulum-v1", tmp_path / "e.npz")
    with pytest.raises(ConfigError, match="do not fit"):
        load_expert(expert, *env_spaces("CartPole-v1"))
    with pytest.raises(ConfigError, match="no such file"):
        load_expert(tmp_path / "missing.npz", *env_spaces("CartPole-v1"))


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_gail_sac_and_airl_runs_and_the_recovered_reward_trains_a_fresh_sac(tmp_path: Path) -> None:
    expert = random_expert("Pendulum-v1", tmp_path / "e.npz")
    for algo in ("gail_sac", "airl"):
        assert cli.main(["train", algo, "--env", "Pendulum-v1", "--expert", str(expert), "--logdir",
                         str(tmp_path / algo), *TINY_SAC]) == 0
        assert "discrim_loss" in (tmp_path / algo / "progress.csv").read_text().splitlines()[0]
    g = recovered_reward(tmp_path / "airl")
    assert isinstance(g, StateReward) and isinstance(load_airl_discrim(tmp_path / "airl"), AIRLDiscrim)
    torch.save(g.state_dict(), tmp_path / "g.pt")  # the recovered reward as a file, loaded into a fresh module
    reward = StateReward(*env_spaces("Pendulum-v1")[:1], hidden=[16])
    reward.load_state_dict(torch.load(tmp_path / "g.pt"))
    obs = torch.randn(4, 3)
    assert torch.equal(reward(obs), g(obs))
    cfg = resolve("sac", "Pendulum-v1", {"steps_per_iter": 100, "learning_starts": 100, "hidden": [16],
                                         "batch_size": 32, "eval_episodes": 2}, steps=300)
    out = train_on_reward(cfg, reward, tmp_path / "fresh")
    assert out.env_steps == 300 and len(out.eval_returns) == 2
    with pytest.raises(ConfigError, match="airl run"):
        recovered_reward(tmp_path / "gail_sac")


def test_diayn_sac_runs_in_a_skill_env(tmp_path: Path) -> None:
    logdir = tmp_path / "d"
    assert cli.main(["train", "diayn_sac", "--env", "Pendulum-v1", "--logdir", str(logdir), "--hp", "num_skills=3",
                     *TINY_SAC]) == 0
    header = (logdir / "progress.csv").read_text().splitlines()[0]
    assert "skill_acc" in header
    rets = json.loads((logdir / "eval.json").read_text())["returns"]
    assert len(rets) == 2 and all(np.isfinite(rets))
    # trajkit eval and record act in the run's skill env (the policy reads obs + one-hot)
    np.testing.assert_allclose(evaluate_run(logdir, episodes=2), rets)
    assert cli.main(["record", str(logdir), "--episodes", "1", "-o", str(tmp_path / "skills.npz")]) == 0
    assert tk.load_traj(tmp_path / "skills.npz")["obs"].shape[1] == 3 + 3
    # a saved skill as a starting point: the trained policy in an env whose episodes all have skill 1
    cfg = resolve("diayn_sac", "Pendulum-v1", {"num_skills": 3, "hidden": [16], "discrim_hidden": [16]})
    models = build_adversarial(cfg, *env_spaces("Pendulum-v1"))  # type: ignore[arg-type]
    load_checkpoint(logdir / "checkpoint.pt", {"pol": models.pol, "discrim": models.checkpoint["discrim"]},
                    strict=False)
    with tk.EpiSampler(lambda: skill_env("Pendulum-v1", 3, skill=1), models.pol, seed=0) as s:
        traj = tk.Traj.from_epis(s.sample(models.pol, max_epis=2))
    assert bool((traj["obs"][:, -3:].argmax(-1) == 1).all())
    with pytest.raises(ValueError, match="skill must be in"):
        skill_env("Pendulum-v1", 3, skill=3)


def test_discrim_weight_decay_reaches_the_discriminator_optimizer() -> None:
    for wd in (0.0, 1e-3):
        cfg = resolve("diayn_sac", "Pendulum-v1", {"discrim_weight_decay": wd})
        models = build_adversarial(cfg, *env_spaces("Pendulum-v1"))  # type: ignore[arg-type]
        assert models.checkpoint["optim_discrim"].param_groups[0]["weight_decay"] == wd
    with pytest.raises(ConfigError):
        resolve("gail", "CartPole-v1", {"discrim_weight_decay": -1.0})
