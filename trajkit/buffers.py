"""Replay storage for off-policy learning.

:class:`ReplayBuffer` keeps the most recent ``capacity`` steps in a **ring**: step
columns are preallocated once (lazily, on the first :meth:`~ReplayBuffer.add`) and
each new step overwrites the oldest one. A column's per-step shape and dtype are fixed
then: from the spaces for ``obs``/``next_obs``/``nstep_next_obs`` and ``acs`` when the
buffer is given them, otherwise from the first Traj, with floating columns and the
reward-like columns (:data:`FLOAT_COLUMNS`) stored as float32 and integer ones as
int64. A later Traj whose column has another per-step shape, or a dtype that would lose
information when stored (a float into an integer or bool column), is refused with an
error naming the column, the stored shape/dtype and the given one.
Adding a Traj of ``N`` steps costs ``O(N)`` whatever the capacity: the buffer is never
re-concatenated. Because steps are stored with their own ``next_obs`` and
``terminals`` (from :func:`trajkit.ef.add_next_obs`, applied by ``add`` when missing),
evicting the oldest steps of an episode never corrupts a Bellman target.

:class:`PrioritizedReplayBuffer` adds proportional prioritized sampling (Schaul et al.,
2016) over a :class:`SumTree`: ``P(i) = p_i**per_alpha / sum_k p_k**per_alpha``; the
importance weights use a ``per_beta`` the caller passes to every :meth:`sample` call (no
hidden annealing state).

Both live on a device the user chooses; sampled batches are on that device. Both
satisfy :class:`trajkit.algos.sources.BatchSource` (the prioritized one also
:class:`~trajkit.algos.sources.PrioritizedSource`), so every off-policy ``train()``
accepts them where it accepts a Traj.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from trajkit import ef
from trajkit.checks import check_float, check_int, check_unit
from trajkit.traj import Batch, MissingColumnError, Traj, _as_generator

#: columns stored as float32 whatever dtype the first Traj gives them
FLOAT_COLUMNS = frozenset({"rews", "terminals", "nstep_rets", "nstep_discounts", "pris"})
#: columns whose per-step shape and dtype come from the observation space
OBS_COLUMNS = frozenset({"obs", "next_obs", "nstep_next_obs"})

Spec = tuple[tuple[int, ...], torch.dtype]


def space_spec(space: gym.Space) -> Spec:
    """Per-step shape and stored dtype of one element of ``space`` (float spaces as float32)."""
    if isinstance(space, gym.spaces.Discrete):
        return (), torch.int64
    if isinstance(space, gym.spaces.MultiDiscrete | gym.spaces.MultiBinary):
        return tuple(space.shape), torch.int64
    if isinstance(space, gym.spaces.Box):
        dtype = torch.from_numpy(np.zeros(0, dtype=space.dtype)).dtype
        return tuple(space.shape), torch.float32 if dtype.is_floating_point else dtype
    raise TypeError(f"a replay buffer stores Box, Discrete, MultiDiscrete or MultiBinary spaces, got {space}")


def stored_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype a column of ``dtype`` is stored as: float32 for floating and :data:`FLOAT_COLUMNS`,
    int64 for other integers, bool kept."""
    if name in FLOAT_COLUMNS or dtype.is_floating_point:
        return torch.float32
    if dtype == torch.bool or dtype.is_complex:
        return dtype
    return torch.int64


def _kind(dtype: torch.dtype) -> int:
    """0 bool, 1 integer, 2 floating, 3 complex: storing a higher kind in a lower one loses information."""
    if dtype == torch.bool:
        return 0
    return 3 if dtype.is_complex else 2 if dtype.is_floating_point else 1


def check_column(name: str, stored: Spec, given: torch.Tensor) -> None:
    """Refuse ``given: (N, ...)`` for a column stored as ``stored``: another per-step shape
    (ValueError) or a dtype whose values would not survive the cast (TypeError)."""
    shape, dtype = stored
    here = f"column {name!r}: the buffer stores {dtype} {list(shape)} per step"
    if tuple(given.shape[1:]) != shape:
        raise ValueError(f"{here}, this Traj has {given.dtype} {list(given.shape[1:])}")
    if _kind(given.dtype) > _kind(dtype):
        raise TypeError(f"{here}; this Traj's {given.dtype} values would lose information stored as {dtype}")


