"""The bare-tensor kernels of ``trajkit.ef``: their shape contract, checks and edge cases.

Their values are checked against slow references in ``test_ef.py`` and
``test_offpolicy_ef.py`` (parametrized over the kernel and the Traj layer); this file
covers what only the kernels have: plain tensors in, without a Traj.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajkit import ef

# two episodes of 3 and 2 steps: the first cut off (bootstraps from 10), the second terminated
REWS = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
VS = torch.tensor([0.5, -0.5, 1.0, 2.0, 0.0])
BOUNDS = torch.tensor([0, 3, 5])
TERMINATED = torch.tensor([False, True])
FINAL_VS = torch.tensor([10.0, float("nan")])  # NaN where terminated: never read


def loop_rets(gamma: float) -> list[float]:
    out, boot = [], [10.0, 0.0]
    for e in range(2):
        g, seg = boot[e], []
        for t in reversed(range(int(BOUNDS[e]), int(BOUNDS[e + 1]))):
            g = float(REWS[t]) + gamma * g
            seg.append(g)
        out += seg[::-1]
    return out


def test_discounted_returns_bootstrap_only_at_cut_offs_and_ignore_final_vs_at_terminals():
    rets = ef.discounted_returns(REWS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9)
    np.testing.assert_allclose(rets.numpy(), loop_rets(0.9), rtol=1e-6)


def test_gae_one_step_td_errors_at_lam_zero():
    advs = ef.gae(REWS, VS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9, lam=0.0)
    next_vs = torch.tensor([-0.5, 1.0, 10.0, 0.0, 0.0])
    torch.testing.assert_close(advs, REWS + 0.9 * next_vs - VS)


def test_nstep_returns_fields():
    k = ef.nstep_returns(REWS, TERMINATED, BOUNDS, gamma=0.5, n=2)
    torch.testing.assert_close(k.rets, torch.tensor([1 + 0.5 * 2, 2 + 0.5 * 3, 3.0, 4 + 0.5 * 5, 5.0]))
    torch.testing.assert_close(k.discounts, torch.tensor([0.25, 0.25, 0.5, 0.0, 0.0]))
    assert k.next_idx.tolist() == [2, 3, 3, 5, 5]
    assert k.reaches_end.tolist() == [False, True, True, True, True]


def test_results_follow_rews_device_and_float_dtype():
    assert ef.gae(REWS.double(), VS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9, lam=0.9).dtype == torch.float64
    int_rets = ef.discounted_returns(REWS.long(), FINAL_VS, TERMINATED, BOUNDS, gamma=0.9)
    assert int_rets.dtype == torch.float32 and int_rets.device == REWS.device


def test_kernels_do_not_modify_their_inputs():
    inputs = (REWS, VS, FINAL_VS, TERMINATED, BOUNDS)
    before = [x.clone() for x in inputs]
    ef.discounted_returns(REWS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9)
    ef.gae(REWS, VS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9, lam=0.9)
    ef.nstep_returns(REWS, TERMINATED, BOUNDS, gamma=0.9, n=2)
    ef.discount_cumsum(REWS, 0.9, BOUNDS)
    for x, b in zip(inputs, before, strict=True):
        torch.testing.assert_close(x, b, rtol=0, atol=0, equal_nan=True)


def test_zero_steps_give_empty_results():
    empty, no_epi, bounds = torch.zeros(0), torch.zeros(0, dtype=torch.bool), torch.tensor([0])
    assert ef.discounted_returns(empty, empty, no_epi, bounds, gamma=0.9).shape == (0,)
    assert ef.gae(empty, empty, empty, no_epi, bounds, gamma=0.9, lam=0.9).shape == (0,)
    k = ef.nstep_returns(empty, no_epi, bounds, gamma=0.9, n=3)
    assert k.rets.shape == k.discounts.shape == k.next_idx.shape == k.reaches_end.shape == (0,)
    assert ef.discount_cumsum(empty, 0.9, bounds).shape == (0,)


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        (torch.tensor([0, 3, 4]), r"end at N=5, got 0 \.\.\. 4"),
        (torch.tensor([1, 3, 5]), r"start at 0 and end at N=5, got 1"),
        (torch.tensor([0, 3, 3, 5]), r"strictly increasing: episode 1 has no steps"),
        (torch.tensor([[0, 5]]), r"1-D integer tensor of shape \(E \+ 1,\), got shape \(1, 2\)"),
        (torch.tensor([0.0, 5.0]), r"1-D integer tensor .* float"),
    ],
)
def test_bad_bounds_are_named(bounds, match):
    e = len(bounds) - 1 if bounds.ndim == 1 else 1
    with pytest.raises(ValueError, match=match):
        ef.discounted_returns(REWS, torch.zeros(e), torch.zeros(e, dtype=torch.bool), bounds, gamma=0.9)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"vs must have shape \(5,\) \(one value per step\), got \(5, 1\)"):
        ef.gae(REWS, VS[:, None], FINAL_VS, TERMINATED, BOUNDS, gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match=r"rews must have shape \(N,\) .* got \(5, 1\)"):
        ef.discounted_returns(REWS[:, None], FINAL_VS, TERMINATED, BOUNDS, gamma=0.9)
    with pytest.raises(ValueError, match=r"final_vs must have shape \(2,\) \(one value per episode\), got \(5,\)"):
        ef.gae(REWS, VS, VS, TERMINATED, BOUNDS, gamma=0.9, lam=0.9)
    with pytest.raises(ValueError, match=r"terminated must have shape \(2,\) .* got \(3,\)"):
        ef.nstep_returns(REWS, torch.zeros(3, dtype=torch.bool), BOUNDS, gamma=0.9, n=2)
    with pytest.raises(TypeError, match=r"rews must be a torch.Tensor of shape \(N,\), got list"):
        ef.discounted_returns([1.0, 2.0], FINAL_VS, TERMINATED, BOUNDS, gamma=0.9)  # type: ignore[arg-type]


def test_hyper_parameters_are_keyword_only_and_checked():
    with pytest.raises(TypeError):
        ef.gae(REWS, VS, FINAL_VS, TERMINATED, BOUNDS, 0.9, 0.9)  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"lam must be <= 1\.0, got 1\.2"):
        ef.gae(REWS, VS, FINAL_VS, TERMINATED, BOUNDS, gamma=0.9, lam=1.2)
    with pytest.raises(TypeError, match=r"n must be an integer, got 2\.0"):
        ef.nstep_returns(REWS, TERMINATED, BOUNDS, gamma=0.9, n=2.0)  # type: ignore[arg-type]
