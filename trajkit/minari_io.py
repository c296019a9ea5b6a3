"""Minari interop: a Minari dataset as a Traj, and a Traj as a Minari dataset.

Needs the ``minari`` extra (``pip install "trajkit[minari]"``: Minari with its HDF5
storage). Nothing is downloaded: datasets are read from and written to Minari's local
directory (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).

Layouts, for an episode of ``T`` steps: Minari stores ``observations: (T + 1, ...)`` (the
reset observation through the one after the last step), ``actions: (T, ...)``,
``rewards``, ``terminations`` and ``truncations: (T,)``. A Traj stores ``obs: (T, ...)``,
``acs``, ``rews: (T,)`` as step columns and ``final_obs``, ``terminated``, ``truncated``
as episode columns. Only the last step of an episode may end it, so the two carry the
same information: the conversion is exact both ways (dtypes, terminations, truncations,
episode bounds). Only Box and Discrete (flat, non-dict) observation and action spaces
are supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trajkit.traj import Traj

__all__ = ["load_minari", "save_minari"]


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise ImportError('Minari interop needs minari: pip install "trajkit[minari]" (or "minari[hdf5]")') from None
    return minari


def _episode(ep: Any, i: int) -> dict[str, Any]:
    """One Minari episode as a trajkit episode dict (ValueError if it ends before its last step or never)."""
    obs = np.asarray(ep.observations)
    if not isinstance(ep.observations, np.ndarray):
        raise ValueError(f"episode {i}: only array observations are supported, got {type(ep.observations).__name__}")
    term, trunc = np.asarray(ep.terminations, bool), np.asarray(ep.truncations, bool)
    t = len(ep.rewards)
    if len(obs) != t + 1:
        raise ValueError(f"episode {i}: {len(obs)} observations for {t} steps; Minari stores T + 1")
    if t == 0:
        raise ValueError(f"episode {i} has no steps")
    if bool((term[:-1] | trunc[:-1]).any()):
        raise ValueError(f"episode {i} ends before its last step (a termination or truncation at step "
                         f"{int(np.nonzero(term[:-1] | trunc[:-1])[0][0])} of {t})")
    ended = bool(term[-1] or trunc[-1])
    return {
        "obs": obs[:-1],
        "acs": np.asarray(ep.actions),
        "rews": np.asarray(ep.rewards),
        "terminated": bool(term[-1]),
        # both set: a true terminal state (value 0); neither: cut off by the collection, as a sampler's cut
        "truncated": not bool(term[-1]),
        "sampler_cut": not ended,
        "final_obs": obs[-1],
    }


def load_minari(dataset: Any) -> Traj:
    """A Minari dataset (a ``MinariDataset`` or the id of a local one) as a Traj.

    Step columns ``obs: (N, *obs_shape)``, ``acs: (N, *ac_shape)`` and ``rews: (N,)``
    (float64 rewards become float32, as in ``Traj.from_epis``), episode columns
    ``terminated``, ``truncated``, ``sampler_cut`` and ``final_obs``. An episode whose
    last step is both terminated and truncated counts as terminated; one whose last step
    is neither (collection stopped mid-episode) as truncated with ``sampler_cut``.
    """
    minari = _minari()
    ds = minari.load_dataset(dataset) if isinstance(dataset, str) else dataset
    epis = [_episode(ep, i) for i, ep in enumerate(ds.iterate_episodes())]
    if not epis:
        raise ValueError(f"Minari dataset {getattr(ds, 'id', dataset)!r} has no episodes")
    return Traj.from_epis(epis)


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def save_minari(
    traj: Traj,
    dataset_id: str,
    *,
    env: Any = None,
    observation_space: Any = None,
    action_space: Any = None,
    algorithm_name: str | None = None,
) -> Any:
    """Write ``traj`` as the local Minari dataset ``dataset_id``; returns the ``MinariDataset``.

    ``env`` (an id, a gymnasium env or spec) records the env in the dataset's metadata
    and gives its spaces; without it pass ``observation_space`` and ``action_space``.
    ``traj["acs"]`` is written as it is (the policy's own action space: give
    ``action_space`` accordingly). Needs the episode columns ``terminated``,
    ``truncated`` and ``final_obs`` (every sampler-made Traj has them); a cut piece of
    a continuing sampler is written as a truncated episode.
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    missing = [k for k in ("obs", "acs", "rews") if k not in traj]
    missing += [k for k in ("terminated", "truncated", "final_obs") if k not in traj.epi]
    if missing:
        raise ValueError(f"save_minari needs the columns obs, acs, rews, terminated, truncated, final_obs; "
                         f"missing {missing}")
    if traj.num_epi == 0:
        raise ValueError("save_minari needs at least one episode")
    if env is None and (observation_space is None or action_space is None):
        raise ValueError("save_minari needs env, or both observation_space and action_space")
    buffers = []
    b = traj.bounds.tolist()
    for e in range(traj.num_epi):
        lo, hi = b[e], b[e + 1]
        obs = _as_numpy(traj["obs"][lo:hi])
        final = _as_numpy(traj.epi["final_obs"][e])[None]
        term = np.zeros(hi - lo, bool)
        trunc = np.zeros(hi - lo, bool)
        term[-1], trunc[-1] = bool(traj.epi["terminated"][e]), bool(traj.epi["truncated"][e])
        buffers.append(EpisodeBuffer(
            id=e, observations=np.concatenate([obs, final.astype(obs.dtype)]),
            actions=_as_numpy(traj["acs"][lo:hi]), rewards=_as_numpy(traj["rews"][lo:hi]),
            terminations=term, truncations=trunc, infos={},
        ))
    return minari.create_dataset_from_buffers(
        dataset_id, buffers, env=env, observation_space=observation_space, action_space=action_space,
        algorithm_name=algorithm_name, data_format="hdf5",
    )
