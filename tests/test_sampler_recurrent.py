"""Samplers with recurrent policies: each env's hidden state is carried, reset at every episode start, stored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import trajkit as tk

ENV = "CartPoleNoVel-v1"

#: (num_parallel, num_envs_per_worker): in-process, in-process vectorized, process, process vectorized
BACKENDS = {"local": (1, 1), "local_vec": (1, 3), "process": (2, 1), "process_vec": (2, 2)}


def recurrent_pol(seed: int = 0, kind: str = "lstm") -> tk.CategoricalPol:
    torch.manual_seed(seed)
    env = tk.GymEnv(ENV)
    build = tk.nets.lstm if kind == "lstm" else tk.nets.gru
    return tk.CategoricalPol(env.observation_space, env.action_space, build(4, 2, core_size=8, head=(8,)))


def replay(pol: tk.CategoricalPol, obs: np.ndarray, hs0: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The states entering each step ``(T, S)`` and the logits ``(T, 2)`` of one env run step by step from ``hs0``."""
    hs, states, logits = hs0[None], [], []
    with torch.no_grad():
        for ob in torch.as_tensor(obs):
            states.append(hs[0])
            params, hs = pol(ob[None], hs=hs)
            logits.append(params["logits"][0])
    return torch.stack(states).numpy(), torch.stack(logits).numpy()


def check_carried_and_reset(pol: tk.CategoricalPol, epis: list[dict], fresh: list[bool]) -> None:
    """Each episode's ``hs`` starts at ``init_hs`` (a fresh episode) and follows the policy's own state updates."""
    zeros = pol.init_hs(1)[0].numpy()
    for e, is_fresh in zip(epis, fresh, strict=True):
        assert e["hs"].shape == (len(e["obs"]), pol.net.hs_dim) and e["hs"].dtype == np.float32
        if is_fresh:
            assert np.array_equal(e["hs"][0], zeros)
        states, logits = replay(pol, e["obs"], torch.as_tensor(e["hs"][0]))
        # batched (B envs) and one-env forwards agree up to the last bits of different-sized matmuls
        np.testing.assert_allclose(e["hs"], states, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(e["logits"], logits, rtol=1e-5, atol=1e-6)
        if len(e["obs"]) > 1:
            assert np.abs(e["hs"][1:]).sum() > 0  # the state moves


@pytest.mark.parametrize("backend", [b if BACKENDS[b][0] == 1 else pytest.param(b, marks=pytest.mark.slow)
                                     for b in sorted(BACKENDS)])  # worker processes: ~5 s each (slow tier)
def test_every_backend_resets_the_state_at_each_episode_start_and_carries_it_within(backend):
    num_parallel, num_envs = BACKENDS[backend]
    pol = recurrent_pol()
    with tk.EpiSampler(ENV, pol, num_parallel=num_parallel, num_envs_per_worker=num_envs, seed=3) as sampler:
        epis = sampler.sample(pol, max_steps=120)
        again = sampler.sample(pol, max_epis=num_parallel * num_envs)
    assert len(epis) > num_parallel * num_envs  # several episodes per env: resets inside a call happened
    check_carried_and_reset(pol, epis + again, [True] * len(epis + again))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_same_seed_gives_the_same_episodes_with_a_recurrent_policy(kind):
    pol = recurrent_pol(kind=kind)
    runs = []
    for _ in range(2):
        with tk.EpiSampler(ENV, pol, num_parallel=1, num_envs_per_worker=2, seed=5) as sampler:
            runs.append(sampler.sample(pol, max_steps=80))
    assert len(runs[0]) == len(runs[1])
    for a, b in zip(*runs, strict=True):
        for k in ("obs", "acs", "hs", "logits"):
            assert np.array_equal(a[k], b[k]), k


def test_a_continuing_sampler_carries_the_state_into_the_next_call():
    pol = recurrent_pol(1)
    with tk.EpiSampler(ENV, pol, num_parallel=1, num_envs_per_worker=2, seed=0, continuing=True) as sampler:
        calls = [sampler.sample(pol, max_steps=10) for _ in range(6)]
    last_of: dict[tuple[int, int], dict] = {}
    fresh, pieces, continued = [], [], 0
    for epis in calls:
        for e in epis:
            key = (int(e["epi_key"][0]), int(e["epi_key"][1]))
            if e["continued"]:
                prev = last_of[key]
                states, _ = replay(pol, np.concatenate([prev["obs"], e["obs"][:1]]), torch.as_tensor(prev["hs"][0]))
                # the piece starts from the state its episode's previous piece ended in, not from zeros
                np.testing.assert_allclose(e["hs"][0], states[-1], rtol=1e-5, atol=1e-6)
                assert np.abs(e["hs"][0]).sum() > 0
                continued += 1
            last_of[key] = e
            fresh.append(not e["continued"])
            pieces.append(e)
    assert continued >= 3
    check_carried_and_reset(pol, pieces, fresh)


def test_deterministic_evaluation_works_for_a_recurrent_policy():
    pol = recurrent_pol()
    first = tk.evaluate(ENV, pol, num_epis=3)
    assert first.shape == (3,) and np.array_equal(first, tk.evaluate(ENV, pol, num_epis=3))
    with tk.EpiSampler(ENV, pol, seed=tk.evaluation.EVAL_SEED) as sampler:
        epis = sampler.sample(pol, max_epis=3, deterministic=True)
    for e in epis:
        assert np.array_equal(e["acs"], e["logits"].argmax(-1))
    check_carried_and_reset(pol, epis, [True] * 3)


def test_a_recurrent_policy_with_nan_outputs_is_named_not_hidden():
    pol = recurrent_pol()
    with torch.no_grad():
        pol.net.head[-1].bias.fill_(float("nan"))
    with tk.EpiSampler(ENV, pol, seed=0) as sampler:
        with pytest.raises(tk.samplers.NonFiniteActionError, match="output 'logits' is NaN"):
            sampler.sample(pol, max_steps=5)
