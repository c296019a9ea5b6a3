"""A recurrent value function over a continuing sampler's pieces: ``ef.carry_hs`` carries its state
from call to call, so values of k calls of n steps equal those of one call of k*n steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import trajkit as tk
from trajkit import ef


def _models() -> tuple[tk.CategoricalPol, tk.DeterministicSVfunc]:
    torch.manual_seed(0)
    env = tk.GymEnv("CartPole-v1")
    pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.gru(4, 2, core_size=6, head=()))
    vf = tk.DeterministicSVfunc(env.observation_space, tk.nets.lstm(4, 1, core_size=5, head=(4,)))
    return pol, vf


def _by_key(traj: tk.Traj, col: str) -> dict[tuple[int, int], np.ndarray]:
    """Each episode's ``col`` joined over its pieces, keyed by ``epi_key``."""
    out: dict[tuple[int, int], list[np.ndarray]] = {}
    keys, b = traj.epi["epi_key"], traj.bounds
    for e in range(traj.num_epi):
        out.setdefault((int(keys[e, 0]), int(keys[e, 1])), []).append(traj[col][b[e]:b[e + 1]].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def test_k_calls_with_carried_states_give_the_values_of_one_call() -> None:
    pol, vf = _models()
    def sampler() -> tk.EpiSampler:  # a fresh one each time: same seed, episodes numbered from 0
        return tk.EpiSampler("CartPole-v1", pol, num_envs_per_worker=2, seed=0, continuing=True)

    with sampler() as s:
        pieces, carried = [], None
        for _ in range(4):
            traj, carried = ef.carry_hs(tk.Traj.from_epis(s.sample(pol, max_steps=20)), vf, carried)
            pieces.append(ef.compute_vs(traj, vf))
    assert any(bool(p.epi["continued"].any()) for p in pieces) and carried
    with sampler() as s:
        whole = ef.compute_vs(ef.compute_hs(tk.Traj.from_epis(s.sample(pol, max_steps=80)), vf, key="vf_hs"), vf)
    split = tk.concat(pieces)
    for col in ("vs", "vf_hs"):
        a, b = _by_key(split, col), _by_key(whole, col)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=f"{col} of episode {k}")


def test_a_continued_piece_without_a_carried_state_is_refused() -> None:
    pol, vf = _models()
    with tk.EpiSampler("CartPole-v1", pol, seed=0, continuing=True) as s:
        s.sample(pol, max_steps=5)
        traj = tk.Traj.from_epis(s.sample(pol, max_steps=5))
    assert bool(traj.epi["continued"][0])
    with pytest.raises(ValueError, match="carry_hs"):
        ef.compute_vs(traj, vf)
    with pytest.raises(ValueError, match="whose state was not carried"):
        ef.carry_hs(traj, vf, {})


def test_an_episode_a_call_did_not_step_keeps_its_carried_state() -> None:
    pol, vf = _models()
    with tk.EpiSampler("CartPole-v1", pol, num_envs_per_worker=3, seed=0, continuing=True) as s:
        traj, carried = ef.carry_hs(tk.Traj.from_epis(s.sample(pol, max_steps=6)), vf)  # 2 steps per env
        assert len(carried) == 3
        one = tk.Traj.from_epis(s.sample(pol, max_steps=1))  # only env 0 steps
        _, after = ef.carry_hs(one, vf, carried)
        assert {k[0] for k in after} == {0, 1, 2}  # envs 1 and 2 keep theirs for the next call
        for k in after:
            if k[0] != 0:
                assert torch.equal(after[k], carried[k])
        traj, _ = ef.carry_hs(tk.Traj.from_epis(s.sample(pol, max_steps=3)), vf, after)
    assert bool(traj.epi["continued"].all())
