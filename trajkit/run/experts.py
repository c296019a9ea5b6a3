"""Expert demonstrations for imitation: train an expert with a preset, record its episodes to a file.

This is how the adversarial-imitation examples, the benchmark and the tests get expert
data: ``runner.train`` with the algorithm's tuned preset, then ``num_epis``
deterministic episodes of the trained policy recorded with
:func:`trajkit.expert_data.record_epis` (what ``trajkit record`` runs). Files are cached
by (algorithm, env, seed, steps, episodes), so a second call returns at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trajkit.checks import check_int
from trajkit.expert_data import record_epis
from trajkit.io import load_traj

__all__ = ["DEFAULT_CACHE", "EXPERT_ALGOS", "expert_file", "expert_return"]

#: where :func:`expert_file` keeps its files unless told otherwise
DEFAULT_CACHE = Path("/tmp/imit_cache_b")

#: the algorithm (with its run-layer preset) that trains the expert of an env
EXPERT_ALGOS: dict[str, str] = {"Pendulum-v1": "sac", "CartPole-v1": "ppo"}

#: env seed of the recorded episodes (apart from training and evaluation seeds)
RECORD_SEED = 20_000


def expert_file(
    env: str,
    *,
    num_epis: int = 10,
    seed: int = 0,
    steps: int | None = None,
    algo: str | None = None,
    cache_dir: str | Path = DEFAULT_CACHE,
) -> Path:
    """The path of a Traj file of ``num_epis`` deterministic expert episodes in ``env`` (made once, then cached).

    Args:
        env: a gymnasium id; its expert algorithm is ``algo`` or :data:`EXPERT_ALGOS`.
        num_epis: episodes to record (``E``).
        seed: the expert's training seed (episodes are recorded from env seed
            ``RECORD_SEED + seed``).
        steps: the expert's training budget (None: the preset's).
        cache_dir: where files and the expert's run directory go.
    """
    check_int("num_epis", num_epis, min_value=1)
    algo = algo or EXPERT_ALGOS.get(env)
    if algo is None:
        raise ValueError(f"no expert algorithm known for {env!r}; pass algo= (one of the run layer's, e.g. sac, ppo)")
    from trajkit.run.presets import resolve
    from trajkit.run.runner import train

    cfg = resolve(algo, env, steps=steps, seed=seed)
    cache = Path(cache_dir)
    path = cache / f"expert_{algo}_{env}_s{seed}_{cfg.steps}_{num_epis}epis.npz"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    outcome = train(cfg, cache / f"run_{algo}_{env}_s{seed}_{cfg.steps}", overwrite=True, progress=False,
                    console=False)
    from trajkit.run.evaluate import load_policy

    pol, _ = load_policy(outcome.checkpoint)
    record_epis(env, pol, num_epis, seed=RECORD_SEED + seed, deterministic=True, path=path)
    return path


def expert_return(path: str | Path) -> float:
    """Mean undiscounted return of the episodes in a Traj file."""
    traj = load_traj(path)
    rews = traj["rews"].double()
    b = traj.bounds
    return float(np.mean([float(rews[b[e]:b[e + 1]].sum()) for e in range(traj.num_epi)]))
