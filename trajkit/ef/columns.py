"""Which estimator adds which column, and :func:`require`, the missing-column check.

The data layer (:mod:`trajkit.traj`) knows no estimator names; the hint in a
:class:`~trajkit.traj.MissingColumnError` ("run ef.compute_vs(traj, vf) first") comes
from here. Estimators, losses and ``train()`` functions call :func:`require` on their
inputs before any work.
"""

from __future__ import annotations

from trajkit.traj import MissingColumnError, Traj

__all__ = ["PRODUCERS", "EPI_COLUMNS", "require"]

#: which estimator adds which column (what to run when it is missing)
PRODUCERS: dict[str, str] = {
    "vs": "ef.compute_vs(traj, vf)",
    "final_vs": "ef.compute_vs(traj, vf)",
    "rets": "ef.compute_rets(traj, gamma)",
    "advs": "ef.compute_advs(traj, gamma, lam)",
    "h_masks": "ef.compute_h_masks(traj)",
    "hs": "ef.compute_hs(traj, pol) (or sample with a recurrent policy)",
    "next_obs": "ef.add_next_obs(traj)",
    "terminals": "ef.add_next_obs(traj)",
    "nstep_rets": "ef.compute_nstep_rets(traj, gamma, n)",
    "nstep_next_obs": "ef.compute_nstep_rets(traj, gamma, n)",
    "nstep_discounts": "ef.compute_nstep_rets(traj, gamma, n)",
    "pris": "ef.compute_pris(traj, qf, target_qf, target_pol, gamma)",
    "env_rews": "ef.compute_pseudo_rews(traj, discrim)",
    "raw_rews": "ef.scale_rews(traj, scaler)",
}

#: episode columns (``(E, ...)``) by name; every other name is a step column
EPI_COLUMNS = frozenset(
    {"terminated", "truncated", "final_obs", "sampler_cut", "continued", "epi_key", "final_vs"}
)

_SAMPLER_HINT = "build the Traj with Traj.from_epis from sampler episodes, which record it"


def _hint(name: str) -> str:
    if name in PRODUCERS:
        return f"run {PRODUCERS[name]} first"
    if name in EPI_COLUMNS:
        return _SAMPLER_HINT
    return ""


def require(traj: Traj, *names: str) -> None:
    """Raise :class:`~trajkit.traj.MissingColumnError` for the first of ``names`` the Traj lacks.

    Names in :data:`EPI_COLUMNS` are looked up among the episode columns (``(E, ...)``),
    all others among the step columns (``(N, ...)``). The error names the column, the
    columns the Traj does have, and what to run to add it, from :data:`PRODUCERS`
    (``compute_advs`` on a Traj without ``vs``: "run ef.compute_vs(traj, vf) first").
    """
    for name in names:
        where = "episode" if name in EPI_COLUMNS else "step"
        cols = traj.epi if where == "episode" else traj.data
        if name not in cols:
            raise MissingColumnError(name, list(cols), where=where, hint=_hint(name))
