"""Sampler RNG state: what ``state_dict()`` saves, and the checks ``load_state_dict()`` runs first.

A rollout's state (one per worker) is a dict with

- ``env_seeds``: one pending first-reset seed per env (an int, or None once used),
- ``env_rngs``: one ``np_random.bit_generator.state`` dict per env (None for an env without one),
- ``gens``: the action generators' states, ``{device string: torch.ByteTensor}``.

Restoring goes through :func:`build_rollout_rngs`, which builds every new RNG object
before anything is assigned, so a state that does not fit raises without changing the
rollout; :func:`check_rollout_state` runs the same code and throws the objects away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

ROLLOUT_KEYS = frozenset({"env_seeds", "env_rngs", "gens"})
SAMPLER_KEYS = frozenset({"num_parallel", "num_envs_per_worker", "seed", "workers"})


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def check_keys(state: object, expected: frozenset[str], where: str) -> Mapping[str, Any]:
    """``state`` as a mapping with exactly the keys ``expected``; ValueError naming the missing or extra ones."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(state).__name__}")
    keys = set(state)
    missing, extra = sorted(expected - keys), sorted(map(str, keys - expected))
    if missing or extra:
        raise ValueError(f"{where} does not fit: missing keys {missing}, unexpected keys {extra}")
    return state


def _env_rng(st: object, where: str) -> np.random.Generator | None:
    """A numpy Generator in the saved bit-generator state ``st`` (None stays None)."""
    if st is None:
        return None
    if not isinstance(st, Mapping):
        raise ValueError(f"{where} is not a numpy bit generator state (got {st!r:.80})")
    name = st.get("bit_generator")
    cls = getattr(np.random, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
        raise ValueError(f"{where} is not a numpy bit generator state (got {st!r:.80})")
    bit_gen = cls()
    try:
        bit_gen.state = dict(st)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{where} is not a valid {name} state: {e}") from e
    return np.random.Generator(bit_gen)


def _action_gen(device: object, st: object, where: str) -> tuple[torch.device, torch.Generator]:
    """A torch Generator on ``device`` in the saved state ``st``."""
    if not isinstance(device, str) or not isinstance(st, torch.Tensor) or st.dtype != torch.uint8:
        raise ValueError(f"{where} must map a device name to a uint8 tensor, got {device!r}: {type(st).__name__}")
    try:
        gen = torch.Generator(device=device)
        gen.set_state(st)
    except RuntimeError as e:
        raise ValueError(f"{where}[{device!r}] cannot be restored here: {e}") from e
    return torch.device(device), gen


def build_rollout_rngs(
    state: object, num_envs: int, where: str = "state"
) -> tuple[list[int | None], list[np.random.Generator | None], dict[torch.device, torch.Generator]]:
    """The pending seeds, env RNGs and action generators a rollout of ``num_envs`` envs restores from ``state``.

    Raises ValueError naming the part of ``state`` that does not fit; creates new objects only.
    """
    st = check_keys(state, ROLLOUT_KEYS, where)
    seeds, rngs, gens = st["env_seeds"], st["env_rngs"], st["gens"]
    for name, value in (("env_seeds", seeds), ("env_rngs", rngs)):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ValueError(f"{where}['{name}'] must be a list, got {type(value).__name__}")
        if len(value) != num_envs:
            raise ValueError(f"{where}['{name}'] is for {len(value)} envs, this sampler steps {num_envs} per worker")
    for k, s in enumerate(seeds):
        if s is not None and not _is_int(s):
            raise ValueError(f"{where}['env_seeds'][{k}] must be an int or None, got {s!r}")
    if not isinstance(gens, Mapping):
        raise ValueError(f"{where}['gens'] must be a dict, got {type(gens).__name__}")
    env_rngs = [_env_rng(r, f"{where}['env_rngs'][{k}]") for k, r in enumerate(rngs)]
    action_gens = dict(_action_gen(d, g, f"{where}['gens']") for d, g in gens.items())
    return [None if s is None else int(s) for s in seeds], env_rngs, action_gens


def check_rollout_state(state: object, num_envs: int, where: str = "state") -> None:
    """Raise ValueError if ``state`` cannot be restored into a rollout of ``num_envs`` envs; change nothing."""
    build_rollout_rngs(state, num_envs, where)


def check_sampler_state(state: object, num_parallel: int, num_envs_per_worker: int) -> None:
    """Raise ValueError naming the mismatch if ``state`` (from ``EpiSampler.state_dict``) does not fit.

    It fits when it has exactly the sampler's keys, was saved by a sampler with the same
    ``num_parallel`` and ``num_envs_per_worker``, and every worker's part restores.
    The ``seed`` it was saved with may differ (restoring moves this sampler onto it).
    """
    st = check_keys(state, SAMPLER_KEYS, "sampler state")
    for name, mine in (("num_parallel", num_parallel), ("num_envs_per_worker", num_envs_per_worker)):
        if not _is_int(st[name]):
            raise ValueError(f"sampler state['{name}'] must be an int, got {st[name]!r}")
        if st[name] != mine:
            raise ValueError(f"state is from a sampler with {name}={st[name]}, this one has {mine}")
    if not _is_int(st["seed"]):
        raise ValueError(f"sampler state['seed'] must be an int, got {st['seed']!r}")
    workers = st["workers"]
    if not isinstance(workers, Sequence) or isinstance(workers, str) or len(workers) != num_parallel:
        got = f"{len(workers)} entries" if isinstance(workers, Sequence) else type(workers).__name__
        raise ValueError(f"sampler state['workers'] must be a list of {num_parallel} worker states, got {got}")
    for i, w in enumerate(workers):
        check_rollout_state(w, num_envs_per_worker, f"sampler state['workers'][{i}]")
