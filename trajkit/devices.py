"""Where a module lives: the one device lookup every part of trajkit uses."""

from __future__ import annotations

import torch


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (else first buffer; CPU for a stateless module)."""
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")
