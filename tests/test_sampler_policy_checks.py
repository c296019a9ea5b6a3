"""A policy's NaN/inf actions or NaN parameters are stopped, with a clear error, before any env sees them."""

from __future__ import annotations

import pytest
from sampler_envs import LengthsFactory, NanFromStep, SleepyBoxEnv, SleepyEnv

import trajkit as tk

NAN, INF = float("nan"), float("inf")


def gaussian(step: int, value: float = NAN) -> tk.GaussianPol:
    env = SleepyBoxEnv()
    return tk.GaussianPol(env.observation_space, env.action_space, NanFromStep(2, 2, step, value))


def categorical(step: int) -> tk.CategoricalPol:
    env = SleepyEnv()
    return tk.CategoricalPol(env.observation_space, env.action_space, NanFromStep(2, 2, step))


@pytest.mark.parametrize(
    ("value", "deterministic", "match"),
    [
        (NAN, False, r"GaussianPol produced the non-finite action array\(\[nan\]"),
        (INF, True, r"GaussianPol produced the non-finite action array\(\[inf\]"),
    ],
    ids=["nan-sampled", "inf-mode"],
)
def test_in_process_non_finite_actions_never_reach_the_env(value: float, deterministic: bool, match: str) -> None:
    env = SleepyBoxEnv(length=10)
    pol = gaussian(step=3, value=value)
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        with pytest.raises(tk.samplers.NonFiniteActionError, match=match + r".*'acs'.*env 0 at step 3"):
            sampler.sample(pol, max_steps=8, deterministic=deterministic)
        assert env.t == 3, "the env was stepped with the bad action"
        assert sum(len(e["rews"]) for e in sampler.sample(gaussian(step=99), max_steps=4)) == 4  # still usable


@pytest.mark.parametrize("deterministic", [False, True])
def test_nan_logits_are_named_whether_sampled_or_argmaxed(deterministic: bool) -> None:
    """Sampling from NaN logits fails inside the policy; argmax of NaN logits is a valid-looking action."""
    env = SleepyEnv(length=10)
    pol = categorical(step=2)
    with tk.EpiSampler(env, pol, seed=0) as sampler:
        with pytest.raises(tk.samplers.NonFiniteActionError, match=r"CategoricalPol's output 'logits' is NaN.*step 2"):
            sampler.sample(pol, max_steps=8, deterministic=deterministic)
    assert env.t == 2


def test_a_vectorized_rollout_names_the_env_whose_row_is_bad() -> None:
    """Env 0's episodes last 3 steps, env 1's 10: only env 1 ever reaches step 5."""
    pol = gaussian(step=5)
    with tk.EpiSampler(LengthsFactory([3, 10], box=True), pol, num_envs_per_worker=2, seed=0) as sampler:
        with pytest.raises(tk.samplers.NonFiniteActionError, match=r"for env 1 at step 5 of its episode"):
            sampler.sample(pol, max_steps=40)


@pytest.mark.slow  # worker processes: seconds to start on a small machine (slow tier)
def test_workers_refuse_non_finite_actions_with_the_same_message() -> None:
    pol = gaussian(step=4)
    with tk.EpiSampler(LengthsFactory([10], box=True), pol, num_parallel=2, seed=0) as sampler:
        with pytest.raises(tk.WorkerError, match=r"(?s)NonFiniteActionError: policy GaussianPol.*env 0 at step 4"):
            sampler.sample(pol, max_steps=20)
