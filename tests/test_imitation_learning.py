"""GAIL trained to a score (the `learning` tier): PPO on CartPole-v1 from a hand-written expert's episodes."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.evaluation import EVAL_SEED
from trajkit.run import resolve
from trajkit.run.runner import train


def heuristic_expert(path: Path, num_epis: int = 5, seed: int = 0) -> Path:
    """Episodes of a hand-written CartPole controller (push towards where the pole falls), as a Traj file."""
    env = gym.make("CartPole-v1")
    epis = []
    for e in range(num_epis):
        obs, _ = env.reset(seed=seed + e)
        rows: dict[str, list] = {"obs": [], "acs": [], "rews": []}
        while True:
            ac = int(obs[2] + 0.5 * obs[3] + 0.05 * obs[1] > 0)
            rows["obs"].append(obs)
            rows["acs"].append(ac)
            obs, rew, terminated, truncated, _ = env.step(ac)
            rows["rews"].append(rew)
            if terminated or truncated:
                break
        epis.append({"obs": np.array(rows["obs"], np.float32), "acs": np.array(rows["acs"], np.int64),
                     "rews": np.array(rows["rews"], np.float32), "terminated": bool(terminated),
                     "truncated": bool(truncated), "final_obs": np.asarray(obs, np.float32), "sampler_cut": False})
    traj = tk.Traj.from_epis(epis)
    tk.save_traj(traj, path)
    return path


def test_heuristic_expert_is_an_expert(tmp_path: Path) -> None:
    traj = tk.load_traj(heuristic_expert(tmp_path / "e.npz", num_epis=2))
    assert traj.num_step == 1000  # both episodes last the full 500 steps


@pytest.mark.learning
def test_gail_ppo_imitates_cartpole(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    expert = heuristic_expert(tmp_path / "e.npz")
    cfg = resolve("gail", "CartPole-v1", {"expert": str(expert), "lr_decay_steps": 25000}, steps=25000)
    out = train(cfg, tmp_path / "r", progress=False, console=False)
    # an eighth of the preset's budget (which reaches 500 on 3 seeds); 203.5 measured, random play is ~20
    assert out.eval_mean >= 150, out.eval_returns


def heuristic_teacher() -> tk.CategoricalPol:
    """The hand-written controller above as a near-deterministic CategoricalPol (logit gap 20x its margin)."""
    env = tk.GymEnv("CartPole-v1")
    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 20.0, 10.0]]))
        net.bias.zero_()
    return tk.CategoricalPol(env.observation_space, env.action_space, net)


@pytest.mark.learning
def test_distillation_of_a_hand_written_teacher_reaches_475() -> None:
    from trajkit.run.imitation import DistillSettings, distill

    torch.set_num_threads(1)
    teacher = heuristic_teacher()
    assert tk.evaluate("CartPole-v1", teacher, num_epis=3).min() == 500
    student, steps = distill("CartPole-v1", teacher, DistillSettings.for_env("CartPole-v1", hidden=[16]), seed=0)
    assert steps == 2000
    assert tk.evaluate("CartPole-v1", student, num_epis=10, seed=EVAL_SEED).mean() >= 475
