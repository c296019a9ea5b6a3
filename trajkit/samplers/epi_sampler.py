"""``EpiSampler``: whole episodes from one or several copies of an environment."""

from __future__ import annotations

import copy
import os
import pickle
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import torch

from trajkit.envs.gym_env import GymEnv
from trajkit.samplers.rollout import Epi, Rollout, build_env, split_budget


class WorkerError(RuntimeError):
    """A sampler worker raised or died; the message carries the worker's traceback."""


def _seeds(seed: int, n: int) -> list[tuple[int, int]]:
    """Independent (env_seed, torch_seed) pairs for ``n`` workers from one sampler seed."""
    out = []
    for child in np.random.SeedSequence(seed).spawn(n):
        a, b = child.generate_state(2, dtype=np.uint32)
        out.append((int(a), int(b)))
    return out


def _shippable_env(env: Any) -> Any:
    """Something a worker can build its own env copy from."""
    if isinstance(env, GymEnv) and getattr(env, "spec", None) is not None and env.spec.id:
        spec = env.spec
        return _SpecFactory(spec.id, dict(spec.kwargs or {}))
    return env


class _SpecFactory:
    """Re-creates a registered env in a worker from its id and make() kwargs."""

    def __init__(self, env_id: str, kwargs: dict[str, Any]) -> None:
        self.env_id, self.kwargs = env_id, kwargs

    def __call__(self) -> GymEnv:
        return GymEnv(self.env_id, **self.kwargs)


