"""Estimators (``trajkit.ef``) against slow, obviously-correct per-step reference loops.

Every reference below walks one episode at a time, one step at a time, in float64,
reading the episode's raw arrays back from the Traj with ``epi_view``. The oracle tests
of returns, GAE and n-step returns run on both layers: the Traj estimator and the bare
tensor kernel it wraps (``layer`` = ``"traj"`` / ``"kernel"``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from epi_factories import episode_specs, linear_vf, make_traj, traj_from_specs, unit_factors
from hypothesis import given, settings
from hypothesis import strategies as st

import trajkit as tk
from trajkit import ef

SETTINGS = settings(max_examples=40, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


# ---------------------------------------------------------------------- references
def episodes(traj: tk.Traj) -> list[dict]:
    """Each episode's columns as float64 numpy arrays (``terminated`` as bool)."""
    out = []
    for e in range(traj.num_epi):
        view = traj.epi_view(e)
        out.append({k: (bool(v) if v.dtype == torch.bool else v.double().numpy()) for k, v in view.items()})
    return out


def value_after(epi: dict, vf, bootstrap: bool = True) -> float:
    """V after the last step: 0 at a terminal state, V(final_obs) at a cut-off."""
    if epi["terminated"] or not bootstrap:
        return 0.0
    with torch.no_grad():
        return float(vf(torch.as_tensor(epi["final_obs"], dtype=torch.float32)[None]))


def ref_rets(traj: tk.Traj, vf, gamma: float, bootstrap: bool = True) -> np.ndarray:
    out = []
    for epi in episodes(traj):
        g = value_after(epi, vf, bootstrap)
        rets = np.zeros(len(epi["rews"]))
        for t in reversed(range(len(epi["rews"]))):
            g = epi["rews"][t] + gamma * g
            rets[t] = g
        out.append(rets)
    return np.concatenate(out)


def ref_vs(traj: tk.Traj, vf) -> np.ndarray:
    with torch.no_grad():
        return np.array([float(vf(traj["obs"][i : i + 1])) for i in range(traj.num_step)])


def ref_advs(traj: tk.Traj, vf, gamma: float, lam: float) -> np.ndarray:
    out = []
    for epi in episodes(traj):
        with torch.no_grad():
            vs = [float(vf(torch.as_tensor(o, dtype=torch.float32)[None])) for o in epi["obs"]]
            v_end = value_after(epi, vf)
        t_len = len(epi["rews"])
        advs = np.zeros(t_len)
        running = 0.0
        for t in reversed(range(t_len)):
            next_v = vs[t + 1] if t + 1 < t_len else v_end
            delta = epi["rews"][t] + gamma * next_v - vs[t]
            running = delta + gamma * lam * running
            advs[t] = running
        out.append(advs)
    return np.concatenate(out)


def ref_next_obs(traj: tk.Traj) -> tuple[np.ndarray, np.ndarray]:
    next_obs, terminals = [], []
    for epi in episodes(traj):
        t_len = len(epi["rews"])
        for t in range(t_len):
            last = t == t_len - 1
            next_obs.append(epi["final_obs"] if last else epi["obs"][t + 1])
            terminals.append(1.0 if (last and epi["terminated"]) else 0.0)
    return np.stack(next_obs), np.array(terminals)


