"""Minari interop: a dataset made locally with Minari's own DataCollector (nothing downloaded)
loads into a Traj and round-trips exactly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk

minari = pytest.importorskip("minari")
pytest.importorskip("h5py")
pytest.importorskip("jax")  # Minari's DataCollector needs it (the minari[create] extra)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture()
def dataset(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = minari.DataCollector(gym.make("CartPole-v1", max_episode_steps=25))
    env.reset(seed=0)
    for e in range(6):  # alternating pushes balance past the 25-step limit; always pushing right falls over
        done, t = False, 0
        while not done:
            _, _, term, trunc, _ = env.step(t % 2 if e % 2 == 0 else 1)
            done, t = term or trunc, t + 1
        env.reset()
    ds = env.create_dataset("cartpole/trajkit-test-v0", algorithm_name="random")
    env.close()
    return ds


def test_load_minari_matches_the_episodes_minari_stores(dataset) -> None:  # noqa: ANN001
    traj = tk.load_minari("cartpole/trajkit-test-v0")
    eps = list(dataset.iterate_episodes())
    assert traj.num_epi == len(eps) == 6
    assert traj.epi_lens.tolist() == [len(ep) for ep in eps]
    assert traj["obs"].dtype == torch.float32 and traj["acs"].dtype == torch.int64
    for e, ep in enumerate(eps):
        lo, hi = int(traj.bounds[e]), int(traj.bounds[e + 1])
        np.testing.assert_array_equal(traj["obs"][lo:hi].numpy(), ep.observations[:-1])
        np.testing.assert_array_equal(traj.epi["final_obs"][e].numpy(), ep.observations[-1])
        np.testing.assert_array_equal(traj["acs"][lo:hi].numpy(), ep.actions)
        np.testing.assert_array_equal(traj["rews"][lo:hi].numpy(), ep.rewards.astype(np.float32))
        assert bool(traj.epi["terminated"][e]) == bool(ep.terminations[-1])
        # a last step both terminated and truncated (a fall exactly at the time limit) counts as terminated
        assert bool(traj.epi["truncated"][e]) == (bool(ep.truncations[-1]) and not bool(ep.terminations[-1]))
    # the 25-step limit cuts some episodes, others end at a true terminal state
    assert bool(traj.epi["terminated"].any()) and bool(traj.epi["truncated"].any())


def test_traj_to_minari_and_back_is_exact(dataset) -> None:  # noqa: ANN001
    traj = tk.load_minari(dataset)
    ds = tk.save_minari(traj, "cartpole/trajkit-copy-v0", env="CartPole-v1")
    back = tk.load_minari(ds)
    assert torch.equal(back.bounds, traj.bounds)
    for k in ("obs", "acs", "rews"):
        assert back[k].dtype == traj[k].dtype and torch.equal(back[k], traj[k])
    for k in ("terminated", "truncated", "final_obs"):
        assert back.epi[k].dtype == traj.epi[k].dtype and torch.equal(back.epi[k], traj.epi[k])
    with pytest.raises(ValueError, match="env, or both"):
        tk.save_minari(traj, "cartpole/x-v0")


def test_a_box_action_traj_round_trips_through_minari(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = tk.GymEnv("Pendulum-v1", max_episode_steps=7)
    traj = tk.record_epis(env, tk.RandomPol(env.observation_space, env.action_space), 3, seed=0,
                          deterministic=False)
    assert traj["acs"].dtype == torch.float32 and traj["acs"].shape == (21, 1)
    back = tk.load_minari(tk.save_minari(traj, "pendulum/trajkit-box-v0", env="Pendulum-v1"))
    assert torch.equal(back.bounds, traj.bounds)
    for k in ("obs", "acs", "rews"):
        assert back[k].dtype == traj[k].dtype and torch.equal(back[k], traj[k]), k
    for k in ("terminated", "truncated", "final_obs"):
        assert torch.equal(back.epi[k], traj.epi[k]), k
    assert bool(back.epi["truncated"].all())


def test_an_episode_both_terminated_and_truncated_counts_as_terminated() -> None:
    from types import SimpleNamespace

    from trajkit.minari_io import _episode

    obs = np.zeros((4, 2), np.float32)
    ep = SimpleNamespace(observations=obs, actions=np.zeros(3, np.int64), rewards=np.ones(3),
                         terminations=np.array([0, 0, 1], bool), truncations=np.array([0, 0, 1], bool))
    d = _episode(ep, 0)
    assert d["terminated"] and not d["truncated"] and not d["sampler_cut"]
    ep.terminations = np.zeros(3, bool)
    ep.truncations = np.zeros(3, bool)
    d = _episode(ep, 0)  # neither: the collection stopped mid-episode, as a sampler's cut
    assert not d["terminated"] and d["truncated"] and d["sampler_cut"]
