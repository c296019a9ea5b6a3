"""Sampler timeouts: a hung env call ends in ``SamplerTimeout``, in process and in workers, with no process left."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import warnings

import pytest
from sampler_envs import HangingEnv, HangingFactory, SleepyEnv

import trajkit as tk
from trajkit.samplers import DEFAULT_TIMEOUT, SamplerTimeout

MARGIN = 1.5  # seconds past the limit a timeout may take to surface on a loaded machine


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def all_gone(pids: list[int], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(pid_alive(p) for p in pids)


def _rand_pol(env: SleepyEnv) -> tk.RandomPol:
    return tk.RandomPol(env.observation_space, env.action_space)


def test_in_process_hung_step_times_out_closes_the_sampler_and_restores_sigalrm() -> None:
    env = HangingEnv(hang_after=2)
    pol = _rand_pol(env)
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 20.0)  # the caller's own timer keeps running around the sample
    try:
        sampler = tk.EpiSampler(env, pol, seed=0)
        start = time.monotonic()
        with pytest.raises(SamplerTimeout, match=r"in-process sampler.*env\.step\(\) of env 0 at step 2.*0\.3"):
            sampler.sample(pol, max_steps=20, timeout=0.3)
        assert time.monotonic() - start < 0.3 + MARGIN
        with pytest.raises(RuntimeError, match="closed"):
            sampler.sample(pol, max_steps=1)
        handler = signal.getsignal(signal.SIGALRM)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        ours = signal.signal(signal.SIGALRM, previous)
    assert handler is ours and 15.0 < left < 20.0 and not fired


def test_the_constructor_sets_the_default_timeout_and_sample_overrides_it() -> None:
    env = HangingEnv(hang_after=1, length=4)
    pol = _rand_pol(env)
    assert tk.EpiSampler(SleepyEnv(), pol).timeout == DEFAULT_TIMEOUT
    with tk.EpiSampler(SleepyEnv(delay=0.15, length=4), pol, timeout=0.1) as s:  # each step 0.15 s > 0.1 s
        assert len(s.sample(pol, max_steps=3, timeout=None)) == 1  # None: no limit for this call
        with pytest.raises(SamplerTimeout):
            s.sample(pol, max_steps=3)  # the sampler's own 0.1 s
    with tk.EpiSampler(env, pol, timeout=0.2) as s, pytest.raises(SamplerTimeout, match=r"env\.step\(\)"):
        s.sample(pol, max_steps=5)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        tk.EpiSampler(env, pol, timeout=0)
    with pytest.raises(TypeError, match="timeout must be a number"):
        tk.EpiSampler(env, pol, timeout="60")


def test_hung_reset_is_named_too() -> None:
    class HangingReset(SleepyEnv):
        def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN202
            time.sleep(30)

    env = HangingReset()
    with tk.EpiSampler(env, _rand_pol(env), timeout=0.2) as s:
        with pytest.raises(SamplerTimeout, match=r"env\.reset\(\) of env 0"):
            s.sample(_rand_pol(env), max_epis=1)


def test_off_the_main_thread_the_in_process_sampler_says_it_cannot_enforce_the_timeout() -> None:
    env = SleepyEnv(length=3)
    pol = _rand_pol(env)
    caught: list[warnings.WarningMessage] = []

    def run() -> None:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with tk.EpiSampler(env, pol, timeout=5.0) as s:
                s.sample(pol, max_steps=3)
        caught.extend(w)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert msgs and all("not enforced" in m and "main thread" in m for m in msgs)


def test_a_vectorized_in_process_rollout_names_the_hung_env() -> None:
    pol = _rand_pol(SleepyEnv())
    with tk.EpiSampler(HangingFactory(which=1), pol, num_envs_per_worker=3, timeout=0.2) as s:
        with pytest.raises(SamplerTimeout, match=r"env\.step\(\) of env 1 at step 2"):
            s.sample(pol, max_steps=30)


@pytest.mark.slow  # seconds on a small machine (slow tier)
def test_worker_hung_step_times_out_promptly_and_every_worker_is_killed() -> None:
    """Env 1 of each worker hangs (env 0 runs on): the first report ends the sample, every worker is killed."""
    pol = _rand_pol(SleepyEnv())
    sampler = tk.EpiSampler(HangingFactory(which=1), pol, num_parallel=2, num_envs_per_worker=2, seed=0)
    pids = sampler.worker_pids
    start = time.monotonic()
    with pytest.raises(SamplerTimeout) as err:
        sampler.sample(pol, max_steps=40, timeout=0.4)
    assert time.monotonic() - start < 0.4 + MARGIN
    msg = str(err.value)
    assert re.search("sampler worker [01] timed out while sampling", msg) and "env.step() of env 1 at step 2" in msg
    assert "time.sleep" in msg or "in step" in msg  # the worker's traceback shows where it hung
    assert all_gone(pids), "a timed-out worker outlived the error"
    with pytest.raises(RuntimeError, match="closed"):
        sampler.sample(pol, max_steps=1)


@pytest.mark.slow  # a few seconds of worker start-up: CI runs it in the slow tier
def test_a_long_sample_of_quick_steps_is_no_timeout_and_a_signal_immune_hang_is_killed() -> None:
    """The timeout bounds each call, not the sample: heartbeats keep a busy worker alive.

    Then a step stuck where SIGALRM cannot reach (blocked, as in native code) is ended
    by the parent once the worker has been silent for the silence limit.
    """
    env = HangingEnv(hang_after=16, immune=True, length=6, delay=0.05)
    pol = _rand_pol(env)
    sampler = tk.EpiSampler(env, pol, num_parallel=2, seed=0, timeout=0.3)
    pids = sampler.worker_pids
    start = time.monotonic()
    epis = sampler.sample(pol, max_steps=32)  # 16 steps of 0.05 s a worker: 0.8 s > 0.3 s
    assert time.monotonic() - start > 0.75 and sum(len(e["rews"]) for e in epis) == 32
    start = time.monotonic()
    with pytest.raises(SamplerTimeout, match=r"sampler worker\(s\) \[0, 1\] sent nothing"):
        sampler.sample(pol, max_steps=20)  # the 17th step hangs where no signal reaches
    limit = tk.samplers._timeout.silence_limit(0.3)  # noqa: SLF001
    assert time.monotonic() - start < limit + MARGIN
    assert all_gone(pids)
