"""Sequence replay for recurrent off-policy learning (R2D2: Kapturowski et al., 2019).

Vocabulary: ``N`` steps, ``E`` episodes (pieces), ``W`` windows, ``C`` stored sequences,
``B`` sequences in a batch, ``K`` burn-in steps, ``L`` training steps of a sequence,
``S`` hidden-state size.

A **sequence** is a fixed-length window of one episode piece: ``K`` burn-in slots, then
``L`` training slots, then one more observation slot, the next observation of the last
training slot. Windows of an episode start training at steps ``0, stride, 2 stride, ...``
(overlapping when ``stride < L``) until one reaches the episode's end; the last may be
shorter (its slots after the end are padding). The burn-in slots hold the ``K`` steps
before the first training step, fewer at an episode's start (the slots before it are
padding, ``burn_mask`` 0). Each sequence keeps the policy's stored hidden state
(``traj["hs"]``, which the sampler records per step) at its first real step, so a
recurrent policy starts from the state it acted with, and burn-in warms it from there
(R2D2's "stored state" strategy). Because the next observation of step ``t`` is the
observation of slot ``t + 1``, a recurrent model run once over the observation slots
gives its output at both; at an episode's last step that slot holds the real final
observation (``final_obs``), never the next episode's.

Sequences live in a ring of ``capacity`` sequences with proportional priorities over a
:class:`~trajkit.buffers.SumTree` (``per_alpha`` 0: uniform). New sequences get the
largest priority seen so far; :meth:`SeqReplayBuffer.update_pris` sets the drawn ones'
(``ef.compute_seq_pris``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from trajkit import ef
from trajkit.buffers import SumTree, stored_dtype
from trajkit.checks import check_float, check_int, check_unit
from trajkit.traj import Batch, MissingColumnError, Traj

__all__ = ["SeqReplayBuffer"]

class SeqReplayBuffer:
    """A ring of ``capacity`` fixed-length sequences with stored start states and priorities.

    Args:
        capacity: sequences kept (the oldest are overwritten); about ``capacity * stride``
            env steps.
        seq_len: ``L``, training steps per sequence.
        burn_in: ``K``, steps before the training steps that only warm a recurrent state.
        stride: steps between the training starts of consecutive windows of an episode
            (default ``max(1, seq_len // 2)``: windows overlap by half, as in R2D2).
        per_alpha: how much prioritization is used (0: uniform); ``eps`` keeps every
            priority above zero.
        hs_dim: ``S``, the size of the recurrent policy's state ``traj["hs"]`` to keep per
            sequence (0: none, an MLP policy). A Traj without ``hs`` (sampled by a
            non-recurrent behaviour policy, e.g. uniform warm-up actions) is stored with
            zero start states.
        device: where the sequences and the sampled batches live.
    """

    def __init__(
        self,
        capacity: int,
        seq_len: int,
        burn_in: int = 0,
        stride: int | None = None,
        per_alpha: float = 0.6,
        eps: float = 1e-6,
        hs_dim: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.capacity = check_int("capacity", capacity, min_value=1)
        self.seq_len = check_int("seq_len", seq_len, min_value=1)
        self.burn_in = check_int("burn_in", burn_in, min_value=0)
        self.stride = max(1, seq_len // 2) if stride is None else check_int("stride", stride, min_value=1)
        if self.stride > self.seq_len:
            raise ValueError(f"stride ({self.stride}) must be <= seq_len ({self.seq_len}): steps would be skipped")
        self.per_alpha = check_float("per_alpha", per_alpha, min_value=0.0)
        self.eps = check_float("eps", eps, min_value=0.0)
        self.hs_dim = check_int("hs_dim", hs_dim, min_value=0)
        self.device = torch.device(device)
        self._cols: dict[str, torch.Tensor] = {}
        self._pos = 0
        self._size = 0
        self.tree = SumTree(self.capacity)
        self.max_pri = 1.0

    def __len__(self) -> int:
        return self._size

    @property
    def num_seq(self) -> int:
        """Number of sequences currently stored."""
        return self._size

    def keys(self) -> list[str]:
        return list(self._cols)

    def __repr__(self) -> str:
        return (
            f"SeqReplayBuffer(size={self._size}, capacity={self.capacity}, seq_len={self.seq_len}, "
            f"burn_in={self.burn_in}, stride={self.stride})"
        )

    # ------------------------------------------------------------------ adding
    def _window_steps(self, traj: Traj) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each window: the step index of every slot ``(W, K + L + 1)`` (clamped), which
        slots hold a real step ``(W, K + L + 1)``, the episode's first step ``(W,)`` and whether
        the piece continues an earlier one ``(W,)``."""
        k, big_l = self.burn_in, self.seq_len
        bounds = traj.bounds.cpu()
        first, lens = bounds[:-1], bounds[1:] - bounds[:-1]
        counts = 1 + (torch.clamp(lens - big_l, min=0) + self.stride - 1) // self.stride  # windows per piece
        epi = torch.repeat_interleave(torch.arange(len(lens)), counts)
        kth = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        offs = (kth * self.stride).unsqueeze(1) - k + torch.arange(k + big_l + 1).unsqueeze(0)  # (W, K+L+1)
        real = (offs >= 0) & (offs < lens[epi].unsqueeze(1))
        steps = (first[epi].unsqueeze(1) + offs).clamp(0, max(traj.num_step - 1, 0))
        cont = torch.zeros(len(lens), dtype=torch.bool)
        if "continued" in traj.epi:
            cont = traj.epi_col("continued").bool().cpu()
        return steps, real, first[epi], cont[epi]

    def _sequences(self, traj: Traj) -> dict[str, torch.Tensor]:
        """The windows of ``traj`` as stored columns ``(W, slots, ...)``."""
        k, big_l = self.burn_in, self.seq_len
        steps, real, first, cont = self._window_steps(traj)
        dev = traj.device
        s, r = steps.to(dev), real.to(dev)

        def pick(col: torch.Tensor, sl: slice) -> torch.Tensor:
            x = col[s[:, sl]]
            return x * r[:, sl].reshape(*r[:, sl].shape, *[1] * (x.dim() - 2)).to(x.dtype)

        obs = pick(traj["obs"], slice(0, k + big_l + 1))
        # the slot right after a piece's last step holds its real final observation
        last = r[:, :-1] & ~r[:, 1:]  # (W, K+L): slot t is the piece's last step
        if bool(last.any()):
            w_idx, t_idx = torch.nonzero(last, as_tuple=True)
            obs[w_idx, t_idx + 1] = traj["next_obs"][s[w_idx, t_idx]].to(obs.dtype)
        seqs = {
            "obs": obs,
            "acs": pick(traj["acs"], slice(0, k + big_l)),
            "rews": pick(traj["rews"], slice(k, k + big_l)),
            "terminals": pick(traj["terminals"], slice(k, k + big_l)),
            "mask": r[:, k : k + big_l].float(),
            "burn_mask": r[:, :k].float(),
        }
        # reset at the slot of an episode's first step (not at a continued piece's first step)
        h_masks = (s == first.to(dev).unsqueeze(1)) & r & ~cont.to(dev).unsqueeze(1)
        seqs["h_masks"] = h_masks.float()
        if self.hs_dim and "hs" in traj:  # the policy's state at each window's first real step
            if traj["hs"].shape[1:] != (self.hs_dim,):
                raise ValueError(f"traj['hs'] has states of shape {list(traj['hs'].shape[1:])}, "
                                 f"this buffer keeps hs_dim={self.hs_dim}")
            first_real = r.float().argmax(1)
            seqs["hs"] = traj["hs"][s[torch.arange(len(s), device=dev), first_real]]
        elif self.hs_dim:
            seqs["hs"] = torch.zeros(len(s), self.hs_dim, device=dev)
        return seqs

    def add(self, traj: Traj) -> torch.Tensor:
        """Cut ``traj``'s episodes (or pieces) into windows and store them; returns the ``(W',)`` slots written.

        Needs ``obs``, ``acs``, ``rews`` and the episode columns ``terminated`` and
        ``final_obs`` (``next_obs``/``terminals`` are added when missing), and ``hs`` of
        ``hs_dim`` when it has one. Of more windows than ``capacity`` only the last are kept.
        """
        if "next_obs" not in traj or "terminals" not in traj:
            traj = ef.add_next_obs(traj)
        for name in ("acs", "rews"):
            if name not in traj:
                raise MissingColumnError(name, traj.keys())
        if traj.num_step == 0:
            return torch.zeros(0, dtype=torch.int64)
        seqs = self._sequences(traj)
        if not self._cols:
            self._cols = {
                n: torch.zeros((self.capacity, *v.shape[1:]), dtype=stored_dtype(n, v.dtype), device=self.device)
                for n, v in seqs.items()
            }
        elif set(seqs) != set(self._cols):
            raise ValueError(f"this Traj gives columns {sorted(seqs)}, the buffer stores {sorted(self._cols)}")
        w = len(seqs["obs"])
        start = max(0, w - self.capacity)
        m = w - start
        slots = (self._pos + torch.arange(m)) % self.capacity
        for n, v in seqs.items():
            if tuple(v.shape[1:]) != tuple(self._cols[n].shape[1:]):
                raise ValueError(f"column {n!r}: per-sequence shape {list(v.shape[1:])}, "
                                 f"stored {list(self._cols[n].shape[1:])}")
            self._cols[n][slots.to(self.device)] = v[start:].to(self.device, self._cols[n].dtype)
        self._pos = (self._pos + m) % self.capacity
        self._size = min(self._size + m, self.capacity)
        self.tree.update(slots.numpy(), np.full(m, (self.max_pri + self.eps) ** self.per_alpha))
        return slots

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, per_beta: float, generator: torch.Generator | int | None = None) -> Batch:
        """``batch_size`` sequences drawn by priority, time first.

        Returns ``obs: (K + L + 1, B, ...)``, ``acs: (K + L, B, ...)``, ``rews``,
        ``terminals``, ``mask: (L, B)`` (1.0 on real training steps), ``burn_mask: (K, B)``,
        ``h_masks: (K + L + 1, B)``, ``hs: (B, S)`` (when stored), ``idx: (B,)`` and
        importance ``weights: (B,)`` = ``(size * P(i))**-per_beta`` over the batch's largest.
        Draws are stratified over ``B`` equal slices of the total priority.
        """
        check_int("batch_size", batch_size, min_value=1)
        check_unit("per_beta", per_beta)
        if self._size == 0:
            raise ValueError("the buffer is empty; add a Traj first")
        idx, w = self.tree.draw(batch_size, self._size, per_beta, generator)  # stratified, as PrioritizedReplayBuffer
        idx_t = torch.from_numpy(idx).to(self.device)
        batch = {n: (v[idx_t] if n == "hs" else v[idx_t].transpose(0, 1)) for n, v in self._cols.items()}
        batch["idx"] = idx_t
        batch["weights"] = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        return batch

    def update_pris(self, idx: torch.Tensor | np.ndarray, pris: torch.Tensor | np.ndarray) -> None:
        """Set the priorities of sequences ``idx: (B,)`` to ``pris: (B,)`` (``ef.compute_seq_pris``)."""
        idx = idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        pris = pris.detach().cpu().double().numpy() if isinstance(pris, torch.Tensor) else np.asarray(pris, np.float64)
        if idx.size == 0:
            return
        if np.any(idx >= self._size) or np.any(idx < 0):
            raise IndexError("update_pris got a slot that holds no sequence")
        if not np.all(np.isfinite(pris)):
            raise ValueError("update_pris got a non-finite priority")
        self.max_pri = max(self.max_pri, float(np.abs(pris).max()))
        self.tree.update(idx, (np.abs(pris) + self.eps) ** self.per_alpha)

    # ------------------------------------------------------------------ checkpointing
    def _settings(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "seq_len": self.seq_len, "burn_in": self.burn_in, "stride": self.stride,
                "per_alpha": self.per_alpha, "eps": self.eps, "hs_dim": self.hs_dim}

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue exactly (CPU tensors of the filled slots)."""
        return {
            "kind": "SeqReplayBuffer",
            **self._settings(),
            "size": self._size,
            "pos": self._pos,
            "max_pri": self.max_pri,
            "leaves": torch.from_numpy(self.tree.leaves()[: self._size].copy()),
            "cols": {n: v[: self._size].detach().cpu().clone() for n, v in self._cols.items()},
        }

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` if ``state`` cannot be loaded into this buffer (loads nothing)."""
        if state.get("kind") != "SeqReplayBuffer":
            raise ValueError(f"state is from a {state.get('kind')}, this is a SeqReplayBuffer")
        theirs = {k: state.get(k) for k in self._settings()}
        if theirs != self._settings():
            raise ValueError(f"state has settings {theirs}, this buffer {self._settings()}")
        size, pos = int(state["size"]), int(state["pos"])
        if not (0 <= size <= self.capacity and 0 <= pos < self.capacity and (size == self.capacity or pos == size)):
            raise ValueError(f"inconsistent ring position {pos} and size {size} for capacity {self.capacity}")
        leaves = state["leaves"]
        if not isinstance(leaves, torch.Tensor) or leaves.shape != (size,):
            raise ValueError(f"priorities do not match the {size} stored sequences")
        for n, v in state["cols"].items():
            if not isinstance(v, torch.Tensor) or v.shape[0] != size:
                raise ValueError(f"column {n!r} does not hold {size} sequences")

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (validated first)."""
        self.check_state_dict(state)
        self._cols = {}
        for n, v in state["cols"].items():
            col = torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype, device=self.device)
            col[: v.shape[0]] = v.to(self.device)
            self._cols[n] = col
        self._size, self._pos = int(state["size"]), int(state["pos"])
        self.tree = SumTree(self.capacity)
        self.tree.update(np.arange(self._size), state["leaves"].numpy())
        self.max_pri = float(state["max_pri"])
