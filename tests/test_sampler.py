"""``EpiSampler`` in-process (``num_parallel=1``) and with worker processes (``num_parallel=2``).

Worker start-up costs a fresh interpreter importing torch, so the tests that only read
episodes share one module-scoped sampler per backend; tests that need a fresh RNG state
or that break their sampler build their own.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from sampler_envs import ExplodingEnv, SleepyEnv, TwoActionsPol

import trajkit as tk

TIME_LIMIT = 30
PARALLEL = [1, 2]


def cartpole() -> tk.GymEnv:
    """CartPole with a short time limit: episodes end both ways (terminated and truncated)."""
    return tk.GymEnv("CartPole-v1", max_episode_steps=TIME_LIMIT)


def cartpole_pol(seed: int = 0) -> tk.CategoricalPol:
    torch.manual_seed(seed)
    env = cartpole()
    return tk.CategoricalPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))


FIRST_STEPS = 41


@pytest.fixture(scope="module", params=PARALLEL, ids=lambda n: f"num_parallel={n}")
def shared(request):
    """``(sampler, pol, first)`` shared by the tests of one backend; ``first`` is its first sample.

    ``first`` is drawn right after start-up (``max_steps=FIRST_STEPS``), so it is what
    any fresh sampler with seed 0 must return first.
    """
    pol = cartpole_pol()
    with tk.EpiSampler(cartpole(), pol, num_parallel=request.param, seed=0) as sampler:
        first = sampler.sample(pol, max_steps=FIRST_STEPS)
        yield sampler, pol, first


def same_episodes(a: list[dict], b: list[dict]) -> bool:
    """Bit-identical episode lists (every column and flag)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if set(x) != set(y):
            return False
        for k in x:
            if not np.array_equal(np.asarray(x[k]), np.asarray(y[k])):
                return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("max_steps", [1, 7, 64, 101])
def test_max_steps_is_exact_and_the_cut_episode_keeps_its_final_obs(shared, max_steps):
    sampler, pol, _ = shared
    epis = sampler.sample(pol, max_steps=max_steps)
    assert sum(len(e["rews"]) for e in epis) == max_steps
    traj = tk.Traj.from_epis(epis)
    assert traj.num_step == max_steps
    for epi in epis:
        assert epi["terminated"] != epi["truncated"]
        assert len(epi["rews"]) <= TIME_LIMIT
        assert epi["final_obs"].shape == epi["obs"].shape[1:]
        assert not np.array_equal(epi["final_obs"], epi["obs"][-1])  # the obs after the last step
    cuts = [e for e in epis if e["sampler_cut"]]  # at most one per worker, always truncated
    assert len(cuts) <= sampler.num_parallel
    assert all(e["truncated"] and not e["terminated"] for e in cuts)
    last = epis[-1]  # the budget ran out in it: cut, unless the env ended it on that very step
    assert last["sampler_cut"] or last["terminated"] or len(last["rews"]) == TIME_LIMIT