def ref_nstep(traj: tk.Traj, gamma: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rets, nxt, discounts = [], [], []
    for epi in episodes(traj):
        t_len = len(epi["rews"])
        for t in range(t_len):
            m = min(n, t_len - t)
            rets.append(sum(gamma**k * epi["rews"][t + k] for k in range(m)))
            reaches_end = t + m == t_len
            nxt.append(epi["final_obs"] if reaches_end else epi["obs"][t + m])
            discounts.append(0.0 if (reaches_end and epi["terminated"]) else gamma**m)
    return np.array(rets), np.stack(nxt), np.array(discounts)


def close(actual: torch.Tensor, expected: np.ndarray, tol: float = 1e-4) -> None:
    """float32 results vs float64 references, tolerance relative to the magnitude."""
    np.testing.assert_allclose(actual.double().numpy(), expected, rtol=tol, atol=tol)


# ---------------------------------------------------------------------- compute_vs
@SETTINGS
@given(specs=episode_specs, seed=SEEDS)
def test_compute_vs_matches_per_step_values_and_final_values(specs, seed):
    traj = traj_from_specs(specs, seed)
    vf = linear_vf(seed=seed % 1000)
    out = ef.compute_vs(traj, vf)
    close(out["vs"], ref_vs(traj, vf))
    expected_final = [value_after(epi, vf) for epi in episodes(traj)]
    close(out.epi_col("final_vs"), np.array(expected_final))


def test_compute_vs_truncated_gets_v_of_final_obs_terminated_gets_zero():
    traj = make_traj([3, 2, 4], [False, True, False], seed=1)
    vf = linear_vf()
    final_vs = ef.compute_vs(traj, vf).epi_col("final_vs")
    with torch.no_grad():
        v_final = vf(traj.epi_col("final_obs"))
    assert final_vs[1] == 0.0
    torch.testing.assert_close(final_vs[[0, 2]], v_final[[0, 2]])


def test_compute_vs_small_chunks_match_one_pass():
    traj = make_traj([5, 1, 7, 2], [False, True, False, False], seed=2)
    vf = linear_vf()
    a, b = ef.compute_vs(traj, vf), ef.compute_vs(traj, vf, chunk_size=3)
    torch.testing.assert_close(a["vs"], b["vs"])
    torch.testing.assert_close(a.epi_col("final_vs"), b.epi_col("final_vs"))


# ---------------------------------------------------------------------- the two layers
def terminated(traj: tk.Traj) -> torch.Tensor:
    return traj.epi_col("terminated")


RETS = {
    "traj": lambda t, gamma, bootstrap=True: ef.compute_rets(t, gamma, bootstrap=bootstrap)["rets"],
    "kernel": lambda t, gamma, bootstrap=True: ef.discounted_returns(
        t["rews"],
        t.epi_col("final_vs") if bootstrap else torch.zeros(t.num_epi),
        terminated(t),
        t.bounds,
        gamma=gamma,
    ),
}
ADVS = {
    "traj": lambda t, gamma, lam: ef.compute_advs(t, gamma, lam)["advs"],
    "kernel": lambda t, gamma, lam: ef.gae(
        t["rews"], t["vs"], t.epi_col("final_vs"), terminated(t), t.bounds, gamma=gamma, lam=lam
    ),
}


def nstep_via_kernel(t: tk.Traj, gamma: float, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = ef.nstep_returns(t["rews"], terminated(t), t.bounds, gamma=gamma, n=n)
    final_obs = t.epi_col("final_obs")[t.epi_ids()]
    nxt = torch.where(k.reaches_end[:, None], final_obs, t["obs"][k.next_idx.clamp(max=t.num_step - 1)])
    return k.rets, nxt, k.discounts


NSTEP = {
    "traj": lambda t, gamma, n: tuple(
        ef.compute_nstep_rets(t, gamma, n)[c] for c in ("nstep_rets", "nstep_next_obs", "nstep_discounts")
    ),
    "kernel": nstep_via_kernel,
}
LAYERS = pytest.mark.parametrize("layer", ["traj", "kernel"])


# ---------------------------------------------------------------------- compute_rets

@LAYERS
@SETTINGS
@given(specs=episode_specs, seed=SEEDS, gamma=unit_factors, bootstrap=st.booleans())
def test_compute_rets_matches_reference(layer, specs, seed, gamma, bootstrap):
    traj = traj_from_specs(specs, seed)
    vf = linear_vf(seed=seed % 1000)
    rets = RETS[layer](ef.compute_vs(traj, vf), gamma, bootstrap)
    close(rets, ref_rets(traj, vf, gamma, bootstrap))


@LAYERS
def test_compute_rets_long_ragged_episodes(layer):
    """Many long episodes with gamma near 1: nothing leaks across episode boundaries."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=60).tolist()
    traj = make_traj(lengths, rng.random(60) < 0.5, seed=3)
    vf = linear_vf()
    for gamma in (0.999, 1.0):
        close(RETS[layer](ef.compute_vs(traj, vf), gamma), ref_rets(traj, vf, gamma), tol=1e-4)


# ---------------------------------------------------------------------- compute_advs
@LAYERS
@SETTINGS
@given(specs=episode_specs, seed=SEEDS, gamma=unit_factors, lam=unit_factors)
def test_compute_advs_matches_reference_gae(layer, specs, seed, gamma, lam):
    traj = traj_from_specs(specs, seed)
    vf = linear_vf(seed=seed % 1000)
    close(ADVS[layer](ef.compute_vs(traj, vf), gamma, lam), ref_advs(traj, vf, gamma, lam))


@LAYERS
def test_gae_with_lam_one_is_return_minus_value(layer):
    traj = ef.compute_vs(make_traj([4, 1, 6], [True, False, False], seed=4), linear_vf())
    advs, rets = ADVS[layer](traj, 0.9, 1.0), RETS[layer](traj, 0.9)
    torch.testing.assert_close(advs, rets - traj["vs"], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------- centerize_advs
@SETTINGS
@given(specs=episode_specs, seed=SEEDS)
def test_centerize_advs_matches_formula(specs, seed):
    traj = ef.compute_advs(ef.compute_vs(traj_from_specs(specs, seed), linear_vf()), 0.99, 0.95)
    advs = traj["advs"].double().numpy()
    eps = 1e-8
    std = advs.std(ddof=1) if len(advs) > 1 else 0.0  # torch.std's unbiased estimate
    expected = (advs - advs.mean()) / (std + eps)
    out = ef.centerize_advs(traj, eps)["advs"]
    assert torch.isfinite(out).all()
    # tolerance scaled by the normalization (tiny stds amplify float32 rounding)
    np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-4 * max(1.0, abs(expected).max()))


# ---------------------------------------------------------------------- h_masks, next_obs
@SETTINGS
@given(specs=episode_specs, seed=SEEDS)
def test_compute_h_masks_marks_each_first_step(specs, seed):
    traj = traj_from_specs(specs, seed)
    expected = np.concatenate([[1.0] + [0.0] * (t - 1) for t, _ in specs])
    close(ef.compute_h_masks(traj)["h_masks"], expected)


@SETTINGS
@given(specs=episode_specs, seed=SEEDS)
def test_add_next_obs_uses_real_final_obs(specs, seed):
    traj = traj_from_specs(specs, seed)
    out = ef.add_next_obs(traj)
    next_obs, terminals = ref_next_obs(traj)
    close(out["next_obs"], next_obs, tol=0)
    close(out["terminals"], terminals, tol=0)


# ---------------------------------------------------------------------- n-step, priorities
@LAYERS
@SETTINGS
@given(specs=episode_specs, seed=SEEDS, gamma=unit_factors, n=st.integers(1, 5))
def test_compute_nstep_rets_matches_reference(layer, specs, seed, gamma, n):
    traj = traj_from_specs(specs, seed)
    rets, nxt, discounts = NSTEP[layer](traj, gamma, n)
    ref = ref_nstep(traj, gamma, n)
    close(rets, ref[0])
    close(nxt, ref[1], tol=0)
    close(discounts, ref[2])


@SETTINGS
@given(specs=episode_specs, seed=SEEDS, gamma=unit_factors)
def test_compute_pris_matches_reference(specs, seed, gamma):
    traj = ef.add_next_obs(traj_from_specs(specs, seed))
    w_q = torch.tensor([0.3, -1.2, 0.7, 0.5, -0.4])  # Q(s, a) = w . [s, a]
    w_q_targ = torch.tensor([1.0, 0.2, -0.3, 0.8, 0.1])

    def qf(obs, acs):
        return torch.cat([obs, acs], -1) @ w_q

    def target_qf(obs, acs):
        return torch.cat([obs, acs], -1) @ w_q_targ

    def target_pol(obs):
        return torch.tanh(obs[:, :2])

    out = ef.compute_pris(traj, qf, target_qf, target_pol, gamma, eps=1e-6)
    expected = []
    for i in range(traj.num_step):
        s, a, r = traj["obs"][i], traj["acs"][i], float(traj["rews"][i])
        s2, done = traj["next_obs"][i], float(traj["terminals"][i])
        q_next = float(target_qf(s2[None], target_pol(s2[None])))
        expected.append(abs(r + gamma * (1 - done) * q_next - float(qf(s[None], a[None]))) + 1e-6)
    close(out["pris"], np.array(expected))


# ---------------------------------------------------------------------- one-step episodes
@LAYERS
def test_one_step_episodes_terminal_and_truncated(layer):
    traj = make_traj([1, 1, 1], [True, False, True], seed=5)
    vf = linear_vf()
    traj_v = ef.compute_vs(traj, vf)
    close(RETS[layer](traj_v, 0.9), ref_rets(traj, vf, 0.9))
    close(ADVS[layer](traj_v, 0.9, 0.8), ref_advs(traj, vf, 0.9, 0.8))


# ---------------------------------------------------------------------- purity
def snapshot(traj: tk.Traj) -> tuple:
    """Everything observable about a Traj: column dicts (keys and tensor identity) and values."""
    data, epi = traj.data, traj.epi
    return (
        {k: (id(v), v.clone()) for k, v in data.items()},
        {k: (id(v), v.clone()) for k, v in epi.items()},
        traj.bounds.clone(),
    )


def assert_unchanged(traj: tk.Traj, snap: tuple) -> None:
    data, epi, bounds = snap
    for cols, now in ((data, traj.data), (epi, traj.epi)):
        assert set(now) == set(cols)
        for k, (ident, value) in cols.items():
            assert id(now[k]) == ident, f"column {k!r} was replaced"
            assert torch.equal(now[k], value), f"column {k!r} was modified in place"
    assert torch.equal(traj.bounds, bounds)


ESTIMATORS = {
    "compute_vs": lambda t: ef.compute_vs(t, linear_vf()),
    "compute_rets": lambda t: ef.compute_rets(t, 0.99),
    "compute_advs": lambda t: ef.compute_advs(t, 0.99, 0.95),
    "centerize_advs": ef.centerize_advs,
    "compute_h_masks": ef.compute_h_masks,
    "add_next_obs": ef.add_next_obs,
    "compute_nstep_rets": lambda t: ef.compute_nstep_rets(t, 0.9, 3),
    "compute_pris": lambda t: ef.compute_pris(
        t,
        lambda o, a: o.sum(-1) + a.sum(-1),
        lambda o, a: o.sum(-1) - a.sum(-1),
        lambda o: o[:, :2],
        0.9,
    ),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimator_does_not_mutate_its_input(name):
    base = make_traj([4, 1, 3], [False, True, False], seed=6)
    # a Traj that already has every column the estimators read (including ones they overwrite)
    traj = ef.add_next_obs(ef.compute_advs(ef.compute_rets(ef.compute_vs(base, linear_vf()), 0.9), 0.9, 0.9))
    snap = snapshot(traj)
    out = ESTIMATORS[name](traj)
    assert out is not traj
    assert_unchanged(traj, snap)
    again = ESTIMATORS[name](traj)
    for k in out.keys():
        assert torch.equal(out[k], again[k]), f"re-running {name} changed column {k!r}"


def test_estimators_share_untouched_columns():
    traj = make_traj([3, 2], [True, False])
    out = ef.compute_h_masks(traj)
    for k in traj.keys():
        assert out[k] is traj[k]
