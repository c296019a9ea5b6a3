"""Sequence batches as rows: run a model over ``traj.iterate_rnn`` batches and keep the training steps.

Vocabulary: ``T`` time steps of a batch, ``B`` sequences, ``M`` training steps (the
batch's ``mask`` 1.0), ``S`` hidden-state size.

Losses are written for rows of steps ``(M, ...)``. :func:`forward_rows` turns a sequence
batch into such rows: an MLP model runs on the training steps; a recurrent model runs
over each sequence from its stored start state (:func:`start_hs`), first through the
sequence's burn-in steps without gradients (they only warm the state), then through
its training steps, and its outputs at the training steps are the rows. Rows come in
the order ``batch[k][batch["mask"].bool()]`` gives, so every column lines up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

Batch = dict[str, torch.Tensor]

__all__ = ["forward_rows", "is_seq_batch", "start_hs"]


def is_seq_batch(batch: Batch) -> bool:
    """Whether ``batch`` is a sequence batch of ``traj.iterate_rnn`` (a ``(T, B)`` ``mask``)."""
    return "mask" in batch and batch["mask"].dim() == 2


def start_hs(model: Any, batch: Batch) -> torch.Tensor:
    """A recurrent model's state ``(B, S)`` at the first step of each sequence of ``batch``.

    The batch's ``model.hs_key`` column at time 0 (``hs``, stored by the sampler for a
    policy; ``vf_hs`` from ``ef.compute_hs(traj, vf, key="vf_hs")`` for a value
    function), else ``model.init_hs(B)`` when every sequence starts an episode
    (``h_masks`` 1 at time 0). Otherwise the state is unknown: a ValueError says what to run.
    """
    key = model.hs_key
    if key in batch:
        return batch[key][0]
    b = batch["mask"].shape[1]
    if "h_masks" in batch and bool((batch["h_masks"][0] == 1).all()):
        return model.init_hs(b).to(batch["mask"].device)
    raise ValueError(
        f"{type(model).__name__} is recurrent and its state at the sequences' first steps is unknown: the batch has "
        f"no {key!r} column, and h_masks do not show every sequence starting an episode; run "
        f"ef.compute_hs(traj, model, key={key!r}) (or ef.compute_h_masks(traj) for whole episodes) before train()"
    )


def _warm(model: Any, batch: Batch, inputs: Sequence[str], hs: torch.Tensor, train_from: torch.Tensor) -> torch.Tensor:
    """The states ``(B, S)`` at each sequence's first training step: ``hs`` run through its
    ``train_from[j]`` burn-in steps, one step at a time, without gradients."""
    h_masks = batch.get("h_masks")
    with torch.no_grad():
        for t in range(int(train_from.max())):
            step_in = [batch[k][t] for k in inputs]
            _, new = model(batch["obs"][t], *step_in, hs=hs, h_masks=None if h_masks is None else h_masks[t])
            hs = torch.where((t < train_from).unsqueeze(-1), new, hs)
    return hs


def _shifted(x: torch.Tensor, train_from: torch.Tensor, length: int) -> torch.Tensor:
    """``x: (T, B, ...)`` with column ``j`` moved up by ``train_from[j]`` steps: ``(length, B, ...)`` (zero-padded)."""
    t = torch.arange(length, device=x.device).unsqueeze(1) + train_from.unsqueeze(0)  # (length, B)
    inside = t < x.shape[0]
    cols = torch.arange(x.shape[1], device=x.device).expand_as(t)
    out = x[t.clamp(max=x.shape[0] - 1), cols]
    return out * inside.reshape(*inside.shape, *[1] * (x.dim() - 2)).to(out.dtype)


def _recurrent_out(model: Any, batch: Batch, inputs: Sequence[str]) -> Any:
    """A recurrent model's outputs at the training steps of a sequence batch, as rows ``(M, ...)``."""
    valid = batch["mask"].bool()
    hs = start_hs(model, batch)
    h_masks = batch.get("h_masks")
    train_from = valid.float().argmax(0)  # (B,): burn-in steps before each sequence's training steps
    if not bool(train_from.any()):
        out, _ = model(batch["obs"], *(batch[k] for k in inputs), hs=hs, h_masks=h_masks)
        return {k: v[valid] for k, v in out.items()} if isinstance(out, dict) else out[valid]
    hs = _warm(model, batch, inputs, hs, train_from)
    length = int(valid.sum(0).max())
    moved = [_shifted(batch[k], train_from, length) for k in ("obs", *inputs)]
    masks = None if h_masks is None else _shifted(h_masks, train_from, length)
    out, _ = model(*moved, hs=hs, h_masks=masks)
    # back to the batch's layout, so rows line up with batch[k][valid]
    t = torch.nonzero(valid)  # (M, 2) of (time, column), time-major as batch[k][valid]
    src_t = t[:, 0] - train_from[t[:, 1]]
    if isinstance(out, dict):
        return {k: v[src_t, t[:, 1]] for k, v in out.items()}
    return out[src_t, t[:, 1]]


def forward_rows(model: Any, batch: Batch, names: Sequence[str], *inputs: str) -> tuple[Any, Batch]:
    """``model``'s output on the batch and the columns ``names``, both as flat rows ``(M, ...)``.

    ``model`` is called on ``batch["obs"]`` (and the columns ``inputs``, e.g. ``"acs"``).
    A batch of steps is used as it is. For a sequence batch (:func:`is_seq_batch`) the
    ``M`` rows are its training steps (``mask`` 1.0): an MLP model runs on those steps;
    a recurrent model runs over the sequences from :func:`start_hs` (``h_masks`` reset
    it where present), through burn-in steps (``mask`` 0.0 before the first training
    step) without gradients, and its outputs at the training steps are kept.
    """
    if not is_seq_batch(batch):
        return model(batch["obs"], *(batch[k] for k in inputs)), batch
    valid = batch["mask"].bool()
    rows = {k: batch[k][valid] for k in {"obs", *names, *inputs} if k in batch}
    if not getattr(model, "recurrent", False):
        return model(rows["obs"], *(rows[k] for k in inputs)), rows
    return _recurrent_out(model, batch, inputs), rows
