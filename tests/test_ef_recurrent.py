"""Estimators and iterators for recurrent models: compute_vs, compute_hs, iterate_rnn chunks with burn-in."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from epi_factories import OBS_DIM, make_traj

import trajkit as tk
from trajkit import ef

OBS = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
LENS, TERM = [5, 12, 1, 7], [True, False, False, True]


def rnn_vf(seed: int = 0) -> tk.DeterministicSVfunc:
    torch.manual_seed(seed)
    return tk.DeterministicSVfunc(OBS, tk.nets.lstm(OBS_DIM, 1, core_size=5, head=(4,)))


def step_values(vf, obs: torch.Tensor) -> torch.Tensor:
    """V of each of ``obs: (T, ...)`` for one episode run step by step from ``init_hs``: ``(T,)``."""
    hs, out = vf.init_hs(1), []
    with torch.no_grad():
        for ob in obs:
            v, hs = vf(ob[None], hs=hs)
            out.append(v[0])
    return torch.stack(out)


def indexed_traj() -> tk.Traj:
    """Episodes of LENS steps whose ``step`` column is each step's global index."""
    traj = make_traj(LENS, TERM)
    return traj.with_columns(step=torch.arange(traj.num_step))


# ---------------------------------------------------------------------- iterate_rnn
def test_chunks_with_burn_in_train_every_step_once_and_warm_up_inside_the_episode():
    traj = indexed_traj()
    seq_len, burn_in = 4, 2
    batches = list(traj.iterate_rnn(3, shuffle=False, seq_len=seq_len, burn_in=burn_in))
    trained = torch.zeros(traj.num_step)
    windows = []
    for b in batches:
        t, n = b["mask"].shape
        assert t <= seq_len + burn_in and n <= 3  # bounded by the batch, not by the Traj
        for j in range(n):
            real = b["step"][:, j][b["obs"][:, j].abs().sum(-1) > 0]
            m = b["mask"][: len(real), j]
            trained[real[m.bool()]] += 1
            assert not bool(b["mask"][len(real):, j].any())  # padding is never trained
            windows.append((real.tolist(), m.tolist()))
    assert torch.equal(trained, torch.ones(traj.num_step))
    # episode 1 (steps 5..16, 12 steps): chunks [5, 9), [9, 13) after 2 burn-in steps, [13, 17) after 2
    assert windows[:2] == [([0, 1, 2, 3], [1.0] * 4), ([2, 3, 4], [0.0, 0.0, 1.0])]
    assert windows[2:5] == [
        (list(range(5, 9)), [1.0] * 4),
        (list(range(7, 13)), [0.0, 0.0] + [1.0] * 4),
        (list(range(11, 17)), [0.0, 0.0] + [1.0] * 4),
    ]
    assert windows[5] == ([17], [1.0])  # a one-step episode: one chunk, nothing to burn in
    assert windows[7] == ([20, 21, 22, 23, 24], [0.0, 0.0, 1.0, 1.0, 1.0])  # the short last chunk of episode 3
    assert len(windows) == 8 and [len(b["mask"][0]) for b in batches] == [3, 3, 2]  # last partial batch kept


def test_chunk_batches_carry_their_episodes_columns_and_the_stored_state_at_their_start():
    traj = indexed_traj()
    traj = traj.with_columns(hs=torch.randn(traj.num_step, 6, generator=torch.Generator().manual_seed(0)))
    for b in traj.iterate_rnn(2, epoch=2, generator=1, seq_len=3, burn_in=1):
        first = b["step"][0]
        assert torch.equal(b["hs"][0], traj["hs"][first])
        epi = torch.searchsorted(traj.bounds, first, right=True) - 1
        assert torch.equal(b["terminated"], traj.epi_col("terminated")[epi])


def test_whole_episode_batches_are_unchanged_by_the_chunk_options():
    traj = indexed_traj()
    a = list(traj.iterate_rnn(2, generator=3))
    b = list(traj.iterate_rnn(2, generator=3, seq_len=None, burn_in=0))
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        assert all(torch.equal(x[k], y[k]) for k in x)
        epis = torch.searchsorted(traj.bounds, x["step"][0], right=True) - 1
        assert torch.equal(x["mask"].sum(0), traj.epi_lens[epis].float())


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"seq_len": 4, "burn_in": 4}, ValueError, r"burn_in \(4\) must be < seq_len \(4\)"),
        ({"burn_in": 2}, ValueError, "burn_in=2 needs seq_len"),
        ({"seq_len": 0}, ValueError, "seq_len must be >= 1, got 0"),
        ({"seq_len": 2.5}, TypeError, "seq_len"),
    ],
)
def test_iterate_rnn_names_bad_sequence_arguments_at_the_call(kwargs, err, match):
    with pytest.raises(err, match=match):
        indexed_traj().iterate_rnn(2, **kwargs)