def test_cut_episode_is_truncated_with_the_real_final_obs():
    """A short cut of a long deterministic episode: final_obs is the obs after the last step."""
    env = SleepyEnv(length=50)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    with tk.EpiSampler(env, pol, num_parallel=1, seed=0) as sampler:
        (epi,) = sampler.sample(pol, max_steps=5)
    assert len(epi["rews"]) == 5 and epi["truncated"] and not epi["terminated"]
    assert epi["final_obs"][0] == 5.0  # the step counter after 5 steps, not a reset obs
    assert epi["obs"][:, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("max_epis", [1, 3, 4])
def test_max_epis_returns_that_many_whole_episodes(shared, max_epis):
    sampler, pol, _ = shared
    epis = sampler.sample(pol, max_epis=max_epis)
    assert len(epis) == max_epis
    for epi in epis:
        n = len(epi["rews"])
        assert epi["terminated"] or n == TIME_LIMIT, "an episode was cut although only max_epis was given"


def test_workers_keep_the_env_time_limit(shared):
    sampler, pol, _ = shared
    epis = sampler.sample(pol, max_epis=40)
    lengths = [len(e["rews"]) for e in epis]
    assert max(lengths) <= TIME_LIMIT
    # a near-uniform CartPole policy survives 30 steps in roughly 1 episode of 4: the limit was reached
    assert any(e["truncated"] and len(e["rews"]) == TIME_LIMIT for e in epis)


def test_budget_errors():
    env = SleepyEnv()
    pol = tk.RandomPol(env.observation_space, env.action_space)
    with tk.EpiSampler(env, pol, num_parallel=1) as sampler:
        with pytest.raises(ValueError, match="max_epis, max_steps"):
            sampler.sample(pol)
        with pytest.raises(ValueError, match="max_steps must be >= 1"):
            sampler.sample(pol, max_steps=0)
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(pol, max_epis=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_steps": 2.5}, TypeError, r"max_steps must be an integer, got 2\.5"),
        ({"max_steps": True}, TypeError, "max_steps must be an integer"),
        ({"max_epis": 2.0}, TypeError, "max_epis must be an integer"),
        ({"max_steps": "5"}, TypeError, "max_steps must be an integer"),
    ],
)
def test_budgets_are_positive_integers(kwargs, error, match):
    env = SleepyEnv()
    pol = tk.RandomPol(env.observation_space, env.action_space)
    with tk.EpiSampler(env, pol, num_parallel=1) as sampler:
        with pytest.raises(error, match=match):
            sampler.sample(pol, **kwargs)
        assert sum(len(e["rews"]) for e in sampler.sample(pol, max_steps=np.int64(3))) == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_parallel": 2.0}, TypeError, "num_parallel must be an integer"),
        ({"num_envs_per_worker": 1.5}, TypeError, "num_envs_per_worker must be an integer"),
        ({"seed": 0.5}, TypeError, "seed must be an integer"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": None}, TypeError, "seed must be an integer"),
        ({"worker_threads": 0}, ValueError, "worker_threads must be >= 1"),
    ],
)
def test_sampler_sizes_and_seed_are_checked_at_construction(kwargs, error, match):
    env = SleepyEnv()
    with pytest.raises(error, match=match):
        tk.EpiSampler(env, tk.RandomPol(env.observation_space, env.action_space), **kwargs)


# ---------------------------------------------------------------------- which policy acts
def test_deterministic_sampling_follows_the_current_weights(shared):
    sampler, pol, _ = shared
    saved = copy.deepcopy(pol.state_dict())
    try:
        for favoured in (0, 1):
            with torch.no_grad():
                pol.net[-1].weight.zero_()
                pol.net[-1].bias.copy_(torch.tensor([5.0, -5.0]) if favoured == 0 else torch.tensor([-5.0, 5.0]))
            epis = sampler.sample(pol, max_steps=12, deterministic=True)
            assert all(bool((e["acs"] == favoured).all()) for e in epis)
    finally:
        pol.load_state_dict(saved)
    epis = sampler.sample(pol, max_steps=12, deterministic=True)
    assert all(np.array_equal(e["acs"], e["logits"].argmax(-1)) for e in epis)


def test_another_policy_and_its_normalizer_statistics_reach_the_workers(shared):
    sampler, pol, _ = shared
    env = cartpole()
    torch.manual_seed(5)
    other = tk.CategoricalPol(
        env.observation_space,
        env.action_space,
        tk.nets.mlp(4, 2, hidden=(5,)),
        obs_normalizer=tk.ObsNormalizer((4,)),
    )
    for shift in (0.0, 3.0):  # new statistics after the policy was shipped once
        other.obs_normalizer.update(torch.randn(50, 4) * 2 + shift)
        traj = tk.Traj.from_epis(sampler.sample(other, max_steps=15))
        with torch.no_grad():
            torch.testing.assert_close(traj["logits"], other(traj["obs"])["logits"])
    sampler.sample(pol, max_steps=1)  # hand the shared sampler its own policy back


