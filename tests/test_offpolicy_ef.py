"""Off-policy estimators against per-step Python loops, with terminated and truncated endings.

n-step returns are checked on both layers: ``ef.compute_nstep_rets`` (Traj) and the
``ef.nstep_returns`` kernel it wraps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajkit import ef
from trajkit.traj import Traj


def make_traj(lens: list[int], terminated: list[bool], seed: int = 0) -> Traj:
    rng = np.random.default_rng(seed)
    epis = []
    for n, term in zip(lens, terminated, strict=True):
        epis.append({
            "obs": rng.normal(size=(n, 2)).astype(np.float32), "acs": rng.normal(size=(n, 1)).astype(np.float32),
            "rews": rng.normal(size=n).astype(np.float32), "terminated": term, "truncated": not term,
            "final_obs": rng.normal(size=2).astype(np.float32),
        })
    return Traj.from_epis(epis)


CASES = [([1], [True]), ([1], [False]), ([5, 3, 7], [True, False, True]), ([4, 6, 2, 1], [False, True, False, False])]


def loop_next_obs(traj: Traj) -> tuple[np.ndarray, np.ndarray]:
    nxt, term = [], []
    for e in range(traj.num_epi):
        v = traj.epi_view(e)
        t_len = len(v["rews"])
        for t in range(t_len):
            last = t == t_len - 1
            nxt.append((v["final_obs"] if last else v["obs"][t + 1]).numpy())
            term.append(float(last and bool(v["terminated"])))
    return np.array(nxt), np.array(term)


@pytest.mark.parametrize("lens,term", CASES)
def test_add_next_obs_never_crosses_episodes(lens, term):
    traj = make_traj(lens, term)
    out = ef.add_next_obs(traj)
    nxt, terminals = loop_next_obs(traj)
    np.testing.assert_array_equal(out["next_obs"].numpy(), nxt)
    np.testing.assert_array_equal(out["terminals"].numpy(), terminals)
    assert "next_obs" not in traj  # pure


def nstep_via_traj(traj: Traj, gamma: float, n: int) -> dict[str, torch.Tensor]:
    return ef.compute_nstep_rets(traj, gamma, n).data


def nstep_via_kernel(traj: Traj, gamma: float, n: int) -> dict[str, torch.Tensor]:
    """The bare-tensor kernel, with the next observations gathered as its docstring says."""
    k = ef.nstep_returns(traj["rews"], traj.epi_col("terminated"), traj.bounds, gamma=gamma, n=n)
    nxt = traj["obs"][k.next_idx.clamp(max=traj.num_step - 1)]
    nxt[k.reaches_end] = traj.epi_col("final_obs")[traj.epi_ids()[k.reaches_end]]
    return {"nstep_rets": k.rets, "nstep_next_obs": nxt, "nstep_discounts": k.discounts}


@pytest.mark.parametrize("layer", [nstep_via_traj, nstep_via_kernel], ids=["traj", "kernel"])
@pytest.mark.parametrize("lens,term", CASES)
@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_nstep_rets_match_a_per_step_loop(lens, term, n, layer):
    gamma = 0.9
    traj = make_traj(lens, term, seed=n)
    out = layer(traj, gamma, n)
    rets, nxt, disc = [], [], []
    for e in range(traj.num_epi):
        v = traj.epi_view(e)
        r = v["rews"].double().numpy()
        t_len = len(r)
        for t in range(t_len):
            m = min(n, t_len - t)
            rets.append(sum(gamma**k * r[t + k] for k in range(m)))
            reaches_end = t + m == t_len
            nxt.append((v["final_obs"] if reaches_end else v["obs"][t + m]).numpy())
            disc.append(0.0 if reaches_end and bool(v["terminated"]) else gamma**m)
    np.testing.assert_allclose(out["nstep_rets"].numpy(), rets, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["nstep_next_obs"].numpy(), np.array(nxt))
    np.testing.assert_allclose(out["nstep_discounts"].numpy(), disc, rtol=1e-6)
    # n = 1 reduces to the one-step transition
    if n == 1:
        one = ef.add_next_obs(traj)
        np.testing.assert_array_equal(out["nstep_next_obs"].numpy(), one["next_obs"].numpy())
        np.testing.assert_allclose(out["nstep_discounts"].numpy(), gamma * (1 - one["terminals"].numpy()), rtol=1e-6)
    with pytest.raises(ValueError):
        ef.compute_nstep_rets(traj, gamma, 0)


@pytest.mark.parametrize("lens,term", CASES)
def test_compute_pris_matches_a_per_step_loop(lens, term):
    gamma = 0.95
    traj = ef.add_next_obs(make_traj(lens, term))
    torch.manual_seed(0)
    qf_lin, targ_lin, pol_lin = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1), torch.nn.Linear(2, 1)

    def qf(o, a):
        return qf_lin(torch.cat([o, a], -1)).squeeze(-1)

    def targ_qf(o, a):
        return targ_lin(torch.cat([o, a], -1)).squeeze(-1)

    out = ef.compute_pris(traj, qf, targ_qf, pol_lin, gamma, eps=1e-3)
    expected = []
    with torch.no_grad():
        for e in range(traj.num_epi):
            v = traj.epi_view(e)
            t_len = len(v["rews"])
            for t in range(t_len):
                last = t == t_len - 1
                s2 = v["final_obs"] if last else v["obs"][t + 1]
                boot = 0.0 if last and bool(v["terminated"]) else float(targ_qf(s2[None], pol_lin(s2[None]))[0])
                y = float(v["rews"][t]) + gamma * boot
                expected.append(abs(y - float(qf(v["obs"][t][None], v["acs"][t][None])[0])) + 1e-3)
    np.testing.assert_allclose(out["pris"].numpy(), expected, rtol=1e-5, atol=1e-6)