class EpiSampler:
    """Samples whole episodes with a policy.

    Args:
        env: an env id, an env object, or a zero-argument factory returning one.
            With worker processes each worker builds its own copy: a registered env is
            re-made from its id, anything else is shipped with cloudpickle (so envs and
            factories defined in a script or notebook work).
        pol: the policy; its structure is shipped to the workers once and its weights
            (``state_dict``: parameters and buffers such as observation statistics)
            with every :meth:`sample` call.
        num_parallel: 0 or 1 samples in this process (with ``pol`` itself, on its
            device); ``K >= 2`` starts ``K`` persistent worker processes (CPU).
        seed: seeds every env's first reset and every action-sampling generator, so the
            same ``seed`` and ``num_parallel`` give identical episodes.
        worker_threads: torch intra-op threads in each worker (default 1: small MLPs
            on few cores run fastest single-threaded).
        start_timeout: seconds to wait for workers to start.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        env: Any,
        pol: torch.nn.Module,
        num_parallel: int = 1,
        seed: int = 0,
        *,
        worker_threads: int = 1,
        start_timeout: float = 120.0,
    ) -> None:
        if num_parallel < 0:
            raise ValueError(f"num_parallel must be >= 0, got {num_parallel}")
        self.num_parallel = max(1, num_parallel)
        self.seed = seed
        self._closed = False
        self._procs: list[subprocess.Popen] = []
        self._conns: list[Connection] = []
        self._pol = pol
        seeds = _seeds(seed, self.num_parallel)
        self._owns_env = not isinstance(env, GymEnv | gym.Env)
        if num_parallel <= 1:
            self._local: Rollout | None = Rollout(build_env(env), pol, *seeds[0])
            return
        self._local = None
        try:
            self._start_workers(_shippable_env(env), pol, seeds, worker_threads, start_timeout)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ workers
    def _start_workers(
        self, env: Any, pol: torch.nn.Module, seeds: list[tuple[int, int]], threads: int, timeout: float
    ) -> None:
        pol_cpu = copy.deepcopy(pol).cpu()
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env_vars = dict(os.environ)
        env_vars["PYTHONPATH"] = os.pathsep.join([pkg_root, env_vars.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        for i, (env_seed, torch_seed) in enumerate(seeds):
            parent_sock, child_sock = socket.socketpair()
            proc = subprocess.Popen(
                [sys.executable, "-m", "trajkit.samplers._worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env_vars,
            )
            child_sock.close()
            self._procs.append(proc)
            self._conns.append(Connection(parent_sock.detach()))
            payload = cloudpickle.dumps(
                {
                    "env": env,
                    "pol": pol_cpu,
                    "env_seed": env_seed,
                    "torch_seed": torch_seed,
                    "threads": threads,
                    "sys_path": list(sys.path),
                }
            )
            self._send(i, ("init", payload))
        self._gather(list(range(len(seeds))), timeout, "starting")

    def _gather(self, workers: list[int], timeout: float | None, what: str) -> list[Any]:
        """Wait (blocking, no polling) for one reply from each worker; fail fast on any error."""
        results: dict[int, Any] = {}
        pending = {self._conns[i]: i for i in workers}
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while pending:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = wait(list(pending), left)
                if not ready:
                    raise WorkerError(f"timed out after {timeout}s {what}; workers {sorted(pending.values())} silent")
                for conn in ready:
                    i = pending.pop(conn)  # type: ignore[call-overload]
                    results[i] = self._reply(i, conn, what)
        except BaseException:
            self._abort()
            raise
        return [results[i] for i in workers]

    def _reply(self, i: int, conn: Connection, what: str) -> Any:
        try:
            status, value = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            code = self._procs[i].wait(timeout=5)
            raise WorkerError(f"sampler worker {i} died while {what} (exit code {code})") from None
        if status == "error":
            raise WorkerError(f"sampler worker {i} raised while {what}:\n{value}")
        return value

    def _send(self, i: int, msg: tuple) -> None:
        self._conns[i].send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))

    def _broadcast(self, msg: tuple) -> None:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        for conn in self._conns:
            conn.send_bytes(data)

    # ------------------------------------------------------------------ public API
    def sample(
        self,
        pol: torch.nn.Module,
        max_epis: int | None = None,
        max_steps: int | None = None,
        deterministic: bool = False,
        timeout: float | None = None,
    ) -> list[Epi]:
        """Episodes with ``pol``: a list of episode dicts for :meth:`trajkit.Traj.from_epis`.

        Args:
            pol: the policy to act with (its current weights are used).
            max_epis: total number of episodes, split evenly over the workers.
            max_steps: total number of steps, split evenly; exact: each worker's last
                episode is cut (marked truncated) to hit its share.
            deterministic: act with the distribution's mode instead of sampling.
            timeout: seconds to wait for the workers before raising (default: no limit).

        Each episode dict has ``obs (T, *obs_shape)``, ``acs (T, *ac_shape)``,
        ``rews (T,)``, the policy's distribution parameters per step (for example
        ``mean`` and ``log_std``), and ``terminated``, ``truncated``, ``final_obs``.
        Episodes come in worker order, so they are reproducible for a given seed.
        """
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        if max_epis is None and max_steps is None:
            raise ValueError("give max_epis, max_steps or both")
        for name, v in (("max_epis", max_epis), ("max_steps", max_steps)):
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self._local is not None:
            self._local.pol = pol
            return self._local.sample(max_epis, max_steps, deterministic)
        if pol is not self._pol:
            self._broadcast(("set_pol", cloudpickle.dumps(copy.deepcopy(pol).cpu())))
            self._gather(list(range(self.num_parallel)), timeout, "receiving the policy")
            self._pol = pol
        weights = {k: v.detach().cpu() for k, v in pol.state_dict().items()}
        epi_shares = split_budget(max_epis, self.num_parallel)
        step_shares = split_budget(max_steps, self.num_parallel)
        active = [i for i in range(self.num_parallel) if epi_shares[i] != 0 and step_shares[i] != 0]
        for i in active:
            self._send(i, ("sample", weights, epi_shares[i], step_shares[i], deterministic))
        results = self._gather(active, timeout, "sampling")
        return [epi for epis in results for epi in epis]

    def state_dict(self) -> dict[str, Any]:
        """RNG state of every env and action generator (picklable), for exact resume.

        Restoring it with :meth:`load_state_dict` on a sampler built with the same env,
        ``num_parallel`` and seed makes the following :meth:`sample` calls return the
        same episodes as the original sampler's would have.
        """
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        if self._local is not None:
            states = [self._local.get_state()]
        else:
            self._broadcast(("get_state",))
            states = self._gather(list(range(self.num_parallel)), None, "saving its state")
        return {"num_parallel": self.num_parallel, "seed": self.seed, "workers": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the RNG state saved by :meth:`state_dict`."""
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        if state["num_parallel"] != self.num_parallel:
            raise ValueError(
                f"state is from a sampler with num_parallel={state['num_parallel']}, this one has {self.num_parallel}"
            )
        if self._local is not None:
            self._local.set_state(state["workers"][0])
            return
        for i, st in enumerate(state["workers"]):
            self._send(i, ("set_state", st))
        self._gather(list(range(self.num_parallel)), None, "restoring its state")

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (empty for the in-process backend)."""
        return [p.pid for p in self._procs]

    def _abort(self) -> None:
        """Kill every worker at once (after an error the others' replies are useless)."""
        for proc in self._procs:
            proc.kill()
        self.close()

    def close(self) -> None:
        """Stop the workers (politely, then by force) and release an env the sampler built. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for i in range(len(self._conns)):
            try:
                self._send(i, ("close",))
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for conn in self._conns:
            conn.close()
        if self._local is not None and self._owns_env:
            self._local.env.close()

    def __enter__(self) -> EpiSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