# ---------------------------------------------------------------------- determinism and resume
@pytest.mark.parametrize("num_parallel", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: ~10 s
def test_same_seed_is_bit_identical_different_seed_differs_and_state_resumes(num_parallel):
    pol = cartpole_pol()
    make = lambda seed: tk.EpiSampler(cartpole(), pol, num_parallel=num_parallel, seed=seed)  # noqa: E731
    with make(0) as fresh:
        first = fresh.sample(pol, max_steps=FIRST_STEPS)
    with make(0) as a, make(1) as b:
        first_a = a.sample(pol, max_steps=FIRST_STEPS)
        assert same_episodes(first_a, first)
        assert not same_episodes(b.sample(pol, max_steps=FIRST_STEPS), first)
        state = a.state_dict()
        next_a = a.sample(pol, max_steps=FIRST_STEPS)
        assert not same_episodes(next_a, first_a)
        b.load_state_dict(state)  # a different seed, moved on, then restored to a's state
        assert same_episodes(b.sample(pol, max_steps=FIRST_STEPS), next_a)
        a.load_state_dict(state)  # a rewinds itself too
        assert same_episodes(a.sample(pol, max_steps=FIRST_STEPS), next_a)


def test_a_state_with_one_bad_worker_part_is_refused_before_any_worker_is_restored(shared):
    """Worker 1's part is bad: nothing is restored anywhere and the sampler stays open."""
    sampler, pol, _ = shared
    rewind = sampler.state_dict()
    sampler.sample(pol, max_steps=9)
    now = sampler.state_dict()
    bad = copy.deepcopy(rewind)
    bad["workers"][-1]["gens"] = {"cpu": torch.zeros(3, dtype=torch.uint8)}
    with pytest.raises(ValueError, match=rf"\['workers'\]\[{sampler.num_parallel - 1}\]\['gens'\]"):
        sampler.load_state_dict(bad)  # the other workers' parts alone would rewind them
    after = sampler.sample(pol, max_steps=9)
    sampler.load_state_dict(now)  # still open; the failed load had left it at `now`
    assert same_episodes(sampler.sample(pol, max_steps=9), after)


# ---------------------------------------------------------------------- failures
@pytest.mark.slow  # worker processes: seconds to start on a small machine (slow tier)
def test_worker_exception_surfaces_fast_with_traceback_and_no_orphans(tmp_path):
    env = ExplodingEnv(str(tmp_path / "raiser"), delay=0.1, length=1000)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    sampler = tk.EpiSampler(env, pol, num_parallel=2, seed=0)
    pids = sampler.worker_pids
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    start = time.monotonic()
    with pytest.raises(tk.WorkerError) as err:
        sampler.sample(pol, max_steps=2000)  # the sleeping worker alone would need 100 s
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"the error took {elapsed:.2f}s to surface"
    msg = str(err.value)
    assert "Traceback" in msg and "env exploded on purpose at step 3" in msg and "in step" in msg
    deadline = time.monotonic() + 2.0
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(pid_alive(p) for p in pids), "a worker outlived the error"
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(pol, max_epis=1)
    sampler.close()  # idempotent


@pytest.mark.slow  # worker processes: seconds on a small machine (slow tier)
def test_policy_with_wrong_action_shape_gives_a_clear_worker_error():
    env = cartpole()
    pol = TwoActionsPol(env.observation_space, env.action_space, tk.nets.mlp(4, 2, hidden=(8,)))
    with tk.EpiSampler(env, pol, num_parallel=2, seed=0) as sampler:
        pids = sampler.worker_pids
        with pytest.raises(tk.WorkerError, match=r"shape \(2,\).*needs \(\)"):
            sampler.sample(pol, max_steps=10)
    assert not any(pid_alive(p) for p in pids)


@pytest.mark.slow  # worker processes: seconds on a small machine (slow tier)
def test_workers_outlive_their_starting_thread_and_a_killed_one_is_reported():
    """Workers live as long as the parent process, not the thread that started them.

    A worker killed from outside between two calls is then reported as a WorkerError,
    and the other worker is stopped.
    """
    env = SleepyEnv(length=4)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    made: list[tk.EpiSampler] = []
    thread = threading.Thread(target=lambda: made.append(tk.EpiSampler(env, pol, num_parallel=2, seed=0)))
    thread.start()
    thread.join()
    (sampler,) = made
    pids = sampler.worker_pids
    with sampler:
        time.sleep(0.3)
        assert all(pid_alive(p) for p in pids)
        assert sum(len(e["rews"]) for e in sampler.sample(pol, max_steps=10)) == 10
        os.kill(pids[1], signal.SIGKILL)
        while pid_alive(pids[1]):
            time.sleep(0.01)
        with pytest.raises(tk.WorkerError, match="worker 1"):
            sampler.sample(pol, max_steps=10)
    assert not any(pid_alive(p) for p in pids)


# ---------------------------------------------------------------------- waiting costs no CPU
@pytest.mark.slow  # worker processes or long training: seconds on a small machine (slow tier)
def test_parent_does_not_busy_wait_cuts_odd_budgets_exactly_and_close_leaves_no_process():
    env = SleepyEnv(delay=0.08, length=10)
    pol = tk.RandomPol(env.observation_space, env.action_space)
    sampler = tk.EpiSampler(env, pol, num_parallel=2, seed=0)
    pids = sampler.worker_pids
    wall, cpu = time.monotonic(), time.process_time()
    epis = sampler.sample(pol, max_steps=27)  # worker 0 gets 14 steps, worker 1 gets 13: >= 1 s asleep
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert wall >= 1.0
    assert cpu < 0.25 * wall, f"parent used {cpu:.2f}s CPU while waiting {wall:.2f}s"
    # each worker plays whole 10-step episodes, then its share cuts the last one
    assert [len(e["rews"]) for e in epis] == [10, 4, 10, 3]
    assert all(e["truncated"] and not e["terminated"] for e in epis)
    assert [float(e["final_obs"][0]) for e in epis] == [10.0, 4.0, 10.0, 3.0]  # the real obs after the cut
    sampler.close()
    assert not any(pid_alive(p) for p in pids)


# ---------------------------------------------------------------------- scripts without a main guard
SCRIPT = """
import os
import sys
print("MAIN-MODULE-RUN", os.getpid(), flush=True)

import gymnasium as gym
import numpy as np
import torch
import trajkit as tk


class ScriptEnv(gym.Env):
    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, action], np.float32), 1.0, self.t >= 3, False, {}


class ScriptNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x) * 2.0


env = ScriptEnv()
pol = tk.CategoricalPol(env.observation_space, env.action_space, ScriptNet())
sampler = tk.EpiSampler(env, pol, num_parallel=2, seed=0)
epis = sampler.sample(pol, max_epis=4)
assert len(epis) == 4 and all(len(e["rews"]) == 3 for e in epis)
print("RESULT", len(epis), len(set(sampler.worker_pids)), flush=True)
print("PIDS", *sampler.worker_pids, flush=True)
sampler.sample(pol, max_steps=10**8)  # keeps both workers busy until this process is killed
"""


@pytest.mark.slow  # worker processes: seconds on a small machine (slow tier)
def test_script_without_main_guard_runs_with_workers_that_die_with_it(tmp_path):
    """The script's own env and policy classes reach the workers; killing the script ends them."""
    script = tmp_path / "train_no_guard.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    pids: list[int] = []
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("PIDS"):
                pids = [int(p) for p in line.split()[1:]]
                break
        assert pids, f"the script failed: {''.join(lines)}{proc.stderr.read()[-3000:]}"
        assert any(line.startswith("RESULT 4 2") for line in lines)
        assert sum(line.startswith("MAIN-MODULE-RUN") for line in lines) == 1, "a worker re-imported __main__"
        time.sleep(0.3)  # both workers are in the middle of the long sample now
        assert proc.poll() is None and all(pid_alive(p) for p in pids)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 3.0
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(p) for p in pids), "workers outlived their killed parent"
    finally:
        watchdog.cancel()
        proc.kill()
        for p in pids:  # never leak a process, even when the test fails
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
