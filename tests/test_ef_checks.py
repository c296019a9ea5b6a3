"""Bad input to the estimators is a clear error at the call; edge cases have a documented answer.

Missing columns say what to run (``ef.require``), hyper-parameters are checked
(``gamma``/``lam`` in [0, 1], integer ``n``/``chunk_size`` >= 1, ``eps`` >= 0), value
functions must return ``(B,)`` or ``(B, 1)``, an empty Traj gives empty columns without
calling any model, and ``centerize_advs`` never returns NaN.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from epi_factories import OBS_DIM, linear_vf, make_traj

import trajkit as tk
from trajkit import ef


def full_traj() -> tk.Traj:
    """A truncated, a terminated and a one-step episode, with every column an estimator reads."""
    traj = ef.compute_vs(make_traj([4, 2, 1], [False, True, False], seed=1), linear_vf())
    return ef.add_next_obs(ef.compute_advs(ef.compute_rets(traj, 0.9), 0.9, 0.9))


def q(obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
    return obs.sum(-1) + acs.sum(-1)


def first_two(obs: torch.Tensor) -> torch.Tensor:
    return obs[:, :2]


# ---------------------------------------------------------------------- missing columns
def test_compute_advs_without_vs_says_run_compute_vs_first():
    traj = make_traj([3, 2], [False, True])
    with pytest.raises(tk.MissingColumnError, match=r"'vs'.*run ef\.compute_vs") as err:
        ef.compute_advs(traj, 0.99, 0.95)
    assert "ef.compute_vs" in err.value.hint  # the hint comes from ef, not from the data layer


def test_require_names_step_and_episode_columns_and_the_fix():
    traj = make_traj([3, 2], [False, True])
    ef.require(traj, "obs", "rews", "terminated", "final_obs")  # all there: no error
    with pytest.raises(tk.MissingColumnError, match=r"no step column 'next_obs'.*ef\.add_next_obs"):
        ef.require(traj, "obs", "next_obs")
    with pytest.raises(tk.MissingColumnError, match=r"no episode column 'final_vs'.*ef\.compute_vs"):
        ef.require(traj, "final_vs")
    with pytest.raises(tk.MissingColumnError, match=r"no step column 'mean'") as err:
        ef.require(traj, "mean")
    assert err.value.hint == ""


# ---------------------------------------------------------------------- hyper-parameters
NAN, INF = math.nan, math.inf
#: (bad value, the error it must raise): TypeError for a non-number, ValueError for a bad number
BAD_UNIT = [(1.0001, ValueError), (1.5, ValueError), (-0.1, ValueError), (NAN, ValueError), (INF, ValueError),
            (None, TypeError), ("0.9", TypeError), (True, TypeError)]
BAD_COUNT = [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError),
             (None, TypeError)]
BAD_EPS = [(-1e-3, ValueError), (NAN, ValueError), (INF, ValueError), (None, TypeError), ("1e-8", TypeError)]

CALLS = {
    "compute_rets gamma": (lambda t, x: ef.compute_rets(t, x), BAD_UNIT),
    "compute_advs gamma": (lambda t, x: ef.compute_advs(t, x, 0.95), BAD_UNIT),
    "compute_advs lam": (lambda t, x: ef.compute_advs(t, 0.99, x), BAD_UNIT),
    "compute_nstep_rets gamma": (lambda t, x: ef.compute_nstep_rets(t, x, 3), BAD_UNIT),
    "compute_nstep_rets n": (lambda t, x: ef.compute_nstep_rets(t, 0.99, x), BAD_COUNT),
    "compute_vs chunk_size": (lambda t, x: ef.compute_vs(t, linear_vf(), chunk_size=x), BAD_COUNT),
    "compute_pris gamma": (lambda t, x: ef.compute_pris(t, q, q, first_two, x), BAD_UNIT),
    "compute_pris eps": (lambda t, x: ef.compute_pris(t, q, q, first_two, 0.99, eps=x), BAD_EPS),
    "centerize_advs eps": (lambda t, x: ef.centerize_advs(t, eps=x), BAD_EPS),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_bad_hyper_parameter_is_a_clear_error_naming_it(call):
    run, bad_values = CALLS[call]
    name = call.split()[1]
    traj = full_traj()
    for bad, error in bad_values:
        with pytest.raises(error, match=rf"^{name} must ") as err:
            run(traj, bad)
        assert type(err.value) is error, f"{call}={bad!r}: {err.value!r}"


def test_discount_cumsum_refuses_a_discount_above_one():
    """Above 1 the whole-array filter overflows: NaN across episode boundaries, finite episodes."""
    lens = [2000] * 50
    bounds = torch.tensor(np.concatenate([[0], np.cumsum(lens)]))
    x = np.ones(sum(lens))
    with pytest.raises(ValueError, match=r"discount must be <= 1\.0, got 1\.01"):
        ef.discount_cumsum(x, 1.01, bounds)
    with pytest.raises(ValueError, match="discount must be finite"):
        ef.discount_cumsum(x, math.nan, bounds)
    assert np.isfinite(ef.discount_cumsum(x, 1.0, bounds)).all()


# ---------------------------------------------------------------------- value-function shapes
@pytest.mark.parametrize("shape", [(2,), (1, 3), (1, 1, 1), (3,)])
def test_compute_vs_refuses_values_of_the_wrong_shape(shape):
    traj = make_traj([3, 1], [False, True], seed=2)  # 4 observations + 1 final observation

    def vf(obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(obs), *shape)

    b = traj.num_step + 1
    got = str((b, *shape))
    with pytest.raises(ValueError, match=rf"vf returned values of shape {_re(got)} .* needs \({b},\) or \({b}, 1\)"):
        ef.compute_vs(traj, vf)


def _re(s: str) -> str:
    return s.replace("(", r"\(").replace(")", r"\)")


def test_compute_vs_accepts_b_and_b_by_1_values():
    traj = make_traj([3, 1], [False, True], seed=2)
    vf = linear_vf()
    flat = ef.compute_vs(traj, vf)
    column = ef.compute_vs(traj, lambda obs: vf(obs)[:, None])
    torch.testing.assert_close(flat["vs"], column["vs"])
    torch.testing.assert_close(flat.epi_col("final_vs"), column.epi_col("final_vs"))


def test_compute_pris_refuses_q_values_of_the_wrong_shape():
    traj = full_traj()

    def wide_q(obs: torch.Tensor, acs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(obs), 2)

    with pytest.raises(ValueError, match=r"qf returned values of shape \(7, 2\)"):
        ef.compute_pris(traj, wide_q, q, first_two, 0.9)
    with pytest.raises(ValueError, match=r"target_qf returned values of shape \(7, 2\)"):
        ef.compute_pris(traj, q, wide_q, first_two, 0.9)


# ---------------------------------------------------------------------- empty Traj
def empty_traj() -> tk.Traj:
    """Zero episodes: ``bounds = [0]``, every column with 0 rows."""
    data = {"obs": torch.zeros(0, OBS_DIM), "acs": torch.zeros(0, 2), "rews": torch.zeros(0)}
    epi = {
        "terminated": torch.zeros(0, dtype=torch.bool),
        "truncated": torch.zeros(0, dtype=torch.bool),
        "final_obs": torch.zeros(0, OBS_DIM),
    }
    return tk.Traj(data, epi, torch.tensor([0]))


def refuse_empty(*inputs: torch.Tensor) -> torch.Tensor:
    """A model that, like many real ones, cannot take an empty batch."""
    if len(inputs[0]) == 0:
        raise RuntimeError("called on an empty batch")
    return inputs[0].sum(-1)


def test_empty_traj_gives_empty_columns_without_calling_models():
    vf = tk.DeterministicSVfunc(gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), tk.nets.mlp(OBS_DIM, 1, hidden=(8,)))
    empty = empty_traj()
    with_vs = ef.compute_vs(empty, vf)  # a trajkit value function crashed on 0 rows before
    assert with_vs["vs"].shape == (0,) and with_vs.epi_col("final_vs").shape == (0,)
    assert ef.compute_vs(empty, refuse_empty)["vs"].shape == (0,)
    assert ef.compute_rets(with_vs, 0.99)["rets"].shape == (0,)
    with_advs = ef.compute_advs(with_vs, 0.99, 0.95)
    assert with_advs["advs"].shape == (0,)
    assert ef.centerize_advs(with_advs)["advs"].shape == (0,)
    assert ef.compute_h_masks(empty)["h_masks"].shape == (0,)
    with_next = ef.add_next_obs(empty)
    assert with_next["next_obs"].shape == (0, OBS_DIM) and with_next["terminals"].shape == (0,)
    nstep = ef.compute_nstep_rets(empty, 0.99, 3)
    assert nstep["nstep_rets"].shape == (0,) and nstep["nstep_next_obs"].shape == (0, OBS_DIM)
    pris = ef.compute_pris(with_next, refuse_empty, refuse_empty, refuse_empty, 0.99)["pris"]
    assert pris.shape == (0,)


# ---------------------------------------------------------------------- centerize_advs
def test_centerize_advs_one_step_or_zero_spread_is_never_nan():
    one = tk.Traj({"advs": torch.tensor([2.5])}, {}, torch.tensor([0, 1]))
    for eps in (0.0, 1e-8):
        out = ef.centerize_advs(one, eps=eps)["advs"]
        assert torch.equal(out, torch.zeros(1)), f"eps={eps}: {out}"
    equal = tk.Traj({"advs": torch.full((4,), 0.5)}, {}, torch.tensor([0, 4]))
    assert torch.equal(ef.centerize_advs(equal, eps=0.0)["advs"], torch.zeros(4))