class ReplayBuffer:
    """A ring of the last ``capacity`` steps, uniform sampling.

    Args:
        capacity: maximum number of steps kept; when full, each new step overwrites the
            oldest one.
        device: where the columns live (and batches come from).
        keys: step columns to store (default: every step column of the first Traj
            added, plus ``next_obs`` and ``terminals``). Later Trajs must have them all.
        ob_space, ac_space: when given, the per-step shape and dtype of the observation
            columns and of ``acs`` (the policy's actions: ``[-1, 1]`` floats for Box
            spaces, indices for Discrete ones), checked from the first add on.
    """

    def __init__(
        self,
        capacity: int,
        device: torch.device | str = "cpu",
        keys: Sequence[str] | None = None,
        *,
        ob_space: gym.Space | None = None,
        ac_space: gym.Space | None = None,
    ) -> None:
        self.capacity = check_int("capacity", capacity, min_value=1)
        self.device = torch.device(device)
        self._keys = None if keys is None else list(dict.fromkeys([*keys, "next_obs", "terminals"]))
        self._space_specs: dict[str, Spec] = {}
        if ob_space is not None:
            self._space_specs.update(dict.fromkeys(OBS_COLUMNS, space_spec(ob_space)))
        if ac_space is not None:
            self._space_specs["acs"] = space_spec(ac_space)
        self._cols: dict[str, torch.Tensor] = {}
        self._pos = 0  # next slot to write
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def num_step(self) -> int:
        """Number of steps currently stored."""
        return self._size

    def keys(self) -> list[str]:
        return list(self._cols) if self._cols else list(self._keys or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self._size}, capacity={self.capacity}, keys={self.keys()})"

    def add(self, traj: Traj) -> torch.Tensor:
        """Store the steps of ``traj`` (oldest steps are overwritten when full).

        Applies :func:`trajkit.ef.add_next_obs` if ``traj`` lacks ``next_obs``. Returns
        the ``(N',)`` int64 slots written (``N' = min(N, capacity)``: of a Traj longer
        than the buffer only its last ``capacity`` steps are kept).
        """
        if "next_obs" not in traj or "terminals" not in traj:
            traj = ef.add_next_obs(traj)
        if not self._cols:
            self._allocate(traj)
        cols = {}
        for k, col in self._cols.items():
            if k not in traj:
                raise MissingColumnError(k, traj.keys())
            cols[k] = traj[k]
            check_column(k, (tuple(col.shape[1:]), col.dtype), cols[k])
        n = traj.num_step
        start = max(0, n - self.capacity)
        m = n - start
        slots = (self._pos + torch.arange(m)) % self.capacity
        dev_slots = slots.to(self.device)
        for k, v in cols.items():
            self._cols[k][dev_slots] = v[start:].to(self.device, self._cols[k].dtype)
        self._pos = (self._pos + m) % self.capacity
        self._size = min(self._size + m, self.capacity)
        return slots

    def _allocate(self, traj: Traj) -> None:
        keys = self._keys if self._keys is not None else traj.keys()
        for k in keys:
            if k not in traj:
                raise MissingColumnError(k, traj.keys())
            shape, dtype = self._spec(k, traj[k])
            self._cols[k] = torch.zeros((self.capacity, *shape), dtype=dtype, device=self.device)

    def _spec(self, name: str, first: torch.Tensor) -> Spec:
        """How column ``name`` is stored: from the spaces if given, else from its first values."""
        if name in self._space_specs:
            return self._space_specs[name]
        return tuple(first.shape[1:]), stored_dtype(name, first.dtype)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue exactly (CPU tensors).

        ``cols`` holds each column's first ``size`` rows (the filled slots: the ring fills
        slots ``0 .. capacity - 1`` in order before it wraps), so a checkpoint grows with
        the data, not with the capacity.
        """
        return {
            "kind": type(self).__name__,
            "capacity": self.capacity,
            "size": self._size,
            "pos": self._pos,
            "keys": None if self._keys is None else list(self._keys),
            "cols": {k: v[: self._size].detach().cpu().clone() for k, v in self._cols.items()},
        }

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` if ``state`` cannot be loaded into this buffer (loads nothing)."""
        kind = state.get("kind")
        if kind != type(self).__name__:
            raise ValueError(f"state is from a {kind}, this is a {type(self).__name__}")
        if state["capacity"] != self.capacity:
            raise ValueError(f"state is from a buffer of capacity {state['capacity']}, this one has {self.capacity}")
        size, pos = int(state["size"]), int(state["pos"])
        if not (0 <= size <= self.capacity and 0 <= pos < self.capacity and (size == self.capacity or pos == size)):
            raise ValueError(f"inconsistent ring position {pos} and size {size} for capacity {self.capacity}")
        if self._keys is not None and state["keys"] is not None and list(state["keys"]) != self._keys:
            raise ValueError(f"state stores columns {state['keys']}, this buffer was built for {self._keys}")
        cols: Mapping[str, torch.Tensor] = state["cols"]
        if self._cols and set(cols) != set(self._cols):
            raise ValueError(f"state has columns {sorted(cols)}, this buffer has {sorted(self._cols)}")
        for k, v in cols.items():
            if not isinstance(v, torch.Tensor) or v.shape[0] != size:
                raise ValueError(f"column {k!r} does not hold {size} rows")
            mine = self._cols.get(k)
            spec = (tuple(mine.shape[1:]), mine.dtype) if mine is not None else self._space_specs.get(k)
            if spec is not None and spec != (tuple(v.shape[1:]), v.dtype):
                raise ValueError(
                    f"column {k!r} is {v.dtype} {list(v.shape[1:])} per step in the state, "
                    f"{spec[1]} {list(spec[0])} here"
                )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (validated first; ``ValueError`` if it does not fit)."""
        self.check_state_dict(state)
        self._cols = {}
        for k, v in state["cols"].items():
            col = torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype, device=self.device)
            col[: v.shape[0]] = v.to(self.device)
            self._cols[k] = col
        if state["keys"] is not None:
            self._keys = list(state["keys"])
        self._size, self._pos = int(state["size"]), int(state["pos"])

    def get(self, idx: torch.Tensor) -> Batch:
        """The stored steps at slots ``idx: (B,)``, as a batch of ``(B, ...)`` tensors."""
        idx = idx.to(self.device)
        return {k: v[idx] for k, v in self._cols.items()}

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch:
        """``batch_size`` stored steps drawn uniformly with replacement: ``(B, ...)`` tensors."""
        check_int("batch_size", batch_size, min_value=1)
        if self._size == 0:
            raise ValueError("the buffer is empty; add a Traj first")
        idx = torch.randint(self._size, (batch_size,), generator=_as_generator(generator))
        return self.get(idx)


class SumTree:
    """A binary sum-tree over ``capacity`` non-negative leaves (numpy float64).

    ``update`` sets many leaves at once and recomputes their ancestors level by level
    (``O(k log C)`` work in ``log C`` vectorized steps); ``find`` maps many prefix sums to
    leaves in ``log C`` vectorized steps. Parents are always recomputed from their
    children, so no rounding error accumulates.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._base = 1 << max(0, (self.capacity - 1).bit_length())  # leaves start here
        self.tree = np.zeros(2 * self._base, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def leaves(self) -> np.ndarray:
        """``(capacity,)`` the leaf values."""
        return self.tree[self._base : self._base + self.capacity]

    def update(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx: (k,)`` to ``values: (k,)`` (later duplicates win)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if idx.size == 0:
            return
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError(f"leaf index out of range [0, {self.capacity})")
        nodes = idx + self._base
        self.tree[nodes] = values
        nodes = np.unique(nodes >> 1)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes >> 1)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf index for each prefix sum in ``prefix: (B,)`` (values in ``[0, total)``)."""
        v = np.asarray(prefix, dtype=np.float64).copy()
        node = np.ones(len(v), dtype=np.int64)
        while node[0] < self._base:
            left = 2 * node
            lv = self.tree[left]
            right = (v >= lv) & (self.tree[left + 1] > 0)
            v = np.where(right, v - lv, v)
            node = left + right
        return np.minimum(node - self._base, self.capacity - 1)

    def draw(
        self, batch_size: int, size: int, per_beta: float, generator: torch.Generator | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``batch_size`` leaves among the first ``size`` by priority, and their importance weights.

        Draws are stratified: one uniform draw in each of ``B`` equal slices of the total.
        Returns ``idx: (B,)`` and ``weights: (B,)`` = ``(size * P(i))**-per_beta`` divided by
        the batch's largest, so they are at most 1.
        """
        total = self.total
        u = torch.rand(batch_size, generator=_as_generator(generator), dtype=torch.float64).numpy()
        prefix = np.minimum((np.arange(batch_size) + u) * (total / batch_size), np.nextafter(total, 0))
        idx = np.minimum(self.find(prefix), size - 1)
        w = (size * (self.leaves()[idx] / total)) ** (-per_beta)
        return idx, w / w.max()


class PrioritizedReplayBuffer(ReplayBuffer):
    """A :class:`ReplayBuffer` ring with proportional prioritized sampling.

    Args:
        capacity, device, keys, ob_space, ac_space: as :class:`ReplayBuffer`.
        per_alpha: how much prioritization is used (0: uniform).
        eps: added to every priority so none is zero.

    New steps get priority ``traj["pris"]`` when the Traj has that column (from
    :func:`trajkit.ef.compute_pris`), otherwise the largest priority seen so far. An
    overwritten slot's leaf is simply replaced, so the tree stays consistent.
    """

    def __init__(
        self,
        capacity: int,
        per_alpha: float = 0.6,
        device: torch.device | str = "cpu",
        keys: Sequence[str] | None = None,
        eps: float = 1e-6,
        *,
        ob_space: gym.Space | None = None,
        ac_space: gym.Space | None = None,
    ) -> None:
        super().__init__(capacity, device, keys, ob_space=ob_space, ac_space=ac_space)
        self.per_alpha = check_float("per_alpha", per_alpha, min_value=0.0)
        self.eps = check_float("eps", eps, min_value=0.0)
        self.tree = SumTree(capacity)
        self.max_pri = 1.0

    def add(self, traj: Traj) -> torch.Tensor:
        slots = super().add(traj)
        if "pris" in traj:
            pris = traj["pris"][traj.num_step - len(slots) :].detach().cpu().double().numpy()
            self.max_pri = max(self.max_pri, float(pris.max()))
        else:
            pris = np.full(len(slots), self.max_pri)
        self.tree.update(slots.numpy(), (pris + self.eps) ** self.per_alpha)
        return slots

    def state_dict(self) -> dict[str, Any]:
        """The ring's state plus the filled slots' tree leaves (``p**per_alpha``), ``max_pri``, ``per_alpha``, ``eps``.

        (``load_state_dict`` also reads the key ``alpha`` of states saved before the rename.)
        """
        leaves = torch.from_numpy(self.tree.leaves()[: self._size].copy())
        return {
            **super().state_dict(),
            "leaves": leaves,
            "max_pri": self.max_pri,
            "per_alpha": self.per_alpha,
            "eps": self.eps,
        }

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        super().check_state_dict(state)
        per_alpha = state.get("per_alpha", state.get("alpha"))  # "alpha": checkpoints before the rename
        if (per_alpha, state["eps"]) != (self.per_alpha, self.eps):
            raise ValueError(
                f"state has per_alpha={per_alpha}, eps={state['eps']}; "
                f"this buffer per_alpha={self.per_alpha}, eps={self.eps}"
            )
        leaves = state["leaves"]
        if not isinstance(leaves, torch.Tensor) or leaves.shape != (int(state["size"]),):
            raise ValueError(f"priorities do not match the {state['size']} stored steps")

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; the sum-tree is rebuilt from the leaves (exactly)."""
        super().load_state_dict(state)  # validates with this class's check_state_dict first
        self.tree = SumTree(self.capacity)
        self.tree.update(np.arange(self._size), state["leaves"].numpy())
        self.max_pri = float(state["max_pri"])

    def update_pris(self, idx: torch.Tensor | np.ndarray, pris: torch.Tensor | np.ndarray) -> None:
        """Set the priorities of the slots ``idx: (B,)`` to ``pris: (B,)`` (e.g. ``|TD error|``)."""
        idx = idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        pris = pris.detach().cpu().double().numpy() if isinstance(pris, torch.Tensor) else np.asarray(pris, np.float64)
        if idx.size == 0:
            return
        if np.any(idx >= self._size):
            raise IndexError("update_pris got a slot that holds no step")
        self.max_pri = max(self.max_pri, float(pris.max()))
        self.tree.update(idx, (np.abs(pris) + self.eps) ** self.per_alpha)

    def sample(self, batch_size: int, per_beta: float, generator: torch.Generator | int | None = None) -> Batch:
        """A prioritized batch: ``(B, ...)`` columns plus ``idx: (B,)`` and ``weights: (B,)``.

        Draws are stratified: one uniform draw in each of ``B`` equal slices of the total
        priority. ``weights = (size * P(i))**-per_beta``, divided by the batch's largest
        weight so they are at most 1.
        """
        check_int("batch_size", batch_size, min_value=1)
        check_unit("per_beta", per_beta)
        if self._size == 0:
            raise ValueError("the buffer is empty; add a Traj first")
        idx, w = self.tree.draw(batch_size, self._size, per_beta, generator)
        idx_t = torch.from_numpy(idx)
        batch = self.get(idx_t)
        batch["idx"] = idx_t.to(self.device)
        batch["weights"] = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        return batch

    def random_batch(self, batch_size: int, generator: torch.Generator | int | None = None) -> Batch:
        """A prioritized batch with ``per_beta=1`` (full importance correction); see :meth:`sample`."""
        return self.sample(batch_size, 1.0, generator)
