"""The Ray backend (skipped when Ray is not installed). One local Ray with 2 CPUs for the module."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import trajkit as tk

ray = pytest.importorskip("ray")

#: starting Ray and its actors takes seconds: the whole file runs in the slow tier (CI runs it)
pytestmark = pytest.mark.slow

from scaleout_envs import DiesOnceOnStep, DiesOnStep, HangsOnStep  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def module_ray() -> Iterator[None]:
    """One local Ray for the file (a Ray left by an earlier file is shut down first)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _pol() -> tk.CategoricalPol:
    torch.manual_seed(0)
    env = tk.GymEnv("CartPole-v1")
    return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2))


def test_ray_gives_the_same_episodes_as_the_process_backend() -> None:
    pol = _pol()
    out = {}
    for backend in ("process", "ray"):
        with tk.EpiSampler("CartPole-v1", pol, num_parallel=2, seed=7, num_envs_per_worker=2, backend=backend) as s:
            out[backend] = s.sample(pol, max_steps=157) + s.sample(pol, max_epis=3)
            assert len(s.worker_pids) == 2 and os.getpid() not in s.worker_pids
    a, b = out["process"], out["ray"]
    assert sum(len(e["rews"]) for e in a[:-3]) == 157
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["obs"], y["obs"])
        np.testing.assert_array_equal(x["acs"], y["acs"])


def test_dead_actor_is_reported_promptly() -> None:
    pol = _pol()
    sampler = tk.EpiSampler(lambda: DiesOnStep("CartPole-v1"), pol, num_parallel=2, backend="ray")
    start = time.monotonic()
    with pytest.raises(tk.WorkerError, match="ray sampler worker . died while sampling"):
        sampler.sample(pol, max_steps=20)
    assert time.monotonic() - start < 30
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(pol, max_steps=20)


def test_dead_actor_is_restarted_when_asked(tmp_path: object) -> None:
    pol = _pol()
    marker = os.path.join(str(tmp_path), "died")
    with tk.EpiSampler(lambda: DiesOnceOnStep(marker), pol, num_parallel=2, backend="ray", max_restarts=1) as s:
        with pytest.warns(UserWarning, match="restarting"):
            epis = s.sample(pol, max_steps=40)
        assert sum(len(e["rews"]) for e in epis) == 40
        assert os.path.exists(marker)


def test_a_hung_actor_times_out_with_where_it_hung() -> None:
    pol = _pol()
    sampler = tk.EpiSampler(lambda: HangsOnStep(), pol, num_parallel=2, backend="ray", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(tk.samplers.SamplerTimeout, match=r"(?s)sampler worker . timed out while sampling.*env\.step"):
        sampler.sample(pol, max_steps=20)
    assert time.monotonic() - start < 5
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(pol, max_steps=20)


def test_an_actor_stuck_where_no_signal_reaches_ends_itself() -> None:
    pol = _pol()
    sampler = tk.EpiSampler(lambda: HangsOnStep(immune=True), pol, num_parallel=2, backend="ray", timeout=0.3)
    start = time.monotonic()
    with pytest.raises(tk.WorkerError, match="ray sampler worker . died while sampling"):
        sampler.sample(pol, max_steps=20)
    assert time.monotonic() - start < 10


def test_ray_carries_and_resets_a_recurrent_policy_state_like_the_process_backend() -> None:
    from test_sampler_recurrent import ENV, check_carried_and_reset, recurrent_pol

    pol = recurrent_pol()
    out = {}
    for backend in ("process", "ray"):
        with tk.EpiSampler(ENV, pol, num_parallel=2, seed=4, num_envs_per_worker=2, backend=backend) as s:
            out[backend] = s.sample(pol, max_steps=100)
    check_carried_and_reset(pol, out["ray"], [True] * len(out["ray"]))
    assert len(out["ray"]) == len(out["process"])
    for a, b in zip(out["ray"], out["process"], strict=True):
        assert np.array_equal(a["obs"], b["obs"]) and np.array_equal(a["hs"], b["hs"])
