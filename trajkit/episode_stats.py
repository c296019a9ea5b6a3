"""Return statistics of completed episodes: one batch (:func:`return_stats`) or a running window.

**Completed episodes.** An episode counts when it is whole: it terminated, or the env's
time limit truncated it. A piece that the sampler's ``max_steps`` cut off
(``sampler_cut``) is not a completed episode: its return is that of a partial episode
and would bias the statistics down, so it is skipped. Episodes without a
``sampler_cut`` mark (hand-made episode dicts, older files) are taken as completed.

**The window** (:class:`EpisodeStats`) keeps the returns and lengths of the last
``window`` completed episodes (100 by default, Stable-Baselines3's ``ep_rew_mean``
convention), carried across iterations, so an iteration that completes no episode
(256-step iterations of a 500-step CartPole episode) still reports the recent returns
instead of NaN. It has ``state_dict()``/``load_state_dict()``, so a checkpoint taken
with it resumes with the same window.

**Joining pieces (continuing episodes).** Pieces from ``EpiSampler(..., continuing=True)``
carry ``continued`` and ``epi_key``. :meth:`EpisodeStats.add` keeps a cut piece's return
and length as pending under its ``epi_key`` and adds them to its continuation, so only
the joined whole episode enters the window. A continued piece whose start it never saw
(added to another EpisodeStats, or before a restore) is skipped, like a cut one. The
pending pieces are not saved in ``state_dict``: a restored sampler starts new episodes,
so they could never be completed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajkit.checks import check_int
from trajkit.traj import Traj

Record = dict[str, float]
Episodes = Traj | Sequence[Mapping[str, Any]]

#: the keys of :meth:`EpisodeStats.stats`, in table order
WINDOW_KEYS = ("return_mean", "return_std", "return_min", "return_max", "epi_len_mean", "window_epis")


@dataclass(frozen=True)
class Piece:
    """One episode or piece of one: undiscounted return, number of steps, cut by the sampler."""

    ret: float
    length: int
    sampler_cut: bool
    continued: bool = False
    key: tuple[int, int] | None = None  #: ``epi_key`` (env, episode number) from a continuing sampler


def episode_pieces(epis: Episodes) -> Iterator[Piece]:
    """The episodes of a :class:`Traj` or of a list of episode dicts (each with ``rews``), in order."""
    if isinstance(epis, Traj):
        rews = epis["rews"].detach().double().cpu().numpy()
        b = epis.bounds.numpy()
        rets = np.add.reduceat(rews, b[:-1]) if len(rews) else np.zeros(0)
        cols = epis.epi
        cut = cols["sampler_cut"].bool().cpu().numpy() if "sampler_cut" in cols else np.zeros(epis.num_epi, bool)
        cont = cols["continued"].bool().cpu().numpy() if "continued" in cols else np.zeros(epis.num_epi, bool)
        keys: list[tuple[int, int] | None] = [None] * epis.num_epi
        if "epi_key" in cols:
            keys = [(int(a), int(b_)) for a, b_ in cols["epi_key"].cpu().tolist()]
        for e in range(epis.num_epi):
            yield Piece(float(rets[e]), int(b[e + 1] - b[e]), bool(cut[e]), bool(cont[e]), keys[e])
        return
    for i, epi in enumerate(epis):
        if "rews" not in epi:
            raise KeyError(f"episode {i} has no 'rews'; keys: {sorted(epi)}")
        rews = np.asarray(epi["rews"], dtype=np.float64)
        key = None if "epi_key" not in epi else (int(epi["epi_key"][0]), int(epi["epi_key"][1]))
        yield Piece(float(rews.sum()), len(rews), bool(epi.get("sampler_cut", False)), bool(epi.get("continued")), key)


def _summary(rets: np.ndarray, lens: np.ndarray) -> Record:
    if len(rets) == 0:
        nan = float("nan")
        return {"return_mean": nan, "return_std": nan, "return_min": nan, "return_max": nan, "epi_len_mean": nan}
    return {
        "return_mean": float(rets.mean()),
        "return_std": float(rets.std()),
        "return_min": float(rets.min()),
        "return_max": float(rets.max()),
        "epi_len_mean": float(lens.mean()),
    }


def return_stats(epis: Episodes) -> Record:
    """Undiscounted return and length statistics of the given episodes, all of them.

    Unlike :class:`EpisodeStats` this keeps pieces cut by the sampler; pass completed
    episodes only (``[e for e in epis if not e["sampler_cut"]]``).

    Args:
        epis: a :class:`Traj` or a list of episode dicts (each with ``rews``).

    Returns:
        ``return_mean``, ``return_std`` (population std), ``return_min``,
        ``return_max``, ``epi_len_mean`` and ``num_epis``; NaN statistics for no episodes.
    """
    pieces = list(episode_pieces(epis))
    rets = np.array([p.ret for p in pieces], dtype=np.float64)
    lens = np.array([p.length for p in pieces], dtype=np.float64)
    return {**_summary(rets, lens), "num_epis": float(len(pieces))}


class EpisodeStats:
    """Running return statistics over the last ``window`` completed episodes.

    Args:
        window: how many of the most recent completed episodes the statistics cover.

    Example::

        stats = EpisodeStats(window=100)
        stats.add(sampler.sample(pol, max_steps=256))  # cut pieces are skipped
        stats.stats()["return_mean"]                     # NaN only before the first episode
    """

    def __init__(self, window: int = 100) -> None:
        self.window = check_int("window", window, min_value=1)
        self._epis: deque[tuple[float, int]] = deque(maxlen=self.window)
        self.total = 0  #: completed episodes added so far (also those that left the window)
        self._pending: dict[tuple[int, int], tuple[float, int]] = {}  # epi_key -> return, length so far

    def __len__(self) -> int:
        """Number of episodes in the window (at most ``window``)."""
        return len(self._epis)

    @property
    def returns(self) -> np.ndarray:
        """Returns of the episodes in the window, oldest first, shape ``(len(self),)``."""
        return np.array([r for r, _ in self._epis], dtype=np.float64)

    @property
    def lengths(self) -> np.ndarray:
        """Lengths (steps) of the episodes in the window, oldest first, shape ``(len(self),)``."""
        return np.array([n for _, n in self._epis], dtype=np.int64)

    def _join(self, piece: Piece) -> tuple[float, int] | None:
        """The return and length of the whole episode ``piece`` completes, or None (cut, or its start unseen)."""
        ret, length = piece.ret, piece.length
        if piece.key is not None:
            before = self._pending.pop(piece.key, None)
            if piece.continued and before is None:
                return None
            if piece.continued and before is not None:
                ret, length = before[0] + ret, before[1] + length
            if piece.sampler_cut:
                self._pending[piece.key] = (ret, length)
        return None if piece.sampler_cut else (ret, length)

    def add(self, epis: Episodes) -> int:
        """Add the completed episodes of ``epis`` (a Traj or episode dicts, in call order); returns how many.

        Pieces of continuing episodes are joined first (module docstring).
        """
        added = 0
        for piece in episode_pieces(epis):
            whole = self._join(piece)
            if whole is not None:
                self._epis.append(whole)
                added += 1
        self.total += added
        return added

    def stats(self) -> Record:
        """``return_mean/std/min/max`` and ``epi_len_mean`` over the window, and ``window_epis``.

        The statistics are NaN while the window is empty; ``window_epis`` is its size.
        """
        return {**_summary(self.returns, self.lengths.astype(np.float64)), "window_epis": float(len(self))}

    def description(self) -> str:
        """What the numbers are, for a table header."""
        return f"return: mean over the last {self.window} completed episodes; epis: how many the window holds"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data: ``window``, ``total``, and the window's ``returns`` and ``lengths`` (oldest first)."""
        return {
            "window": self.window,
            "total": self.total,
            "returns": [r for r, _ in self._epis],
            "lengths": [n for _, n in self._epis],
        }

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise (KeyError, ValueError) if ``state`` is not a :meth:`state_dict` of an EpisodeStats."""
        missing = {"window", "total", "returns", "lengths"} - set(state)
        if missing:
            raise KeyError(f"episode statistics state lacks {sorted(missing)}; has {sorted(state)}")
        if len(state["returns"]) != len(state["lengths"]):
            raise ValueError(
                f"episode statistics state has {len(state['returns'])} returns "
                f"but {len(state['lengths'])} lengths"
            )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; with a smaller ``window`` here, the most recent episodes are kept."""
        self.check_state_dict(state)
        self._epis = deque(
            zip((float(r) for r in state["returns"]), (int(n) for n in state["lengths"]), strict=True),
            maxlen=self.window,
        )
        self.total = int(state["total"])
