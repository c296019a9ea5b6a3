"""``EpiSampler``: whole episodes from one or several copies of an environment."""

from __future__ import annotations

import copy
import sys
from typing import Any, Literal

import cloudpickle
import gymnasium as gym
import numpy as np
import torch

from trajkit.checks import check_int
from trajkit.envs.gym_env import GymEnv
from trajkit.samplers._shipping import shippable_env
from trajkit.samplers._state import check_sampler_state
from trajkit.samplers._timeout import (
    DEFAULT_TIMEOUT,
    SamplerTimeout,
    check_timeout,
    grace,
    silence_limit,
    warn_cannot_alarm,
)
from trajkit.samplers.process_backend import ProcessPool, WorkerError
from trajkit.samplers.rollout import Epi, Rollout, build_envs, check_budget, split_budget

__all__ = ["DEFAULT_TIMEOUT", "EpiSampler", "SamplerTimeout", "WorkerError"]


def _seeds(seed: int, n: int, num_envs: int = 1) -> list[tuple[list[int], int]]:
    """Independent (env_seeds, torch_seed) for ``n`` workers of ``num_envs`` envs each, from one sampler seed.

    Worker ``i`` draws ``num_envs + 1`` words from the ``i``-th spawned SeedSequence: the
    first ``num_envs`` seed its envs, the last its action generator.
    """
    out = []
    for child in np.random.SeedSequence(seed).spawn(n):
        words = [int(w) for w in child.generate_state(num_envs + 1, dtype=np.uint32)]
        out.append((words[:num_envs], words[num_envs]))
    return out


BACKENDS = ("process", "ray")


