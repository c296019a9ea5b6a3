"""Continuing episodes: ``EpiSampler(..., continuing=True)`` carries unfinished episodes into the next call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from sampler_envs import NanFromStep, SleepyEnv

import trajkit as tk
from trajkit.samplers import NonFiniteActionError

Epi = dict[str, Any]
ENDS = ("terminated", "truncated", "sampler_cut")


def _pol() -> tk.CategoricalPol:
    torch.manual_seed(0)
    env = tk.GymEnv("CartPole-v1")
    return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))


def _sleepy_pol() -> tk.CategoricalPol:
    torch.manual_seed(0)
    env = SleepyEnv()
    return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(2, 2, hidden=(8,)))


def _short_cartpole() -> gym.Env:
    """CartPole whose time limit truncates at 7 steps (a real end, by the env, not the sampler)."""
    return gym.make("CartPole-v1", max_episode_steps=7)


def _join(pieces: list[Epi]) -> list[Epi]:
    """Whole episodes (the last of each env possibly still cut) from pieces in call order, checking the marks.

    A continued piece must follow a cut piece of the same ``epi_key``; a piece that is not
    continued must start a key not seen before.
    """
    open_: dict[tuple[int, int], Epi] = {}
    done: list[Epi] = []
    for p in pieces:
        key = tuple(int(x) for x in p["epi_key"])
        if p["continued"]:
            prev = open_.pop(key)  # a continuation joins a cut piece of the same key
            assert prev["sampler_cut"] and prev["truncated"] and not prev["terminated"]
            np.testing.assert_array_equal(prev["final_obs"], p["obs"][0])
            for k in ("obs", "acs", "rews", "logits"):
                prev[k] = np.concatenate([prev[k], p[k]])
            prev.update({k: p[k] for k in (*ENDS, "final_obs")})
            p = prev
        else:
            assert key not in open_ and all(tuple(e["epi_key"]) != key for e in done)
            p = dict(p)
        if p["sampler_cut"]:
            open_[key] = p
        else:
            done.append(p)
    return done + list(open_.values())


def _per_env(epis: list[Epi]) -> dict[int, list[Epi]]:
    """Joined episodes by env index, in episode order (numbers may differ between samplers)."""
    out: dict[int, list[Epi]] = {}
    for e in sorted(_join(epis), key=lambda e: (int(e["epi_key"][0]), int(e["epi_key"][1]))):
        out.setdefault(int(e["epi_key"][0]), []).append(e)
    return out


def _assert_same_episodes(split: list[Epi], whole: list[Epi]) -> None:
    a, b = _per_env(split), _per_env(whole)
    assert a.keys() == b.keys()
    for env in a:
        assert len(a[env]) == len(b[env]), f"env {env}"
        for i, (x, y) in enumerate(zip(a[env], b[env], strict=True)):
            for k in ("obs", "acs", "rews", "final_obs"):
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{k} of env {env}'s episode {i}")
            assert [x[k] for k in ENDS] == [y[k] for k in ENDS], (env, i)


def _split_and_whole(s: tk.EpiSampler, pol: torch.nn.Module, n: int, k: int) -> tuple[list[Epi], list[Epi]]:
    """``k`` calls of ``max_steps=n``, then one call of ``k * n``, both from the sampler's present RNG state.

    Restoring the state drops the pieces in progress, so both runs start fresh episodes.
    """
    state = s.state_dict()
    s.load_state_dict(state)
    split = [p for _ in range(k) for p in s.sample(pol, max_steps=n)]
    s.load_state_dict(state)
    whole = s.sample(pol, max_steps=k * n)
    assert sum(len(p["rews"]) for p in split) == sum(len(p["rews"]) for p in whole) == k * n
    assert any(p["continued"] for p in split) and not any(p["continued"] for p in whole)
    return split, whole


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[tk.EpiSampler, tk.CategoricalPol]]:
    """One process sampler for the module (2 workers of 2 envs): starting workers costs seconds."""
    pol = _pol()
    with tk.EpiSampler("CartPole-v1", pol, num_parallel=2, num_envs_per_worker=2, seed=3, continuing=True) as s:
        yield s, pol


@pytest.mark.parametrize(
    ("num_parallel", "num_envs"), [(0, 1), (1, 1), (1, 3)], ids=["in-process-0", "in-process-1", "vectorized-3"]
)
def test_k_calls_of_n_steps_equal_one_call_of_k_n_steps_in_process(num_parallel: int, num_envs: int) -> None:
    pol = _pol()
    opts: dict[str, Any] = {"num_parallel": num_parallel, "num_envs_per_worker": num_envs, "seed": 3}
    with tk.EpiSampler("CartPole-v1", pol, continuing=True, **opts) as s:
        split, whole = _split_and_whole(s, pol, 12, 5)  # 12: every env's share is the same in every call
    assert any(p["terminated"] for p in whole), "no real episode end inside the run"
    _assert_same_episodes(split, whole)
    with tk.EpiSampler("CartPole-v1", pol, continuing=True, **opts) as fresh:  # the same seed, a new sampler
        _assert_same_episodes(whole, fresh.sample(pol, max_steps=60))


@pytest.mark.slow  # worker processes: seconds to start on a small machine (slow tier)
def test_k_calls_of_n_steps_equal_one_call_with_vectorized_worker_processes(workers) -> None:
    s, pol = workers
    split, whole = _split_and_whole(s, pol, 24, 6)  # 24 = 2 workers * 2 envs * 6 steps per env and call
    assert any(p["terminated"] for p in whole)
    assert {int(p["epi_key"][0]) for p in whole} == {0, 1, 2, 3}  # worker i's envs are 2i, 2i + 1
    _assert_same_episodes(split, whole)


@pytest.mark.slow  # starting Ray and its actors takes ~20 s on a small machine
def test_ray_backend_splits_like_one_call(local_ray: object) -> None:
    pol = _pol()
    with tk.EpiSampler("CartPole-v1", pol, num_parallel=2, backend="ray", continuing=True) as s:
        split, whole = _split_and_whole(s, pol, 8, 3)
    _assert_same_episodes(split, whole)


def test_env_time_limit_is_carried_across_calls() -> None:
    """An episode the env truncates at 7 steps ends at 7 steps even when calls give each env 3."""
    pol = _pol()
    with tk.EpiSampler(_short_cartpole, pol, num_envs_per_worker=2, continuing=True) as s:
        split, whole = _split_and_whole(s, pol, 6, 7)
    _assert_same_episodes(split, whole)
    episodes = _join(split)
    ended = [e for e in episodes if not e["sampler_cut"]]
    assert ended and all(e["truncated"] or e["terminated"] for e in ended)
    assert all(len(e["rews"]) == 7 for e in ended if e["truncated"])


def test_pieces_are_marked_cut_then_continued() -> None:
    pol = _sleepy_pol()
    with tk.EpiSampler(lambda: SleepyEnv(length=10), pol, num_envs_per_worker=2, continuing=True) as s:
        first = s.sample(pol, max_steps=8)  # 4 steps per env: both cut
        second = s.sample(pol, max_steps=14)  # 7 per env: 6 finish the episode, 1 starts a new one
    assert [len(p["rews"]) for p in first] == [4, 4]
    for p, env in zip(first, (0, 1), strict=True):
        assert p["truncated"] and p["sampler_cut"] and not p["terminated"] and not p["continued"]
        assert p["epi_key"].tolist() == [env, 0] and p["epi_key"].dtype == np.int64
        np.testing.assert_array_equal(p["final_obs"][0], 4)  # the obs the next piece acts on
    assert [len(p["rews"]) for p in second] == [6, 1, 6, 1]
    assert [p["continued"] for p in second] == [True, False, True, False]
    assert [p["epi_key"].tolist() for p in second] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert [p["obs"][0, 0] for p in second] == [4, 0, 4, 0]  # continued from step 4; a new episode at 0
    assert [(p["truncated"], p["sampler_cut"]) for p in second] == [(True, False), (True, True)] * 2


def test_default_mode_is_unchanged() -> None:
    """Without the option every call resets: whole episodes from step 0, no continuation keys."""
    pol = _sleepy_pol()
    with tk.EpiSampler(lambda: SleepyEnv(length=10), pol) as s:
        assert not s.continuing
        epis = s.sample(pol, max_steps=4) + s.sample(pol, max_steps=4)
    assert [p["obs"][0, 0] for p in epis] == [0, 0]
    assert all("continued" not in p and "epi_key" not in p for p in epis)


def test_max_epis_counts_pieces_and_each_ends_its_episode() -> None:
    pol = _sleepy_pol()
    with tk.EpiSampler(lambda: SleepyEnv(length=10), pol, num_envs_per_worker=2, continuing=True) as s:
        s.sample(pol, max_steps=6)  # 3 steps per env, carried
        by_epis = s.sample(pol, max_epis=4)  # 2 pieces per env: the carried rest, then a whole one
        both = s.sample(pol, max_epis=4, max_steps=30)  # fresh (no carry): 10 + 5 per env, the 5 cut
    assert [len(p["rews"]) for p in by_epis] == [7, 10, 7, 10]
    assert [p["continued"] for p in by_epis] == [True, False, True, False]
    assert not any(p["sampler_cut"] for p in by_epis)
    assert [len(p["rews"]) for p in both] == [10, 5, 10, 5]
    assert [p["sampler_cut"] for p in both] == [False, True, False, True]
    assert not any(p["continued"] for p in both)


def test_budget_is_exact_and_an_env_without_a_share_keeps_its_episode() -> None:
    pol = _sleepy_pol()
    with tk.EpiSampler(lambda: SleepyEnv(length=10), pol, num_envs_per_worker=3, continuing=True) as s:
        assert sum(len(p["rews"]) for p in s.sample(pol, max_steps=7)) == 7  # shares 3, 2, 2
        only_env0 = s.sample(pol, max_steps=1)
        after = s.sample(pol, max_steps=3)
    assert [p["epi_key"].tolist() for p in only_env0] == [[0, 0]] and len(only_env0[0]["rews"]) == 1
    assert [p["continued"] for p in after] == [True, True, True]
    assert [p["obs"][0, 0] for p in after] == [4, 2, 2]


def test_traj_carries_the_continuation_columns() -> None:
    pol = _pol()
    with tk.EpiSampler("CartPole-v1", pol, num_envs_per_worker=2, continuing=True) as s:
        s.sample(pol, max_steps=6)
        pieces = s.sample(pol, max_steps=6)
    traj = tk.Traj.from_epis(pieces)
    assert traj.epi["continued"].dtype == torch.bool and traj.epi["continued"].tolist() == [
        p["continued"] for p in pieces
    ]
    assert traj.epi["epi_key"].dtype == torch.int64 and traj.epi["epi_key"].shape == (len(pieces), 2)
    assert traj.epi["sampler_cut"].any() and "continued" not in traj.data and "epi_key" not in traj.data
    with pytest.raises(ValueError, match="epi_key must be two integers"):
        tk.Traj.from_epis([{**pieces[0], "epi_key": np.array([0.5, 1.0])}])


def test_state_dict_holds_rngs_only_and_a_restored_sampler_starts_fresh_episodes() -> None:
    pol = _pol()
    kw: dict[str, Any] = {"num_envs_per_worker": 2, "seed": 5}
    with tk.EpiSampler("CartPole-v1", pol, continuing=True, **kw) as a:
        a.sample(pol, max_steps=6)
        state = a.state_dict()
        assert set(state) == {"num_parallel", "num_envs_per_worker", "seed", "workers"}
        a.check_state_dict(state)
        goes_on = a.sample(pol, max_steps=6)  # saving did not drop the pieces in progress
        with (
            tk.EpiSampler("CartPole-v1", pol, continuing=True, **kw) as b,
            tk.EpiSampler("CartPole-v1", pol, **kw) as w,
        ):
            b.load_state_dict(state)
            w.load_state_dict(state)
            restored, reference = b.sample(pol, max_steps=6), w.sample(pol, max_steps=6)
        a.load_state_dict(state)  # also drops a's own pieces in progress
        reloaded = a.sample(pol, max_steps=6)
    assert all(p["continued"] for p in goes_on)
    assert not any(p["continued"] for p in restored + reloaded)
    for x, y, z in zip(restored, reference, reloaded, strict=True):
        for k in ("obs", "acs", "rews", "final_obs"):
            np.testing.assert_array_equal(x[k], y[k])
            np.testing.assert_array_equal(x[k], z[k])


def test_a_failed_call_drops_the_episodes_it_was_continuing() -> None:
    env = SleepyEnv()
    good = tk.CategoricalPol(env.observation_space, env.action_space, NanFromStep(2, 2, step=100))
    bad = tk.CategoricalPol(env.observation_space, env.action_space, NanFromStep(2, 2, step=5))
    with tk.EpiSampler(lambda: SleepyEnv(length=10), good, continuing=True) as s:
        s.sample(good, max_steps=3)
        with pytest.raises(NonFiniteActionError):
            s.sample(bad, max_steps=4)  # continues at step 3, fails at step 5
        after = s.sample(good, max_steps=2)
    assert not after[0]["continued"] and after[0]["obs"][0, 0] == 0 and after[0]["epi_key"].tolist() == [0, 1]


def test_continuing_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="continuing must be True or False"):
        tk.EpiSampler("CartPole-v1", _pol(), continuing=1)  # type: ignore[arg-type]


def test_episode_stats_join_the_pieces_into_whole_episodes() -> None:
    pol = _pol()
    with tk.EpiSampler("CartPole-v1", pol, num_envs_per_worker=2, seed=1, continuing=True) as s:
        split, whole = _split_and_whole(s, pol, 8, 8)
    by_calls = [split[i : i + 1] for i in range(len(split))]  # any grouping into calls joins the same
    from_dicts, from_trajs, reference = tk.EpisodeStats(), tk.EpisodeStats(), tk.EpisodeStats()
    for part in by_calls:
        from_dicts.add(part)
        from_trajs.add(tk.Traj.from_epis(part))
    reference.add(whole)
    assert len(reference) >= 2 and from_dicts.total == from_trajs.total == reference.total
    for stats in (from_dicts, from_trajs):  # the same episodes, in the order they ended
        got = sorted(zip(stats.returns, stats.lengths, strict=True))
        assert got == sorted(zip(reference.returns, reference.lengths, strict=True))
    orphan = [p for p in split if p["continued"] and not p["sampler_cut"]][:1]
    assert orphan and tk.EpisodeStats().add(orphan) == 0  # a continuation whose start it never saw
