"""Recurrent networks and the one recurrent forward every policy and value function shares.

Vocabulary: ``T`` time steps, ``B`` batch (envs, episodes or sequences), ``F`` input
features, ``S`` the size of a flat hidden state.

**Hidden states** (``hs``) are passed in and returned, never stored on a module. One
state is a flat tensor ``(B, S)``: a GRU's ``h`` of every layer (``S = L * H``), an
LSTM's ``h`` of every layer followed by its ``c`` (``S = 2 * L * H``). Flat states are
stored per step in a Traj like any other column (``traj["hs"]: (N, S)``) and batch like
one. The initial state (``init_hs(B)``) is zeros.

**Reset masks** (``h_masks``) are 1.0 at an episode's first step: there the state is set
to the initial state (zeros) before the step. A sequence forward over ``(T, B, F)``
with ``h_masks: (T, B)`` equals the step-by-step forward: the sequence is split at the
time steps where some row resets, and each piece runs through torch's ``nn.LSTM`` /
``nn.GRU`` from the (reset) state the previous piece ended in. On the CPU this is
bitwise equal to ``T`` forwards of one step for the same ``B`` (tests check it); one
row in a batch of ``B`` and the same row alone may differ in the last bits (matrix
products of different sizes).

:func:`model_forward` is the forward of every module built on a net (policies, value
and Q functions): for an MLP net it is ``net(x)``; for a :class:`RecurrentNet` it checks
``hs`` and ``h_masks`` and runs the step or the sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["RecurrentNet", "RecurrentModel", "is_recurrent", "model_forward", "check_hs", "lead_dims"]


class RecurrentNet(nn.Module):
    """An MLP torso, an ``nn.LSTM`` or ``nn.GRU`` core, an MLP head: ``(T, B, in_dim) -> (T, B, out_dim)``.

    Build one with :func:`trajkit.nets.lstm` or :func:`trajkit.nets.gru`.

    Args:
        torso: maps ``(..., in_dim)`` to ``(..., core.input_size)`` (``nn.Identity`` for none).
        core: a single-direction ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=False``.
        head: maps ``(..., core.hidden_size + late_dim)`` to ``(..., out_dim)``.
        in_dim, out_dim: the feature sizes in and out.
        late_dim: the last ``late_dim`` input features skip the torso and the core and
            join the core's output before the head (a critic's action: the state then
            summarizes the observations only, and any action can be scored from it).
    """

    def __init__(
        self, torso: nn.Module, core: nn.LSTM | nn.GRU, head: nn.Module, in_dim: int, out_dim: int, late_dim: int = 0
    ) -> None:
        super().__init__()
        if not isinstance(core, nn.LSTM | nn.GRU) or core.bidirectional or core.batch_first:
            raise TypeError(f"core must be a one-directional time-first nn.LSTM or nn.GRU, got {core}")
        if not 0 <= int(late_dim) < int(in_dim):
            raise ValueError(f"late_dim must be in [0, in_dim={in_dim}), got {late_dim}")
        self.torso, self.core, self.head = torso, core, head
        self.in_dim, self.out_dim, self.late_dim = int(in_dim), int(out_dim), int(late_dim)
        self._parts = 2 if isinstance(core, nn.LSTM) else 1
        self.hs_dim = self._parts * core.num_layers * core.hidden_size

    def init_hs(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The initial hidden state of ``batch_size`` rows: zeros ``(B, S)``."""
        if device is None:
            device = next(self.parameters()).device
        return torch.zeros(int(batch_size), self.hs_dim, device=device)

    def _unflat(self, hs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, S)`` as the core's state: ``(L, B, H)``, or the LSTM's ``(h, c)`` pair."""
        b, layers, h = hs.shape[0], self.core.num_layers, self.core.hidden_size
        parts = hs.reshape(b, self._parts, layers, h).permute(1, 2, 0, 3).contiguous()
        return (parts[0], parts[1]) if self._parts == 2 else parts[0]

    @staticmethod
    def _flat(state: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The core's state back as ``(B, S)``."""
        parts = torch.stack(state) if isinstance(state, tuple) else state.unsqueeze(0)
        return parts.permute(2, 0, 1, 3).reshape(parts.shape[2], -1)

    def forward(
        self, x: torch.Tensor, hs: torch.Tensor, h_masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: (T, B, in_dim)`` from state ``hs: (B, S)`` -> ``(out: (T, B, out_dim), hs: (B, S))``.

        ``h_masks: (T, B)`` (None: no reset) resets a row's state to zeros before the steps
        where it is 1. The sequence is run in pieces between the time steps where any row
        resets, so the result equals running the steps one by one.
        """
        late = x[..., x.shape[-1] - self.late_dim :] if self.late_dim else None
        feats = self.torso(x[..., : x.shape[-1] - self.late_dim] if self.late_dim else x)
        if h_masks is None:
            resets = [0]
        else:
            resets = [0, *[t for t in torch.nonzero(h_masks[1:].any(1)).reshape(-1).add(1).tolist()]]
        outs = []
        for a, b in zip(resets, [*resets[1:], x.shape[0]], strict=True):
            if h_masks is not None:
                hs = hs * (1.0 - h_masks[a].to(hs.dtype)).unsqueeze(-1)
            out, state = self.core(feats[a:b], self._unflat(hs))
            hs = self._flat(state)
            outs.append(out)
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return self.head(out if late is None else torch.cat([out, late], -1)), hs


def is_recurrent(module: object) -> bool:
    """Whether ``module`` is a :class:`RecurrentNet` or a model built on one (its ``net``)."""
    if isinstance(module, RecurrentNet):
        return True
    return isinstance(getattr(module, "net", None), RecurrentNet)


def lead_dims(x: torch.Tensor, item_ndim: int, owner: str, what: str = "observations") -> tuple[int, ...]:
    """The leading dims of ``x``: ``(B,)`` for a step, ``(T, B)`` for a sequence of items of ``item_ndim`` dims.

    Anything else is a ValueError naming ``owner`` and the shape.
    """
    lead = x.dim() - item_ndim
    if lead not in (1, 2):
        raise ValueError(
            f"{owner}: {what} of shape {tuple(x.shape)} are neither a step (B, ...) nor a sequence (T, B, ...) "
            f"of items with {item_ndim} dims"
        )
    return tuple(x.shape[:lead])


def check_hs(hs: torch.Tensor, batch: int, hs_dim: int, owner: str) -> None:
    """ValueError unless ``hs`` is a ``(batch, hs_dim)`` tensor (the message names ``owner`` and both shapes)."""
    if not isinstance(hs, torch.Tensor) or tuple(hs.shape) != (batch, hs_dim):
        got = tuple(hs.shape) if isinstance(hs, torch.Tensor) else type(hs).__name__
        raise ValueError(f"{owner}: hs must have shape (B, S) = ({batch}, {hs_dim}) for this batch, got {got}")


def model_forward(
    net: nn.Module,
    x: torch.Tensor,
    lead: tuple[int, ...],
    hs: torch.Tensor | None,
    h_masks: torch.Tensor | None,
    owner: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The forward of a model built on ``net``: features ``x: (prod(lead), F)`` -> ``(out: (*lead, O), hs)``.

    ``lead`` is ``(B,)`` (one step) or ``(T, B)`` (a sequence, time first). An MLP net
    takes no state: ``hs`` must be None and the returned state is None. A
    :class:`RecurrentNet` needs ``hs: (B, S)``; ``h_masks`` is ``(B,)`` for a step or
    ``(T, B)`` for a sequence (None: no reset). Errors name ``owner``.
    """
    if not isinstance(net, RecurrentNet):
        if hs is not None or h_masks is not None:
            raise TypeError(f"{owner}: its net is not recurrent, so it takes no hs or h_masks")
        out = net(x)
        return (out if len(lead) == 1 else out.reshape(*lead, -1)), None
    if hs is None:
        raise ValueError(f"{owner} is recurrent: pass its hidden state, hs=model.init_hs(batch_size) at the start")
    b = lead[-1]
    check_hs(hs, b, net.hs_dim, owner)
    seq = x.reshape(*lead, -1) if len(lead) == 2 else x.unsqueeze(0)
    if h_masks is not None:
        if tuple(h_masks.shape) != lead:
            raise ValueError(f"{owner}: h_masks must have shape {lead} (the leading dims), got {tuple(h_masks.shape)}")
        h_masks = h_masks if len(lead) == 2 else h_masks.unsqueeze(0)
    out, hs_out = net(seq, hs, h_masks)
    return (out if len(lead) == 2 else out[0]), hs_out


class RecurrentModel:
    """Mixin of the modules built on a ``net`` (policies, value and Q functions): the hidden-state API.

    ``recurrent`` says whether ``net`` is a :class:`RecurrentNet`; ``init_hs(B)`` gives
    its initial state ``(B, S)``; :meth:`_run_net` is the forward every such module
    runs, on one step ``(B, *obs_shape)`` or a sequence ``(T, B, *obs_shape)``.
    """

    net: nn.Module
    ob_space: Any
    #: the Traj column holding this kind of model's hidden states (policies: ``hs``, stored by the sampler)
    hs_key: str = "hs"

    @property
    def recurrent(self) -> bool:
        """Whether the net is recurrent (then the module takes and returns ``hs``)."""
        return isinstance(getattr(self, "net", None), RecurrentNet)

    def init_hs(self, batch_size: int) -> torch.Tensor:
        """The hidden state at an episode's start for ``batch_size`` rows: zeros ``(B, S)``."""
        net = getattr(self, "net", None)
        if not isinstance(net, RecurrentNet):
            raise TypeError(f"{type(self).__name__} is not recurrent (its net is no nets.lstm/gru): it has no hs")
        return net.init_hs(batch_size)

    @staticmethod
    def _with_hs(out: Any, hs: torch.Tensor | None) -> Any:
        """``out`` for an MLP model, ``(out, hs)`` for a recurrent one."""
        return out if hs is None else (out, hs)

    def _run_net(
        self,
        obs: torch.Tensor,
        features: Callable[[torch.Tensor], torch.Tensor],
        hs: torch.Tensor | None,
        h_masks: torch.Tensor | None,
        acs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The net's output ``(B, O)`` or ``(T, B, O)`` and its new state (None for an MLP net).

        ``features`` maps observations ``(M, *obs_shape)`` to ``(M, F)``; ``acs`` (Q
        functions) are flattened and appended to the features.
        """
        name = type(self).__name__
        if not self.recurrent:  # the MLP path: net(features), as before recurrent nets existed
            x = features(obs)
            if acs is not None:
                x = torch.cat([x, acs.float().reshape(acs.shape[0], -1)], -1)
            return model_forward(self.net, x, (obs.shape[0],), hs, h_masks, name)
        lead = lead_dims(obs, len(self.ob_space.shape or ()), name)
        x = features(obs.reshape(-1, *obs.shape[len(lead):]))
        if acs is not None:
            x = torch.cat([x, acs.float().reshape(x.shape[0], -1)], -1)
        return model_forward(self.net, x, lead, hs, h_masks, name)