class EpiSampler:
    """Samples whole episodes with a policy (or, ``continuing``, pieces of episodes).

    A recurrent policy (``pol.recurrent``: built on ``nets.lstm`` or ``nets.gru``) acts
    with each env's own hidden state, reset to ``pol.init_hs(1)`` at every new episode,
    in every backend; every step stores the state the policy entered it with as the step
    column ``hs`` (see :mod:`trajkit.samplers.rollout`).

    Args:
        env: an env id, an env object, or a zero-argument factory returning one.
            With worker processes each worker builds its own copy: a GymEnv made from an
            id is re-made from it, anything else is shipped with cloudpickle (so envs and
            factories defined in a script or notebook work).
        pol: the policy; its structure is shipped to the workers once and its weights
            (``state_dict``: parameters and buffers such as observation statistics)
            with every :meth:`sample` call.
        num_parallel: 0 or 1 samples in this process (with ``pol`` itself, on its
            device); ``K >= 2`` starts ``K`` persistent workers (CPU).
        seed: seeds every env's first reset and every action-sampling generator, so the
            same ``seed``, ``num_parallel`` and ``num_envs_per_worker`` give identical
            episodes, with either backend.
        num_envs_per_worker: envs each worker (or the in-process sampler) steps together,
            with one batched policy forward per step. A worker's budget is split evenly
            over its envs (see :meth:`trajkit.samplers.rollout.Rollout.sample`). With more
            than one, ``env`` must be an id, a factory, or a picklable env object (copied).
        backend: ``"process"`` (worker processes on this machine) or ``"ray"`` (Ray
            actors; needs ``pip install 'trajkit[ray]'``). Ignored when ``num_parallel <= 1``.
        ray_address: for the ray backend, the ``ray.init`` address used if Ray is not
            initialized yet (None: a local Ray; ``"auto"``: the running cluster).
        max_restarts: for the ray backend, how many dead actors in total are replaced and
            their request retried (0: a dead actor raises :class:`WorkerError`).
        worker_threads: torch intra-op threads in each worker (default 1: small MLPs
            on few cores run fastest single-threaded).
        start_timeout: seconds to wait for workers to start.
        timeout: seconds any single env reset, env step or policy forward may take
            (default :data:`DEFAULT_TIMEOUT`, 300 s; None: no limit); :meth:`sample`'s
            ``timeout`` overrides it for one call. A longer call raises
            :class:`SamplerTimeout` naming the worker, the env, its step and the call,
            with the traceback of where it hung; every worker is killed and the sampler
            is closed (build a new one, and ``load_state_dict`` a saved state to go on).
            Enforced with ``SIGALRM`` where the rollout runs, so the in-process sampler
            enforces it only on the main thread (elsewhere it warns); a worker process
            stuck where no signal reaches (native code) is killed by the parent once it
            has sent nothing for ``timeout`` plus a few seconds (a Ray actor ends itself
            then, reported as a dead actor). See ``docs/samplers.md``.
        continuing: False (default): every :meth:`sample` call starts fresh episodes
            (resets every env it uses) and returns whole ones, except the pieces its
            ``max_steps`` cuts. True: an episode that a call's ``max_steps`` cuts goes
            on in the next call instead of being reset, so short calls over many envs
            lose no episodes. The cut piece is marked as at any cut (``truncated``,
            ``sampler_cut``, with its ``final_obs``: estimators bootstrap from it); the
            next call's first piece of that env is marked ``continued``; and every piece
            carries ``epi_key``, ``(env, number)``: ``env`` the sampler-wide env index
            (``worker * num_envs_per_worker + k``), ``number`` the episode's number
            among that env's episodes (from 0). Pieces with equal ``epi_key`` in call
            order join into one episode. See :meth:`sample` for budgets,
            :meth:`state_dict` for resuming.

            A recurrent policy's hidden state is carried with the cut episode: the
            continued piece's first stored ``hs`` is the state the previous piece
            ended in (see below).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        env: Any,
        pol: torch.nn.Module,
        num_parallel: int = 1,
        seed: int = 0,
        *,
        num_envs_per_worker: int = 1,
        backend: str = "process",
        ray_address: str | None = None,
        max_restarts: int = 0,
        worker_threads: int = 1,
        start_timeout: float = 120.0,
        timeout: float | None = DEFAULT_TIMEOUT,
        continuing: bool = False,
    ) -> None:
        self._closed = True  # until built: close() and __del__ have nothing to do
        num_parallel = check_int("num_parallel", num_parallel, min_value=0)
        num_envs_per_worker = check_int("num_envs_per_worker", num_envs_per_worker, min_value=1)
        seed = check_int("seed", seed, min_value=0)
        worker_threads = check_int("worker_threads", worker_threads, min_value=1)
        max_restarts = check_int("max_restarts", max_restarts, min_value=0)
        start_timeout = check_timeout("start_timeout", start_timeout)  # type: ignore[assignment]
        self.timeout = check_timeout("timeout", timeout)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if max_restarts and backend != "ray":
            raise ValueError("max_restarts applies to the ray backend only")
        if not isinstance(continuing, bool):
            raise TypeError(f"continuing must be True or False, got {continuing!r}")
        self.continuing = continuing
        self.num_parallel = max(1, num_parallel)
        self.num_envs_per_worker = num_envs_per_worker
        self.backend = "local" if num_parallel <= 1 else backend
        self.seed = seed
        self._closed = False
        self._pool: Any = None
        self._pids: list[int] = []
        self._pol = pol
        seeds = _seeds(seed, self.num_parallel, num_envs_per_worker)
        self._owns_env = not isinstance(env, GymEnv | gym.Env) or num_envs_per_worker > 1
        if num_parallel <= 1:
            # one env: the caller's object itself; several: copies (the caller's object is not used)
            spec = env if num_envs_per_worker == 1 else shippable_env(env)
            envs = build_envs(spec, num_envs_per_worker)
            self._local: Rollout | None = Rollout(envs, pol, *seeds[0], continuing=continuing)
            warn_cannot_alarm(self.timeout, "by an in-process sampler used off the main thread")
            return
        self._local = None
        try:
            self._start_workers(env, pol, seeds, worker_threads, start_timeout, ray_address, max_restarts)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ workers
    def _start_workers(
        self,
        env: Any,
        pol: torch.nn.Module,
        seeds: list[tuple[list[int], int]],
        threads: int,
        timeout: float | None,
        ray_address: str | None,
        max_restarts: int,
    ) -> None:
        if self.backend == "ray":
            from trajkit.samplers.ray_backend import RayPool

            self._pool = RayPool(len(seeds), ray_address, max_restarts)
        else:
            self._pool = ProcessPool(len(seeds))
        pol_cpu = copy.deepcopy(pol).cpu()
        shipped = shippable_env(env)
        msgs = {}
        for i, (env_seeds, torch_seed) in enumerate(seeds):
            payload = cloudpickle.dumps(
                {
                    "env": shipped,
                    "num_envs": self.num_envs_per_worker,
                    "pol": pol_cpu,
                    "env_seeds": env_seeds,
                    "torch_seed": torch_seed,
                    "threads": threads,
                    "continuing": self.continuing,
                    "env_offset": i * self.num_envs_per_worker,
                }
            )
            # the import path travels outside the payload: unpickling the payload may
            # import modules (an env class's) that only the parent's sys.path can find
            msgs[i] = ("init", payload, list(sys.path))
        pids = self._request(msgs, timeout, "starting")
        self._pids = [pids[i] for i in range(len(seeds))]

    def _request(self, msgs: dict[int, tuple], limit: float | None, what: str) -> dict[int, Any]:
        """``msgs[i]`` to worker ``i``; the replies by worker. Any failure closes the sampler (workers killed).

        ``limit``: the pool's wait limit (see :meth:`_limit`).
        """
        try:
            return self._pool.request(msgs, limit, what)
        except BaseException:
            self.close()
            raise

    def _limit(self, timeout: float | None, sampling: bool) -> float | None:
        """How long the pool waits for a request, for a per-call ``timeout``.

        A quick request (policy, state) gets ``timeout`` plus a grace. A sample: process
        workers send heartbeats, so a worker silent past :func:`silence_limit` is stuck;
        Ray actors send none (their own alarm ends a hung call), so no deadline.
        """
        if timeout is None:
            return None
        if not sampling:
            return timeout + grace(timeout)
        return silence_limit(timeout) if self._pool.heartbeats else None

    def _all(self, msg: tuple, what: str) -> list[Any]:
        """Send the same quick request to every worker; the replies in worker order."""
        out = self._request({i: msg for i in range(self.num_parallel)}, self._limit(self.timeout, False), what)
        return [out[i] for i in range(self.num_parallel)]

    # ------------------------------------------------------------------ public API
    def sample(
        self,
        pol: torch.nn.Module,
        max_epis: int | None = None,
        max_steps: int | None = None,
        deterministic: bool = False,
        timeout: float | None | Literal["default"] = "default",
    ) -> list[Epi]:
        """Episodes with ``pol``: a list of episode dicts for :meth:`trajkit.Traj.from_epis`.

        Args:
            pol: the policy to act with (its current weights are used).
            max_epis: total number of episodes, split evenly over the workers.
            max_steps: total number of steps, split evenly over the workers and then
                over each worker's envs; exact: each env's last episode is cut (marked
                truncated) to hit its share.
            deterministic: act with the distribution's mode instead of sampling.
            timeout: seconds any single env reset, env step or policy forward may take in
                this call; ``"default"``: the sampler's ``timeout``; None: no limit. See
                the class docstring for what a timeout does.

        Each episode dict has ``obs (T, *obs_shape)``, ``acs (T, *ac_shape)``,
        ``rews (T,)``, the policy's distribution parameters per step (for example
        ``mean`` and ``log_std``), and ``terminated``, ``truncated``, ``final_obs`` and
        ``sampler_cut`` (True when this sampler's ``max_steps`` cut the episode; such an
        episode is also ``truncated``). With a recurrent policy also ``hs (T, S)``, the
        hidden state each step was taken from (``init_hs`` at a new episode's first step).
        Episodes come in worker order (within a worker, env by env), so they are
        reproducible for a given seed.

        With ``continuing=True`` the list holds pieces, each also with ``continued``
        (bool: it goes on with the episode this env's last piece of the previous call
        cut) and ``epi_key`` (``(2,)`` int64: env, episode number). ``max_steps`` stays
        exact and is split as above; ``max_epis`` counts pieces, of which every one but
        an env's last, cut one ends its episode (with ``max_epis`` alone, every piece
        ends its episode: it is the number of episodes that end in this call). Split
        calls replay one long call: ``k`` calls of ``max_steps=n`` return the same steps
        (cut into pieces at the call boundaries) as one call of ``max_steps=k * n``
        when ``n`` is divisible by ``num_parallel * num_envs_per_worker`` (then every
        env's share is the same ``n / (num_parallel * num_envs_per_worker)`` in every
        call). A call that raises drops the episodes in progress of the envs it used.

        A policy output that is NaN or infinite raises
        :class:`~trajkit.samplers.NonFiniteActionError` (from a worker: inside a
        :class:`WorkerError`) naming the output, the env and its step, before any env
        steps with it.
        """
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        max_epis, max_steps = check_budget(max_epis, max_steps)
        call_timeout = self.timeout if timeout == "default" else check_timeout("timeout", timeout)
        if self._local is not None:
            return self._sample_here(pol, max_epis, max_steps, deterministic, call_timeout)
        if pol is not self._pol:
            msg = ("set_pol", cloudpickle.dumps(copy.deepcopy(pol).cpu()))
            limit = self._limit(call_timeout, sampling=False)
            self._request(dict.fromkeys(range(self.num_parallel), msg), limit, "receiving the policy")
            self._pol = pol
        weights = {k: v.detach().cpu() for k, v in pol.state_dict().items()}
        epi_shares = split_budget(max_epis, self.num_parallel)
        step_shares = split_budget(max_steps, self.num_parallel)
        active = [i for i in range(self.num_parallel) if epi_shares[i] != 0 and step_shares[i] != 0]
        msgs = {i: ("sample", weights, epi_shares[i], step_shares[i], deterministic, call_timeout) for i in active}
        results = self._request(msgs, self._limit(call_timeout, sampling=True), "sampling")
        return [epi for i in active for epi in results[i]]

    def _sample_here(
        self,
        pol: torch.nn.Module,
        max_epis: int | None,
        max_steps: int | None,
        deterministic: bool,
        timeout: float | None,
    ) -> list[Epi]:
        """The in-process sample; a timeout closes the sampler (its envs are stuck mid-call)."""
        assert self._local is not None
        self._local.pol = pol
        try:
            return self._local.sample(max_epis, max_steps, deterministic, timeout)
        except SamplerTimeout as e:
            self.close()
            raise SamplerTimeout(f"the in-process sampler timed out: {e}; the sampler is closed") from e

    def state_dict(self) -> dict[str, Any]:
        """RNG state of every env and action generator (picklable), for exact resume.

        Restoring it with :meth:`load_state_dict` on a sampler built with the same env,
        ``num_parallel`` and seed makes the following :meth:`sample` calls return the
        same episodes as the original sampler's would have.

        With ``continuing=True``, the episodes in progress are not saved (an env's inner
        state cannot be, in general): a restored sampler starts fresh episodes, so its
        first pieces are new episodes (``continued`` False), the same ones a
        whole-episode sampler restored from the same state would begin with. The
        original sampler goes on with its pieces in progress (saving changes nothing).
        ``epi_key`` numbers are not saved either: they count a sampler object's
        episodes, so they start at 0 again in a new sampler (join pieces only within
        one sampler object's calls, or after a restore from its first pieces on).
        """
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        if self._local is not None:
            states = [self._local.get_state()]
        else:
            states = self._all(("get_state",), "saving its state")
        return {
            "num_parallel": self.num_parallel,
            "num_envs_per_worker": self.num_envs_per_worker,
            "seed": self.seed,
            "workers": states,
        }

    def check_state_dict(self, state: dict[str, Any]) -> None:
        """Raise ValueError naming the mismatch if ``state`` cannot be restored into this sampler.

        ``state`` fits when it is what :meth:`state_dict` of a sampler with the same
        ``num_parallel`` and ``num_envs_per_worker`` returned: the same keys, values of
        the right types, and RNG states that restore. Its ``seed`` may differ. Nothing
        is changed (no worker is contacted), so a checkpoint can check every object
        before it loads any.
        """
        check_sampler_state(state, self.num_parallel, self.num_envs_per_worker)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the RNG state saved by :meth:`state_dict`.

        Continuing, it also drops this sampler's episodes in progress: the next call
        resets every env (from the restored RNGs) and its pieces are new episodes.
        Runs :meth:`check_state_dict` first: a state that does not fit raises ValueError
        and leaves the sampler as it was.
        """
        if self._closed:
            raise RuntimeError("this EpiSampler is closed")
        self.check_state_dict(state)
        if self._local is not None:
            self._local.set_state(state["workers"][0])
            return
        msgs = {i: ("set_state", st) for i, st in enumerate(state["workers"])}
        self._request(msgs, self._limit(self.timeout, False), "restoring its state")

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers (empty for the in-process backend; Ray actors' on their nodes)."""
        return list(self._pids)

    def close(self) -> None:
        """Stop the workers (politely, then by force) and release envs the sampler built. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()
        if self._local is not None and self._owns_env:
            for env in self._local.envs:
                env.close()

    def __enter__(self) -> EpiSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
