"""Sequence batches for recurrent models: windows over episodes, gathered and padded one batch at a time.

Vocabulary: ``N`` steps, ``E`` episodes, ``W`` windows (sequences), ``T`` time steps of a
batch, ``B`` sequences in a batch.

A **window** is a run of consecutive steps of one episode: the whole episode, or a
chunk of ``seq_len`` training steps preceded by up to ``burn_in`` steps of the same
episode (fewer at the episode's start, where there are none before). Only the steps
of one batch are gathered, so memory is bounded by the batch, never by the Traj.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

from trajkit.checks import check_int


class Windows(NamedTuple):
    """``W`` windows: ``starts (W,)`` step index of the first step, ``lens (W,)`` steps,
    ``train_from (W,)`` burn-in steps before the first training step, ``epi (W,)`` episode index."""

    starts: torch.Tensor
    lens: torch.Tensor
    train_from: torch.Tensor
    epi: torch.Tensor


def check_seq_args(seq_len: int | None, burn_in: int) -> tuple[int | None, int]:
    """``seq_len`` an integer ``>= 1`` or None, ``burn_in`` an integer ``>= 0`` below ``seq_len`` (0 without one)."""
    burn_in = check_int("burn_in", burn_in, min_value=0)
    if seq_len is None:
        if burn_in:
            raise ValueError(f"burn_in={burn_in} needs seq_len: burn-in steps precede fixed-length chunks")
        return None, 0
    seq_len = check_int("seq_len", seq_len, min_value=1)
    if burn_in >= seq_len:
        raise ValueError(f"burn_in ({burn_in}) must be < seq_len ({seq_len}): burn-in only warms the state")
    return seq_len, burn_in


def windows(bounds: torch.Tensor, seq_len: int | None, burn_in: int) -> Windows:
    """The windows over the episodes of ``bounds: (E + 1,)``: whole episodes (``seq_len`` None) or chunks.

    Chunk ``k`` of an episode of ``L`` steps trains on its steps ``[k seq_len, min(L, (k + 1) seq_len))``
    and starts ``min(burn_in, k seq_len)`` steps earlier; the last chunk may be shorter.
    """
    first, lens = bounds[:-1], bounds[1:] - bounds[:-1]
    e = len(lens)
    if seq_len is None:
        return Windows(first, lens, torch.zeros(e, dtype=torch.int64), torch.arange(e))
    counts = (lens + seq_len - 1) // seq_len
    epi = torch.repeat_interleave(torch.arange(e), counts)
    k = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    train_start = k * seq_len
    start = (train_start - burn_in).clamp(min=0)
    end = torch.minimum(train_start + seq_len, lens[epi])
    return Windows(first[epi] + start, end - start, train_start - start, epi)


def gather_index(w: Windows, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where the steps of windows ``idx`` go in a time-first batch: ``(time, col, steps)``, each ``(M,)``.

    Step ``steps[m]`` of the Traj is at ``[time[m], col[m]]`` of the ``(T, B, ...)`` batch.
    """
    lens = w.lens[idx]
    col = torch.repeat_interleave(torch.arange(len(idx)), lens)
    time = torch.arange(int(lens.sum())) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
    return time, col, w.starts[idx][col] + time


def padded_batch(
    data: Mapping[str, torch.Tensor], epi_cols: Mapping[str, torch.Tensor], w: Windows, idx: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The windows ``idx`` as one batch: step columns ``(T, B, ...)`` zero-padded after each window's end,
    ``mask: (T, B)`` 1.0 on the training steps (not on burn-in or padding) and the episode columns ``(B, ...)``.
    """
    lens, train_from = w.lens[idx], w.train_from[idx]
    t_max, b = int(lens.max()), len(idx)
    time, col, steps = gather_index(w, idx)
    device = next(iter(data.values())).device
    time_d, col_d, steps_d = time.to(device), col.to(device), steps.to(device)
    out: dict[str, torch.Tensor] = {}
    for k, v in data.items():
        padded = v.new_zeros((t_max, b, *v.shape[1:]))
        padded[time_d, col_d] = v[steps_d]
        out[k] = padded
    mask = torch.zeros(t_max, b, device=device)
    mask[time_d, col_d] = (time >= train_from[col]).to(device, torch.float32)
    out["mask"] = mask
    epi_idx = w.epi[idx]
    out.update({k: v[epi_idx.to(v.device)] for k, v in epi_cols.items()})
    return out
