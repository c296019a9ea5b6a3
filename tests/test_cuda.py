"""The CUDA tier (``pytest -m cuda``): Traj, buffers, sampling, every ``train()`` and checkpoints on the GPU.

Skipped without CUDA. ``TRAJKIT_TEST_DEVICE`` picks the device (default ``cuda``; e.g.
``cuda:1``); ``TRAJKIT_TEST_DEVICE=cpu python -m pytest -m cuda tests/test_cuda.py`` runs
the same tests on the CPU, which checks the tier itself on a machine without a GPU (it
cannot find a device bug there).

What each test pins down:

* a Traj built on the device keeps every column there through the estimators, and the
  estimates equal the CPU ones;
* replay buffers (uniform and prioritized) store and draw batches on the device, with a
  CPU generator (the run layer draws indices on the CPU);
* a policy on the device acts in the sampler (in-process and vectorized); the sampler
  moves observations to it and actions back;
* every algorithm of the run layer trains a few steps with ``device`` set, and its
  checkpoint, written from device tensors, loads on the CPU (``load_policy``, which is what
  ``trajkit eval`` runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import trajkit as tk
from trajkit import ef
from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer
from trajkit.run.evaluate import load_policy
from trajkit.run.presets import resolve
from trajkit.run.registry import REGISTRY
from trajkit.run.runner import train

DEVICE = torch.device(os.environ.get("TRAJKIT_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"),
]

#: a few steps of each algorithm: tiny nets, training from the first iterations
OFF_POLICY = {"learning_starts": 100, "steps_per_iter": 100, "hidden": [16], "batch_size": 32, "buffer_size": 400}
TINY: dict[str, tuple[str, int, dict[str, object]]] = {
    **{a: ("CartPole-v1", 128, {"steps_per_iter": 64, "hidden": [16]}) for a in ("ppo", "ppo_kl", "trpo", "vpg")},
    "sac": ("Pendulum-v1", 300, OFF_POLICY),
    "td3": ("Pendulum-v1", 300, OFF_POLICY),
    "ddpg": ("Pendulum-v1", 300, {**OFF_POLICY, "prioritized": True}),
    "dqn": ("CartPole-v1", 300, {**OFF_POLICY, "steps_per_iter": 0, "epis_per_iter": 1, "exploration_steps": 200}),
    "qtopt": ("Pendulum-v1", 300, {**OFF_POLICY, "cem_samples": 16, "cem_elite": 4}),
    "r2d2_sac": ("PendulumNoVel-v1", 300, {**OFF_POLICY, "seq_len": 8, "burn_in": 2}),
    **{a: ("Pendulum-v1", 60, {"learning_starts": 20, "steps_per_iter": 20, "horizon": 3, "num_samples": 8,
                               "num_elites": 2, "model_hidden": [8], "train.max_epochs": 2}) for a in ("mpc", "pets")},
    "mbpo": ("Pendulum-v1", 150, {"learning_starts": 50, "steps_per_iter": 50, "model_hidden": [8], "hidden": [16],
                                  "grad_ratio": 1.0, "rollouts_per_step": 2, "model_max_epochs": 2}),
    "gail": ("CartPole-v1", 128, {"steps_per_iter": 64, "hidden": [16], "epoch": 1, "discrim_steps": 2}),
    **{a: ("Pendulum-v1", 300, {**OFF_POLICY, "discrim_hidden": [16], "discrim_steps": 2, "discrim_batch_size": 32})
       for a in ("gail_sac", "airl", "diayn_sac")},
}
#: the algorithms that imitate an expert file (made by the ``expert_files`` fixture)
NEEDS_EXPERT = {"gail", "gail_sac", "airl"}


def _epis(n: int = 64) -> list[dict]:
    pol = tk.make_pol_vf(gym.make("CartPole-v1"), hidden=(8,))[0]
    with tk.EpiSampler("CartPole-v1", pol, seed=0) as sampler:
        return sampler.sample(pol, max_steps=n)


def _on(t: torch.Tensor) -> bool:
    return t.device.type == DEVICE.type


def test_every_algorithm_has_a_tiny_setting() -> None:
    assert set(TINY) == set(REGISTRY)


def test_traj_and_estimators_on_the_device_equal_the_cpu() -> None:
    epis = _epis()
    _, vf = tk.make_pol_vf(gym.make("CartPole-v1"), hidden=(8,))
    out = {}
    for dev in (torch.device("cpu"), DEVICE):
        traj = tk.Traj.from_epis(epis, device=dev)
        traj = ef.compute_vs(traj, vf.to(dev))
        traj = ef.compute_rets(traj, 0.99)
        traj = ef.compute_advs(traj, 0.99, 0.95)
        out[dev.type] = ef.centerize_advs(traj)
    gpu, cpu = out[DEVICE.type], out["cpu"]
    for key in ("obs", "acs", "rews", "vs", "rets", "advs"):
        assert _on(gpu[key]), key
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], rtol=1e-5, atol=1e-5)
    batches = list(gpu.iterate(batch_size=16, epoch=1, generator=0))
    assert batches and all(_on(b["obs"]) for b in batches)


@pytest.mark.parametrize("prioritized", [False, True])
def test_replay_buffers_store_and_draw_on_the_device(prioritized: bool) -> None:
    traj = ef.add_next_obs(tk.Traj.from_epis(_epis(), device=DEVICE))
    buf = PrioritizedReplayBuffer(100, device=DEVICE) if prioritized else ReplayBuffer(100, device=DEVICE)
    buf.add(traj)
    batch = buf.random_batch(32, torch.Generator().manual_seed(0))
    assert all(_on(batch[k]) for k in ("obs", "acs", "rews", "next_obs"))
    if prioritized:
        buf.update_pris(batch["idx"], torch.rand(32, device=DEVICE) + 0.1)
        again = buf.random_batch(32, torch.Generator().manual_seed(1))
        assert _on(again["weights"]) and bool((again["weights"] > 0).all())


@pytest.mark.parametrize("envs", [1, 3])
def test_a_policy_on_the_device_acts_in_the_sampler(envs: int) -> None:
    env = gym.make("Pendulum-v1")
    pol = tk.SquashedGaussianPol.for_env(env, hidden=(8,)).to(DEVICE)
    with tk.EpiSampler("Pendulum-v1", pol, seed=0, num_envs_per_worker=envs) as sampler:
        traj = tk.Traj.from_epis(sampler.sample(pol, max_steps=30))
    assert traj.num_step == 30 and bool((traj["acs"].abs() <= 2.0).all())
    assert next(pol.parameters()).device.type == DEVICE.type  # the sampler did not move the policy


def _expert_file(env: str, path: Path) -> str:
    """A stand-in expert: two episodes of an untrained policy (the device path, not imitation, is tested)."""
    space = gym.make(env)
    pol = tk.RandomPol(space.observation_space, space.action_space)
    tk.record_epis(env, pol, 2, seed=0, deterministic=False, path=path)
    return str(path)


@pytest.mark.parametrize("algo", sorted(TINY))
def test_every_algorithm_trains_on_the_device_and_loads_on_the_cpu(algo: str, tmp_path: Path) -> None:
    env, steps, hp = TINY[algo]
    if algo in NEEDS_EXPERT:
        hp = {**hp, "expert": _expert_file(env, tmp_path / "expert.npz")}
    cfg = resolve(algo, env, overrides={**hp, "eval_episodes": 1}, steps=steps, seed=0, device=str(DEVICE))
    out = train(cfg, tmp_path / algo, progress=False, console=False)
    assert out.env_steps >= steps and out.eval_returns
    pol, values = load_policy(tmp_path / algo)  # built on the CPU from the config, the device's weights loaded
    assert values["device"] == str(DEVICE)
    assert all(p.device.type == "cpu" for p in pol.parameters())
    assert all(torch.isfinite(p).all() for p in pol.parameters())
