"""Vectorized workers: several envs per worker (or in process) with one batched policy forward."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit.samplers.rollout import Rollout, build_envs


def _pol(env: tk.GymEnv) -> tk.CategoricalPol:
    torch.manual_seed(0)
    return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2))


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x["obs"], y["obs"]) and np.array_equal(x["acs"], y["acs"]) and x["truncated"] == y["truncated"]
        for x, y in zip(a, b, strict=True)
    )


def _steps(epis: list[dict]) -> int:
    return sum(len(e["rews"]) for e in epis)


@pytest.mark.parametrize("max_steps", [1, 5, 7, 333])
def test_in_process_vectorized_exact_steps_and_determinism(max_steps: int) -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = _pol(env)
    runs = []
    for _ in range(2):
        with tk.EpiSampler("CartPole-v1", pol, seed=1, num_envs_per_worker=4) as s:
            runs.append(s.sample(pol, max_steps=max_steps) + s.sample(pol, max_steps=max_steps))
    assert _steps(runs[0]) == 2 * max_steps
    assert _same(*runs)
    for e in runs[0]:
        assert e["terminated"] != e["truncated"]
        assert e["obs"].shape == (len(e["rews"]), 4) and e["logits"].shape == (len(e["rews"]), 2)


def test_budget_is_split_over_envs_and_each_env_is_its_own_seeded_stream() -> None:
    """Env k of a K-env rollout gets split_budget's share and replays a 1-env rollout with its seed."""
    pol = _pol(tk.GymEnv("CartPole-v1"))
    rollout = Rollout(build_envs("CartPole-v1", 3), pol, [11, 12, 13], torch_seed=0)
    epis = rollout.sample(None, 100, deterministic=True)  # deterministic: actions do not depend on the batch
    shares = [34, 33, 33]
    per_env, start = [], 0
    for share in shares:
        n, k = 0, start
        while n < share:
            n += len(epis[k]["rews"])
            k += 1
        assert n == share
        per_env.append(epis[start:k])
        start = k
    assert start == len(epis)
    for seed, share, got in zip([11, 12, 13], shares, per_env, strict=True):
        alone = Rollout(build_envs("CartPole-v1", 1), pol, seed, torch_seed=0).sample(None, share, deterministic=True)
        assert _same(got, alone)


def test_max_epis_is_exact_and_split() -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = _pol(env)
    with tk.EpiSampler(env, pol, seed=0, num_envs_per_worker=3) as s:
        epis = s.sample(pol, max_epis=5)
    assert len(epis) == 5 and all(not e["sampler_cut"] for e in epis)


def test_sampler_cut_marks_only_budget_cuts() -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = _pol(env)
    with tk.EpiSampler(env, pol, seed=0, num_envs_per_worker=4) as s:
        epis = s.sample(pol, max_steps=200)
    cuts = [e for e in epis if e["sampler_cut"]]
    assert 1 <= len(cuts) <= 4 and all(e["truncated"] for e in cuts)


@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_vectorized_workers_match_across_runs_and_state_round_trips() -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = _pol(env)
    with tk.EpiSampler(env, pol, num_parallel=2, seed=5, num_envs_per_worker=3) as s:
        first = s.sample(pol, max_steps=101)
        state = s.state_dict()
        second = s.sample(pol, max_steps=101)
    assert _steps(first) == _steps(second) == 101
    with tk.EpiSampler(env, pol, num_parallel=1, seed=5, num_envs_per_worker=3) as local:
        local.load_state_dict({**state, "num_parallel": 1, "workers": state["workers"][:1]})
        again = local.sample(pol, max_steps=51)  # worker 0's share of 101
    lens = np.cumsum([len(e["rews"]) for e in second])
    k = int(np.searchsorted(lens, 51))
    assert lens[k] == 51
    assert _same(again, second[: k + 1])
    with pytest.raises(ValueError, match="num_envs_per_worker"):
        tk.EpiSampler(env, pol, seed=5).load_state_dict({**state, "num_parallel": 1})


def test_env_objects_are_copied_and_bad_arguments_are_refused() -> None:
    pol = _pol(tk.GymEnv("CartPole-v1"))
    raw = gym.make("CartPole-v1")
    with tk.EpiSampler(raw, pol, seed=0, num_envs_per_worker=2) as s:
        assert len({id(e) for e in s._local.envs}) == 2  # noqa: SLF001
        assert _steps(s.sample(pol, max_steps=10)) == 10
    with pytest.raises(TypeError, match="factory"):
        build_envs(raw, 2)
    with pytest.raises(ValueError, match="num_envs_per_worker"):
        tk.EpiSampler("CartPole-v1", pol, num_envs_per_worker=0)
    with pytest.raises(ValueError, match="backend"):
        tk.EpiSampler("CartPole-v1", pol, num_parallel=2, backend="threads")


def test_ray_backend_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    pol = _pol(tk.GymEnv("CartPole-v1"))
    with pytest.raises(ImportError, match=r"pip install 'trajkit\[ray\]'"):
        tk.EpiSampler("CartPole-v1", pol, num_parallel=2, backend="ray")


def test_one_env_in_process_is_the_callers_object() -> None:
    env = tk.GymEnv("CartPole-v1")
    pol = _pol(env)
    with tk.EpiSampler(env, pol, seed=0) as s:
        assert s._local.env is env  # noqa: SLF001
        s.sample(pol, max_steps=5)
    env.step(0)  # the sampler did not close an env it does not own
