"""Estimators, in two layers: kernels over bare tensors, and pure functions ``Traj -> Traj``.

**Kernels** (:mod:`trajkit.ef.kernels`, exported here): :func:`gae`,
:func:`discounted_returns`, :func:`nstep_returns` and :func:`discount_cumsum` take flat
tensors and one shape contract (``N`` steps, ``E`` episodes)::

    rews, vs: (N,)        the steps of E episodes laid end to end
    bounds: (E + 1,)      offsets, 0 = bounds[0] < bounds[1] < ... < bounds[E] = N
    terminated: (E,)      bool, the episode ended in a true terminal state
    final_vs: (E,)        value after each episode's last step, read where not terminated

so ``ef.gae(rews, vs, final_vs, terminated, bounds, gamma=0.99, lam=0.95)`` works
without building a Traj (like TorchRL's value functionals, done and terminated are
kept apart: every episode end is a ``done``; only ``terminated`` ones stop the
bootstrap).

**Traj estimators** (:mod:`trajkit.ef.estimators`): :func:`compute_vs`,
:func:`compute_rets`, :func:`compute_advs`, :func:`centerize_advs`,
:func:`compute_h_masks`, :func:`add_next_obs`, :func:`compute_nstep_rets`,
:func:`compute_pris` are thin wrappers over the kernels; :func:`compute_pseudo_rews` and
:func:`compute_diayn_rews` (:mod:`trajkit.ef.imitation`) replace rewards by a
discriminator's; :func:`scale_rews` (:mod:`trajkit.ef.rewards`) divides them by a
:class:`~trajkit.RewScaler`'s running return scale; :func:`compute_hs`, :func:`carry_hs` (and
:func:`compute_vs` with a recurrent value function) run recurrent models over whole
episodes (:mod:`trajkit.ef.recurrent`). Each returns a new
:class:`~trajkit.traj.Traj` that shares the columns it did not touch; the input is
never modified, so re-running a cell gives the same answer. None of them loops over
steps in Python: discounted sums over ragged episodes are one vectorized linear filter.

Termination versus truncation: an episode that ended in a true terminal state
(``traj.epi_col("terminated")``) has value 0 after its last step; an episode that was
cut off (time limit, or the sampler's ``max_steps``) bootstraps from
``V(final_obs)``, stored by :func:`compute_vs` as the episode column ``final_vs``.

Checks at the call: a missing column raises
:class:`~trajkit.traj.MissingColumnError` saying what to run (:func:`require`, with
the table :data:`PRODUCERS`; ``train()`` functions use it too); ``gamma`` and ``lam``
must be finite numbers in ``[0, 1]`` (above 1 a discounted sum over many steps
overflows), ``n`` and ``chunk_size`` integers ``>= 1``, ``eps`` a finite number
``>= 0`` (TypeError for a non-number, ValueError for a bad value).

Empty input: an empty Traj (``bounds = [0]``, zero episodes) or ``N = 0`` tensors give
empty results of the right shapes, without calling any value or Q function.

The module only needs ``torch``, ``numpy`` and ``scipy`` and can be used without the
rest of trajkit.
"""

from __future__ import annotations

from trajkit.ef.columns import EPI_COLUMNS, PRODUCERS, require
from trajkit.ef.estimators import (
    add_next_obs,
    centerize_advs,
    compute_advs,
    compute_h_masks,
    compute_nstep_rets,
    compute_pris,
    compute_rets,
    compute_vs,
)
from trajkit.ef.imitation import compute_diayn_rews, compute_pseudo_rews
from trajkit.ef.kernels import NStepReturns, discount_cumsum, discounted_returns, gae, nstep_returns
from trajkit.ef.recurrent import carry_hs, compute_hs, compute_seq_pris
from trajkit.ef.rewards import scale_rews

__all__ = [
    "PRODUCERS",
    "EPI_COLUMNS",
    "require",
    "discount_cumsum",
    "discounted_returns",
    "gae",
    "nstep_returns",
    "NStepReturns",
    "compute_vs",
    "compute_rets",
    "compute_advs",
    "centerize_advs",
    "compute_h_masks",
    "carry_hs",
    "compute_hs",
    "compute_seq_pris",
    "add_next_obs",
    "compute_nstep_rets",
    "compute_pris",
    "compute_pseudo_rews",
    "compute_diayn_rews",
    "scale_rews",
]
