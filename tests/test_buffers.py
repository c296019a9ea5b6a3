"""Replay buffers: ring storage, O(new steps) insertion, sum-tree sampling and consistency."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from trajkit import ef
from trajkit.buffers import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from trajkit.traj import Traj


def make_traj(lens: list[int], start: float = 0.0, terminated: list[bool] | None = None) -> Traj:
    """Episodes whose obs count up from ``start``; obs[t] = (v, -v) so steps are identifiable."""
    terminated = terminated or [True] * len(lens)
    epis, v = [], start
    for n, term in zip(lens, terminated, strict=True):
        vals = v + np.arange(n + 1, dtype=np.float32)
        epis.append({
            "obs": np.stack([vals[:-1], -vals[:-1]], 1), "acs": vals[:-1, None].copy(), "rews": vals[:-1].copy(),
            "terminated": term, "truncated": not term, "final_obs": np.array([vals[-1], -vals[-1]]),
        })
        v += n + 1000
    return Traj.from_epis(epis)


def test_ring_keeps_last_capacity_steps_with_their_next_obs():
    buf = ReplayBuffer(5)
    assert len(buf) == 0 and buf.keys() == []
    t1 = make_traj([3], terminated=[False])
    buf.add(t1)
    assert len(buf) == 3 and set(buf.keys()) >= {"obs", "acs", "rews", "next_obs", "terminals"}
    t2 = make_traj([4], start=100.0)
    slots = buf.add(t2)
    assert len(buf) == 5
    assert slots.tolist() == [3, 4, 0, 1]  # the ring wraps: t1's steps 0 and 1 are evicted
    stored = buf.get(torch.arange(5))
    assert sorted(stored["rews"].tolist()) == [2.0, 100.0, 101.0, 102.0, 103.0]
    full = ef.add_next_obs(t2)
    for i in range(4):
        row = (stored["rews"] == full["rews"][i]).nonzero()[0, 0]
        assert torch.equal(stored["next_obs"][row], full["next_obs"][i])
        assert stored["terminals"][row] == full["terminals"][i]
    # the truncated first episode's last step keeps its bootstrap (terminal 0, next_obs = final_obs)
    row = (stored["rews"] == 2.0).nonzero()[0, 0]
    assert stored["terminals"][row] == 0.0 and stored["next_obs"][row, 0] == 3.0


def test_add_longer_than_capacity_keeps_the_tail():
    buf = ReplayBuffer(4)
    buf.add(make_traj([10]))
    assert sorted(buf.get(torch.arange(4))["rews"].tolist()) == [6.0, 7.0, 8.0, 9.0]


def test_missing_column_and_dtype_device():
    buf = ReplayBuffer(8, keys=["obs", "acs", "rews"])
    buf.add(make_traj([3]))
    assert set(buf.keys()) == {"obs", "acs", "rews", "next_obs", "terminals"}
    batch = buf.random_batch(16, generator=0)
    assert batch["obs"].shape == (16, 2) and batch["obs"].device == buf.device
    assert torch.equal(batch["obs"], buf.random_batch(16, generator=0)["obs"])
    with pytest.raises(ValueError):
        ReplayBuffer(4).random_batch(2)


def _check_tree(tree: SumTree) -> None:
    t = tree.tree
    inner = np.arange(1, tree._base)
    np.testing.assert_allclose(t[inner], t[2 * inner] + t[2 * inner + 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tree.total, tree.leaves().sum(), rtol=1e-12)


def test_sum_tree_sampling_frequencies_match_priorities():
    tree = SumTree(7)
    pris = np.array([1.0, 0.0, 3.0, 0.5, 2.0, 0.0, 8.5])
    tree.update(np.arange(7), pris)
    _check_tree(tree)
    rng = np.random.default_rng(0)
    n = 200_000
    idx = tree.find(rng.uniform(0, tree.total, n))
    freq = np.bincount(idx, minlength=7) / n
    expected = pris / pris.sum()
    assert freq[1] == 0 and freq[5] == 0
    # 5 standard errors of a binomial proportion
    np.testing.assert_array_less(np.abs(freq - expected), 5 * np.sqrt(expected * (1 - expected) / n) + 1e-12)


def test_prioritized_sample_frequencies_and_weights():
    buf = PrioritizedReplayBuffer(6, per_alpha=1.0, eps=0.0)
    buf.add(make_traj([6]))
    pris = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 1.5])
    buf.update_pris(torch.arange(6), torch.as_tensor(pris))
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(6)
    for _ in range(200):
        b = buf.sample(250, per_beta=0.5, generator=g)
        counts += np.bincount(b["idx"].numpy(), minlength=6)
    p = pris / pris.sum()
    np.testing.assert_allclose(counts / counts.sum(), p, atol=5 * np.sqrt(p * (1 - p) / counts.sum()).max())
    w_expected = (6 * p[b["idx"].numpy()]) ** -0.5
    np.testing.assert_allclose(b["weights"].numpy(), w_expected / w_expected.max(), rtol=1e-5)
    # rows come with their own data: rews are 0..5 so idx == rews
    assert torch.equal(b["rews"].long(), b["idx"])


def test_updates_and_evictions_keep_the_tree_consistent():
    rng = np.random.default_rng(1)
    buf = PrioritizedReplayBuffer(37, per_alpha=0.7)
    for i in range(30):
        buf.add(make_traj([int(rng.integers(1, 9))], start=1e4 * i))
        idx = rng.integers(0, len(buf), 5)
        buf.update_pris(torch.as_tensor(idx), torch.as_tensor(rng.uniform(0, 10, 5)))
        _check_tree(buf.tree)
        assert np.all(buf.tree.leaves()[len(buf):] == 0)
    assert len(buf) == 37
    # a fresh step gets the max priority seen so far
    slots = buf.add(make_traj([1], start=-5.0))
    np.testing.assert_allclose(buf.tree.leaves()[slots.numpy()], (buf.max_pri + buf.eps) ** 0.7)
    _check_tree(buf.tree)
    with pytest.raises(IndexError):
        PrioritizedReplayBuffer(10).update_pris(torch.tensor([0]), torch.tensor([1.0]))


def test_add_with_pris_column():
    buf = PrioritizedReplayBuffer(10, per_alpha=1.0, eps=0.0)
    t = make_traj([4])
    buf.add(t.with_columns(pris=torch.tensor([1.0, 2.0, 3.0, 4.0])))
    np.testing.assert_allclose(buf.tree.leaves()[:4], [1, 2, 3, 4])


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_insertion_time_does_not_grow_with_capacity(cls):
    traj = ef.add_next_obs(make_traj([500, 500], terminated=[True, False]))

    def per_add(capacity: int) -> float:
        buf = cls(capacity)
        buf.add(traj)  # allocation happens here, not timed
        times = []
        for _ in range(15):
            t = time.perf_counter()
            buf.add(traj)
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    small, large = per_add(10_000), per_add(1_000_000)
    assert large < 5 * small + 2e-3, (small, large)


def _filled(cls: type[ReplayBuffer], capacity: int, wrap: bool) -> ReplayBuffer:
    """A buffer after some adds (wrapped around the ring when ``wrap``), with updated priorities."""
    buf = cls(capacity)
    rng = np.random.default_rng(2)
    for i in range(8 if wrap else 2):
        buf.add(make_traj([int(rng.integers(2, 6))], start=1e4 * i))
        if isinstance(buf, PrioritizedReplayBuffer):
            buf.update_pris(torch.as_tensor(rng.integers(0, len(buf), 3)), torch.as_tensor(rng.uniform(0, 5, 3)))
    return buf


def _draw(buf: ReplayBuffer, g: torch.Generator) -> dict[str, torch.Tensor]:
    if isinstance(buf, PrioritizedReplayBuffer):
        return buf.sample(16, per_beta=0.4, generator=g)
    return buf.random_batch(16, generator=g)


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_state_dict_round_trip_gives_identical_draws(cls, wrap):
    buf = _filled(cls, 20, wrap)
    assert (len(buf) == 20) == wrap
    state = buf.state_dict()
    assert all(v.shape[0] == len(buf) for v in state["cols"].values())  # only filled rows are stored
    other = cls(20)
    other.load_state_dict(state)
    assert len(other) == len(buf) and other.keys() == buf.keys()
    extra = make_traj([3], start=-50.0)  # later adds land in the same slots, with the same priorities
    assert torch.equal(buf.add(extra), other.add(extra))
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(3):
        a, b = _draw(buf, ga), _draw(other, gb)
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    if isinstance(buf, PrioritizedReplayBuffer):
        assert isinstance(other, PrioritizedReplayBuffer)
        assert np.array_equal(buf.tree.tree, other.tree.tree) and buf.max_pri == other.max_pri


def test_load_state_dict_rejects_a_state_that_does_not_fit():
    state = _filled(ReplayBuffer, 20, wrap=False).state_dict()
    with pytest.raises(ValueError, match="capacity 20"):
        ReplayBuffer(30).load_state_dict(state)
    with pytest.raises(ValueError, match="PrioritizedReplayBuffer"):
        ReplayBuffer(20).load_state_dict(_filled(PrioritizedReplayBuffer, 20, wrap=False).state_dict())
    per_state = _filled(PrioritizedReplayBuffer, 20, False).state_dict()
    with pytest.raises(ValueError, match="per_alpha"):
        PrioritizedReplayBuffer(20, per_alpha=0.5).load_state_dict(per_state)
    other = ReplayBuffer(20)
    other.add(make_traj([2]).with_columns(extra=torch.zeros(2)))
    before = other.state_dict()
    with pytest.raises(ValueError, match="columns"):
        other.load_state_dict(state)
    after = other.state_dict()  # a refused state loads nothing
    assert after["size"] == 2 and all(torch.equal(before["cols"][k], after["cols"][k]) for k in before["cols"])
    bad = {**state, "cols": {**state["cols"], "obs": state["cols"]["obs"][:, :1]}}
    with pytest.raises(ValueError, match="'obs'"):
        _filled(ReplayBuffer, 20, wrap=False).load_state_dict(bad)


def test_buffer_state_goes_through_a_checkpoint(tmp_path):
    from trajkit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    buf = _filled(PrioritizedReplayBuffer, 20, wrap=True)
    save_checkpoint(tmp_path / "ck.pt", {"buffer": buf}, rng=False)
    other = PrioritizedReplayBuffer(20)
    load_checkpoint(tmp_path / "ck.pt", {"buffer": other})
    assert np.array_equal(buf.tree.tree, other.tree.tree)
    with pytest.raises(CheckpointError, match="capacity"):
        load_checkpoint(tmp_path / "ck.pt", {"buffer": PrioritizedReplayBuffer(10)})


# ------------------------------------------------------------------ column shapes and dtypes are fixed
def _steps(n: int, obs: torch.Tensor | None = None, rews: torch.Tensor | None = None,
           acs: torch.Tensor | None = None) -> Traj:
    """One terminated episode of ``n`` steps with the given (or default float) columns."""
    data = {
        "obs": obs if obs is not None else torch.arange(3 * n, dtype=torch.float32).reshape(n, 3),
        "acs": acs if acs is not None else torch.zeros(n, 1),
        "rews": rews if rews is not None else torch.zeros(n),
    }
    epi = {"terminated": torch.tensor([True]), "truncated": torch.tensor([False]), "final_obs": data["obs"][-1:]}
    return Traj(data, epi, torch.tensor([0, n]))


def test_later_float_rewards_are_not_cast_to_the_first_trajs_integers():
    buf = ReplayBuffer(10)
    buf.add(_steps(2, rews=torch.tensor([1, 0])))  # integer rewards first (e.g. from a counting env)
    buf.add(_steps(2, rews=torch.tensor([0.7, -0.25])))
    stored = buf.get(torch.arange(4))["rews"]
    assert stored.dtype == torch.float32
    assert stored.tolist() == pytest.approx([1.0, 0.0, 0.7, -0.25])


def test_observations_of_another_width_are_refused_not_broadcast():
    buf = ReplayBuffer(10)
    buf.add(_steps(2))
    with pytest.raises(ValueError, match=r"'obs'.*stores torch.float32 \[3\].*this Traj has torch.float32 \[1\]"):
        buf.add(_steps(2, obs=torch.ones(2, 1)))
    with pytest.raises(ValueError, match=r"column 'acs'.*\[1\].*\[\]"):
        buf.add(_steps(2, acs=torch.zeros(2)))
    assert len(buf) == 2  # nothing was written


def test_a_float_into_an_integer_column_is_refused():
    buf = ReplayBuffer(10)
    buf.add(_steps(2, acs=torch.tensor([0, 2])))
    with pytest.raises(TypeError, match=r"column 'acs'.*torch.int64.*torch.float32 values would lose information"):
        buf.add(_steps(2, acs=torch.tensor([0.5, 1.5])))
    buf.add(_steps(2, acs=torch.tensor([1, 0], dtype=torch.int32)))  # a narrower integer is fine
    assert buf.get(torch.arange(4))["acs"].tolist() == [0, 2, 1, 0]


def test_column_specs_from_the_spaces():
    ob = gym.spaces.Box(-1.0, 1.0, (3,), np.float64)
    buf = PrioritizedReplayBuffer(10, ob_space=ob, ac_space=gym.spaces.Discrete(4))
    with pytest.raises(ValueError, match=r"column 'obs'.*\[3\].*\[2\]"):
        buf.add(_steps(2, obs=torch.zeros(2, 2), acs=torch.tensor([0, 1])))
    buf.add(_steps(2, obs=torch.zeros(2, 3, dtype=torch.float64), acs=torch.tensor([0, 3])))
    cols = buf.get(torch.arange(2))
    assert cols["obs"].dtype == cols["next_obs"].dtype == torch.float32 and cols["acs"].dtype == torch.int64
    other = PrioritizedReplayBuffer(10, ob_space=ob, ac_space=gym.spaces.Discrete(4))
    other.load_state_dict(buf.state_dict())  # the round trip still works
    mine, theirs = buf.get(torch.arange(2)), other.get(torch.arange(2))
    assert set(mine) == set(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)
    wrong = PrioritizedReplayBuffer(10, ob_space=gym.spaces.Box(-1.0, 1.0, (5,)))
    with pytest.raises(ValueError, match=r"column 'obs'"):
        wrong.load_state_dict(buf.state_dict())


@pytest.mark.parametrize("size", [0, -1])
def test_drawing_no_steps_is_a_clear_error(size):
    buf = PrioritizedReplayBuffer(10)
    buf.add(_steps(3))
    with pytest.raises(ValueError, match=f"batch_size must be >= 1, got {size}"):
        buf.sample(size, 0.4)
    with pytest.raises(ValueError, match="batch_size"):
        ReplayBuffer(10).random_batch(size)