# ---------------------------------------------------------------------- compute_vs
@pytest.mark.parametrize("chunk_size", [1, 8, 65536])
def test_recurrent_compute_vs_runs_whole_episodes_and_bootstraps_with_the_episodes_state(chunk_size):
    traj, vf = make_traj(LENS, TERM, seed=2), rnn_vf()
    out = ef.compute_vs(traj, vf, chunk_size=chunk_size)
    for e in range(traj.num_epi):
        ep = traj.epi_view(e)
        ref = step_values(vf, torch.cat([ep["obs"], ep["final_obs"][None]]))
        torch.testing.assert_close(out["vs"][traj.bounds[e]:traj.bounds[e + 1]], ref[:-1], rtol=1e-5, atol=1e-6)
        expected_final = torch.tensor(0.0) if TERM[e] else ref[-1]
        torch.testing.assert_close(out.epi_col("final_vs")[e], expected_final, rtol=1e-5, atol=1e-6)
    assert "vs" not in traj and "final_vs" not in traj.epi  # pure


def test_recurrent_compute_vs_refuses_continued_pieces():
    traj = make_traj(LENS, TERM)
    traj = traj.with_epi_columns(continued=torch.tensor([False, True, False, False]))
    with pytest.raises(ValueError, match="episode 1 continues an episode of an earlier sampler call"):
        ef.compute_vs(traj, rnn_vf())


# ---------------------------------------------------------------------- compute_hs, h_masks
def sampled_traj(continuing: bool) -> tuple[tk.Traj, tk.CategoricalPol]:
    torch.manual_seed(0)
    env = tk.GymEnv("CartPoleNoVel-v1")
    pol = tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.gru(4, 2, core_size=6))
    with tk.EpiSampler("CartPoleNoVel-v1", pol, num_envs_per_worker=2, seed=1, continuing=continuing) as s:
        epis = [e for _ in range(3) for e in s.sample(pol, max_steps=30)]
    return tk.Traj.from_epis(epis), pol


@pytest.mark.parametrize("continuing", [False, True])
def test_compute_hs_recomputes_the_states_the_sampler_stored(continuing):
    traj, pol = sampled_traj(continuing)
    if continuing:
        assert bool(traj.epi_col("continued").any())
    stored = traj["hs"].clone()
    out = ef.compute_hs(traj, pol, chunk_size=40)  # continued pieces start from the stored hs at their first step
    assert out["hs"] is not traj["hs"]
    torch.testing.assert_close(out["hs"], stored, rtol=1e-5, atol=1e-6)
    again = ef.compute_hs(traj, pol)
    torch.testing.assert_close(again["hs"], out["hs"], rtol=1e-5, atol=1e-6)
    assert torch.equal(traj["hs"], stored)  # pure: the input Traj is untouched
    other = ef.compute_hs(traj.with_columns(hs=torch.zeros_like(stored)), pol, key="hs")
    if continuing:  # a continued piece really starts from the stored state
        assert not torch.allclose(other["hs"], stored)


def test_compute_hs_after_a_policy_update_gives_new_states_and_leaves_the_stored_ones():
    traj, pol = sampled_traj(False)
    stored = traj["hs"].clone()
    with torch.no_grad():
        for p in pol.parameters():
            p.add_(0.1)
    out = ef.compute_hs(traj, pol)
    assert not torch.allclose(out["hs"], stored) and torch.equal(traj["hs"], stored)
    assert torch.equal(out["hs"][traj.first_idx()], torch.zeros(traj.num_epi, 6))
    with pytest.raises(TypeError, match="compute_hs needs a recurrent model"):
        ef.compute_hs(traj, tk.CategoricalPol.for_env(tk.GymEnv("CartPole-v1")))


def test_h_masks_do_not_reset_a_continued_piece():
    traj, _ = sampled_traj(True)
    masks = ef.compute_h_masks(traj)["h_masks"]
    cont = traj.epi_col("continued")
    assert torch.equal(masks[traj.first_idx()], (~cont).float())
    assert float(masks.sum()) == float((~cont).sum())
