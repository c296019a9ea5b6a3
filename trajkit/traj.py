"""``Traj``: a batch of episodes stored as flat step columns plus episode boundaries.

Vocabulary used in shapes: ``N`` steps in the whole Traj, ``E`` episodes, ``B`` a batch,
``T`` steps of one episode.

A Traj holds

* **step columns** (``traj["obs"]``, ``traj["acs"]``, ``traj["rews"]``, the policy's
  distribution parameters such as ``traj["mean"]``, and whatever estimators add): tensors
  of shape ``(N, ...)``;
* **episode columns** (``traj.epi["terminated"]``, ``traj.epi["truncated"]``,
  ``traj.epi["final_obs"]``, ``traj.epi["sampler_cut"]`` (truncated by the sampler's
  ``max_steps`` rather than by the env), ``traj.epi["continued"]`` and
  ``traj.epi["epi_key"]`` ``(E, 2)`` (from a continuing sampler: the piece continues
  one from the previous call; which env's which episode it is), and ``traj.epi["final_vs"]`` after
  ``ef.compute_vs``): tensors of shape ``(E, ...)``;
* **bounds**: a ``(E + 1,)`` int64 tensor of offsets; episode ``e`` owns the steps
  ``bounds[e]:bounds[e + 1]``.

A Traj is immutable by convention: every method returns a new Traj that shares the
tensors it did not change. Iterators hold no cursor; they take a seed or a
``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from trajkit._epi_columns import EPI_KEYS, columns_from_epis
from trajkit._rnn_batches import Windows, check_seq_args, padded_batch, windows
from trajkit.checks import check_int

__all__ = ["EPI_KEYS", "Batch", "MissingColumnError", "Traj", "concat"]

Batch = dict[str, torch.Tensor]

class MissingColumnError(KeyError):
    """A column an estimator, loss or algorithm needs is not in the Traj.

    Args:
        name: the missing column.
        available: the columns the Traj (or batch source) does have.
        where: ``"step"`` or ``"episode"``: which kind of column is missing.
        hint: what to do about it, written by the caller that knows, e.g.
            ``"run ef.compute_vs first"``; the message is complete without it.
    """

    def __init__(self, name: str, available: Sequence[str], where: str = "step", hint: str = "") -> None:
        self.name = name
        self.hint = hint
        fix = f" Fix: {hint.rstrip('.')}." if hint else ""
        self.message = f"Traj has no {where} column {name!r}.{fix} Available {where} columns: {sorted(available)}."
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A generator from a seed; ``None`` means torch's default generator (``torch.manual_seed``)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator))


class Traj:
    """Episodes as flat ``(N, ...)`` step columns, ``(E, ...)`` episode columns and bounds.

    Build one with :meth:`Traj.from_epis` from the episode dicts a sampler returns, or
    directly from tensors. The constructor checks that every step column has ``N`` rows
    and every episode column ``E`` rows.

    An empty Traj (``bounds == [0]``, no episodes) can be constructed, e.g. by
    :meth:`select_epis` with an all-False mask, and inspected (``num_step == 0``,
    :meth:`full_batch`), but the iterators (:meth:`random_batch`, :meth:`iterate`,
    :meth:`iterate_epi`, :meth:`iterate_rnn`) refuse it with a ValueError: training on no
    data is a bug upstream, not a no-op. :meth:`from_epis` needs at least one episode.
    """

    __slots__ = ("_data", "_epi", "_bounds")

    def __init__(
        self,
        data: Mapping[str, torch.Tensor],
        epi: Mapping[str, torch.Tensor],
        bounds: torch.Tensor,
    ) -> None:
        bounds = torch.as_tensor(bounds, dtype=torch.int64).cpu()
        if bounds.ndim != 1 or len(bounds) < 1 or int(bounds[0]) != 0:
            raise ValueError("bounds must be a 1-D offsets tensor starting at 0")
        if len(bounds) > 1 and bool((bounds[1:] <= bounds[:-1]).any()):
            e = int(torch.nonzero(bounds[1:] <= bounds[:-1])[0])
            raise ValueError(f"bounds must be strictly increasing: episode {e} has no steps")
        n, e = int(bounds[-1]), len(bounds) - 1
        for k, v in data.items():
            if v.shape[0] != n:
                raise ValueError(f"step column {k!r} has {v.shape[0]} rows, expected N={n}")
        for k, v in epi.items():
            if v.shape[0] != e:
                raise ValueError(f"episode column {k!r} has {v.shape[0]} rows, expected E={e}")
        if "terminated" in epi and "truncated" in epi and epi["terminated"].device.type != "meta":
            ended = epi["terminated"].bool() ^ epi["truncated"].bool()
            if not bool(ended.all()):
                i = int(torch.nonzero(~ended)[0])
                raise ValueError(
                    f"episode {i} must be either terminated or truncated (exactly one), "
                    f"got terminated={bool(epi['terminated'][i])}, truncated={bool(epi['truncated'][i])}"
                )
        self._data = dict(data)
        self._epi = dict(epi)
        self._bounds = bounds

    # ------------------------------------------------------------------ building
    @classmethod
    def from_epis(cls, epis: Sequence[Mapping[str, Any]], device: torch.device | str = "cpu") -> Traj:
        """Build a Traj from a list of episode dicts.

        Each episode maps step-column names to arrays of shape ``(T, ...)`` (``obs``,
        ``acs``, ``rews`` at least) and carries the episode keys ``terminated`` (bool),
        ``truncated`` (bool), ``final_obs`` (the observation after the last step) and
        optionally ``sampler_cut`` (bool: cut by the sampler's step budget), and, from a
        continuing sampler, ``continued`` (bool) and ``epi_key`` (two ints: env index and
        episode number). All episodes must have the same keys.

        Raises:
            ValueError: on an empty list, an episode without steps, episodes with
                different keys, columns whose lengths disagree within an episode, or a
                non-finite reward, observation or final observation (the message names
                the episode and the step).
        """
        data, epi_cols, bounds = columns_from_epis(epis)
        return cls(data, epi_cols, bounds).to(device)

    # ------------------------------------------------------------------ access
    @property
    def data(self) -> dict[str, torch.Tensor]:
        """The step columns (a copy of the dict; the tensors are shared)."""
        return dict(self._data)

    @property
    def epi(self) -> dict[str, torch.Tensor]:
        """The episode columns (a copy of the dict; the tensors are shared)."""
        return dict(self._epi)

    @property
    def bounds(self) -> torch.Tensor:
        """``(E + 1,)`` int64 offsets of the episodes in the step columns."""
        return self._bounds

    @property
    def num_step(self) -> int:
        """``N``, the number of steps."""
        return int(self._bounds[-1])

    @property
    def num_epi(self) -> int:
        """``E``, the number of episodes."""
        return len(self._bounds) - 1

    @property
    def epi_lens(self) -> torch.Tensor:
        """``(E,)`` int64 episode lengths."""
        return self._bounds[1:] - self._bounds[:-1]

    @property
    def device(self) -> torch.device:
        return self._data["rews"].device if "rews" in self._data else torch.device("cpu")

    def __getitem__(self, name: str) -> torch.Tensor:
        """The step column ``name``, shape ``(N, ...)``; a clear error names the estimator to run."""
        try:
            return self._data[name]
        except KeyError:
            raise MissingColumnError(name, list(self._data)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def epi_col(self, name: str) -> torch.Tensor:
        """The episode column ``name``, shape ``(E, ...)``."""
        try:
            return self._epi[name]
        except KeyError:
            raise MissingColumnError(name, list(self._epi), where="episode") from None

    def keys(self) -> list[str]:
        return list(self._data)

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}{tuple(v.shape[1:])}" for k, v in self._data.items())
        return f"Traj(num_epi={self.num_epi}, num_step={self.num_step}, columns=[{cols}])"

    def epi_ids(self) -> torch.Tensor:
        """``(N,)`` int64: the episode index of each step."""
        return torch.repeat_interleave(torch.arange(self.num_epi), self.epi_lens).to(self.device)

    def first_idx(self) -> torch.Tensor:
        """``(E,)`` int64: step index of each episode's first step."""
        return self._bounds[:-1].to(self.device)

    def last_idx(self) -> torch.Tensor:
        """``(E,)`` int64: step index of each episode's last step."""
        return (self._bounds[1:] - 1).to(self.device)

    # ------------------------------------------------------------------ new Trajs
    def with_columns(self, **cols: torch.Tensor) -> Traj:
        """A new Traj with step columns added or replaced; all other columns are shared."""
        data = dict(self._data)
        data.update(cols)
        return Traj(data, self._epi, self._bounds)

    def with_epi_columns(self, **cols: torch.Tensor) -> Traj:
        """A new Traj with episode columns added or replaced."""
        epi = dict(self._epi)
        epi.update(cols)
        return Traj(self._data, epi, self._bounds)

    def to(self, device: torch.device | str) -> Traj:
        """A copy of the Traj on ``device`` (tensors already there are shared)."""
        return Traj(
            {k: v.to(device) for k, v in self._data.items()},
            {k: v.to(device) for k, v in self._epi.items()},
            self._bounds,
        )

    def add_traj(self, other: Traj) -> Traj:
        """A new Traj holding this Traj's episodes followed by ``other``'s."""
        return concat([self, other])

    def select_epis(self, idx: Sequence[int] | torch.Tensor) -> Traj:
        """A new Traj with the episodes ``idx`` (in that order), or where an ``(E,)`` bool mask is True."""
        idx = torch.as_tensor(idx).cpu()
        if idx.dtype == torch.bool:  # e.g. traj.epi_col("terminated"); as int64 it would mean episodes 0/1
            if idx.shape != (self.num_epi,):
                raise ValueError(f"an episode mask needs shape ({self.num_epi},), got {tuple(idx.shape)}")
            idx = torch.nonzero(idx).reshape(-1)
        idx = idx.to(torch.int64)
        lens = self.epi_lens[idx]
        starts = self._bounds[:-1][idx]
        steps = _ranges(starts, lens).to(self.device)
        bounds = torch.zeros(len(idx) + 1, dtype=torch.int64)
        bounds[1:] = torch.cumsum(lens, 0)
        dev_idx = idx.to(self.device)
        return Traj(
            {k: v[steps] for k, v in self._data.items()},
            {k: v[dev_idx] for k, v in self._epi.items()},
            bounds,
        )

    def epi_view(self, e: int) -> Batch:
        """Step columns of episode ``e`` as views, shape ``(T, ...)``, plus its episode columns."""
        if not -self.num_epi <= e < self.num_epi:
            raise IndexError(f"episode {e} out of range for a Traj with {self.num_epi} episodes")
        e = e % self.num_epi
        s, t = int(self._bounds[e]), int(self._bounds[e + 1])
        out = {k: v[s:t] for k, v in self._data.items()}
        out.update({k: v[e] for k, v in self._epi.items()})
        return out

    # ------------------------------------------------------------------ iterators
    def full_batch(self) -> Batch:
        """All step columns as one batch, shape ``(N, ...)``."""
        return dict(self._data)

    def _check_not_empty(self, what: str) -> None:
        if self.num_step == 0:
            raise ValueError(f"{what} on an empty Traj ({self!r}); there are no steps to draw from")

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch:
        """``batch_size`` steps drawn uniformly with replacement, shape ``(B, ...)``.

        Raises:
            TypeError: ``batch_size`` is not an integer.
            ValueError: ``batch_size < 1``, or the Traj is empty.
        """
        batch_size = check_int("batch_size", batch_size, min_value=1)
        self._check_not_empty("random_batch")
        g = _as_generator(generator)
        idx = torch.randint(self.num_step, (batch_size,), generator=g).to(self.device)
        return {k: v[idx] for k, v in self._data.items()}

    def iterate(
        self,
        batch_size: int,
        epoch: int = 1,
        shuffle: bool = True,
        generator: torch.Generator | int | None = None,
    ) -> Iterator[Batch]:
        """Minibatches over all steps, ``epoch`` times; the last partial batch is kept.

        Each batch maps column names to tensors of shape ``(B, ...)`` with
        ``B <= batch_size``. With ``shuffle`` each epoch draws a new permutation from
        ``generator`` (a ``torch.Generator``, an int seed, or ``None`` for torch's default
        generator). No state is stored on the Traj.

        Raises (at the call, not at the first batch):
            TypeError: ``batch_size`` or ``epoch`` is not an integer.
            ValueError: ``batch_size < 1``, ``epoch < 1``, or the Traj is empty.
        """
        batch_size = check_int("batch_size", batch_size, min_value=1)
        epoch = check_int("epoch", epoch, min_value=1)
        self._check_not_empty("iterate")
        return self._iterate(batch_size, epoch, shuffle, _as_generator(generator))

    def _iterate(
        self, batch_size: int, epoch: int, shuffle: bool, g: torch.Generator | None
    ) -> Iterator[Batch]:
        n = self.num_step
        for _ in range(epoch):
            order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
            order = order.to(self.device)
            for s in range(0, n, batch_size):
                idx = order[s : s + batch_size]
                yield {k: v[idx] for k, v in self._data.items()}

    def iterate_epi(
        self, shuffle: bool = False, generator: torch.Generator | int | None = None
    ) -> Iterator[Batch]:
        """One batch per episode: its step columns ``(T, ...)`` and episode columns.

        Raises:
            ValueError: the Traj is empty (at the call).
        """
        self._check_not_empty("iterate_epi")
        order = torch.randperm(self.num_epi, generator=_as_generator(generator)) if shuffle else range(self.num_epi)
        return (self.epi_view(int(e)) for e in order)

    def iterate_rnn(
        self,
        batch_size: int,
        epoch: int = 1,
        shuffle: bool = True,
        generator: torch.Generator | int | None = None,
        seq_len: int | None = None,
        burn_in: int = 0,
    ) -> Iterator[Batch]:
        """Batches of sequences, padded to a common length, for recurrent models.

        Each batch maps step-column names to tensors of shape ``(T, B, ...)`` (time first,
        as ``torch.nn.LSTM`` expects), padded with zeros after each sequence's end, plus
        ``"mask"`` of shape ``(T, B)`` (1 on the steps a loss should count, 0 on burn-in
        steps and padding) and the episode columns of the sequences' episodes, ``(B, ...)``.
        ``batch_size`` counts sequences; the last partial batch is kept. Only one batch's
        steps are gathered at a time (memory is bounded by the batch).

        Sequences are whole episodes (``seq_len`` None), or chunks: each episode is cut
        into chunks of ``seq_len`` steps (its last chunk may be shorter), and each chunk
        starts ``burn_in`` steps earlier in the same episode (fewer where the episode has
        fewer before it), steps that only warm a recurrent state (``mask`` 0 there). A
        sequence never crosses an episode boundary; a model replays it from the stored
        state at its first step (``batch["hs"][0]``, from the sampler or ``ef.compute_hs``).

        Raises (at the call, not at the first batch):
            TypeError: ``batch_size``, ``epoch``, ``seq_len`` or ``burn_in`` is not an integer.
            ValueError: ``batch_size < 1``, ``epoch < 1``, ``seq_len < 1``, ``burn_in < 0``, or an empty Traj.
            ValueError: ``burn_in >= seq_len``, or ``burn_in`` without ``seq_len``.
        """
        batch_size = check_int("batch_size", batch_size, min_value=1)
        epoch = check_int("epoch", epoch, min_value=1)
        seq_len, burn_in = check_seq_args(seq_len, burn_in)
        self._check_not_empty("iterate_rnn")
        w = windows(self._bounds, seq_len, burn_in)
        return self._iterate_rnn(w, batch_size, epoch, shuffle, _as_generator(generator))

    def _iterate_rnn(
        self, w: Windows, batch_size: int, epoch: int, shuffle: bool, g: torch.Generator | None
    ) -> Iterator[Batch]:
        n = len(w.lens)
        for _ in range(epoch):
            order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
            for s in range(0, n, batch_size):
                yield padded_batch(self._data, self._epi, w, order[s : s + batch_size])


def concat(trajs: Sequence[Traj]) -> Traj:
    """One Traj holding the episodes of ``trajs`` in order.

    Step and episode columns present in every Traj are kept; a column missing from some
    of them raises, since silently dropping it would lose data.
    """
    if len(trajs) == 0:
        raise ValueError("concat needs at least one Traj")
    keys = set(trajs[0]._data)
    epi_keys = set(trajs[0]._epi)
    for i, t in enumerate(trajs[1:], 1):
        if set(t._data) != keys or set(t._epi) != epi_keys:
            raise ValueError(
                f"Traj {i} has columns {sorted(t._data)} / {sorted(t._epi)}, Traj 0 has "
                f"{sorted(keys)} / {sorted(epi_keys)}; run the same estimators on both before concat"
            )
    data = {k: torch.cat([t._data[k] for t in trajs]) for k in trajs[0]._data}
    epi = {k: torch.cat([t._epi[k] for t in trajs]) for k in trajs[0]._epi}
    lens = torch.cat([t.epi_lens for t in trajs])
    bounds = torch.zeros(len(lens) + 1, dtype=torch.int64)
    bounds[1:] = torch.cumsum(lens, 0)
    return Traj(data, epi, bounds)


def _ranges(starts: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + l)`` for each (s, l), vectorized."""
    total = int(lens.sum())
    offsets = torch.repeat_interleave(starts - torch.cumsum(lens, 0) + lens, lens)
    return torch.arange(total) + offsets
