"""Does a checkpoint entry fit the object it is loaded into? Checks that change nothing.

:func:`check_entry` runs before :func:`trajkit.checkpoint.load_checkpoint` loads
anything: modules by keys, shapes and dtypes; optimizers by class, parameter groups and
state shapes; generators by state size; stateful objects by their own
``check_state_dict`` (:class:`CheckableState`) or, lacking one, by their keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch

from trajkit._safe_data import from_safe

#: optimizer state entries that have the shape of their parameter
_PARAM_SHAPED = (
    "exp_avg",
    "exp_avg_sq",
    "max_exp_avg_sq",
    "momentum_buffer",
    "square_avg",
    "acc_delta",
    "sum",
)


class CheckpointError(ValueError):
    """A checkpoint is unreadable, corrupted, of another format version, or does not fit the objects."""


@runtime_checkable
class Stateful(Protocol):
    """An object a checkpoint stores by its ``state_dict()`` and restores by ``load_state_dict``."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


@runtime_checkable
class CheckableState(Protocol):
    """A stateful object that can tell, without changing anything, whether a state fits it.

    ``check_state_dict(state)`` raises ValueError (or KeyError/TypeError) naming the
    mismatch; ``load_checkpoint`` calls it on every such target before it loads any.
    Replay buffers and :class:`~trajkit.EpiSampler` have one.
    """

    def check_state_dict(self, state: Any) -> None: ...


def kind_of(x: Any) -> str:
    """``module``, ``optimizer``, ``generator``, ``stateful`` (:class:`Stateful`) or ``data``."""
    if isinstance(x, torch.nn.Module):
        return "module"
    if isinstance(x, torch.optim.Optimizer):
        return "optimizer"
    if isinstance(x, torch.Generator):
        return "generator"
    if isinstance(x, Stateful):
        return "stateful"
    return "data"


def check_entry(name: str, entry: Any, obj: Any) -> Any:
    """Raise :class:`CheckpointError` unless ``entry`` (a saved entry) fits ``obj``; return the state to load."""
    if not isinstance(entry, Mapping) or "kind" not in entry or "state" not in entry:
        raise CheckpointError(f"entry {name!r} is malformed in the checkpoint")
    kind, saved, want = entry["kind"], entry["state"], kind_of(obj)
    if kind != want:
        raise CheckpointError(f"entry {name!r} is a {kind} in the checkpoint, a {want} was given")
    if kind == "module":
        _check_module(name, saved, obj)
    elif kind == "optimizer":
        _check_optimizer(name, entry, obj)
    elif kind == "generator":
        if not isinstance(saved, torch.Tensor) or saved.shape != obj.get_state().shape:
            raise CheckpointError(f"generator state {name!r} does not fit a {obj.device} generator")
    elif kind == "stateful":
        saved = from_safe(saved)
        _check_stateful(name, saved, obj)
    return saved


def _check_module(name: str, saved: Any, module: torch.nn.Module) -> None:
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"{name!r}: module state is a {type(saved).__name__} in the checkpoint, not a dict")
    current = module.state_dict()
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        raise CheckpointError(f"{name!r}: state_dict keys differ; missing {missing}, unexpected {unexpected}")
    for k, v in current.items():
        s = saved[k]
        if not isinstance(s, torch.Tensor) or s.shape != v.shape or s.dtype != v.dtype:
            got = f"{s.dtype}{list(s.shape)}" if isinstance(s, torch.Tensor) else type(s).__name__
            raise CheckpointError(
                f"{name!r}: {k} is {got} in the checkpoint, {v.dtype}{list(v.shape)} in the model"
            )


def _check_optimizer(name: str, entry: Mapping[str, Any], optim: torch.optim.Optimizer) -> None:
    saved_type, target_type = entry.get("type"), type(optim).__name__
    if saved_type is not None and saved_type != target_type:
        raise CheckpointError(
            f"{name!r}: the checkpoint holds the state of a {saved_type} optimizer, "
            f"the target is a {target_type}; build the same optimizer class to load it"
        )
    saved = entry["state"]
    groups = saved.get("param_groups") if isinstance(saved, Mapping) else None
    if not isinstance(groups, list) or len(groups) != len(optim.param_groups):
        n = len(groups) if isinstance(groups, list) else None
        raise CheckpointError(
            f"{name!r}: {n} parameter groups in the checkpoint, {len(optim.param_groups)} here"
        )
    params: dict[Any, torch.Tensor] = {}
    for i, (sg, g) in enumerate(zip(groups, optim.param_groups, strict=True)):
        ids = sg.get("params") if isinstance(sg, Mapping) else None
        if not isinstance(ids, list) or len(ids) != len(g["params"]):
            n = len(ids) if isinstance(ids, list) else None
            raise CheckpointError(
                f"{name!r}: group {i} has {n} parameters in the checkpoint, {len(g['params'])} here"
            )
        params.update(zip(ids, g["params"], strict=True))
    state = saved.get("state", {})
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{name!r}: optimizer state is a {type(state).__name__}, not a dict")
    for pid, st in state.items():
        if pid not in params:
            raise CheckpointError(f"{name!r}: state for unknown parameter id {pid}")
        for k in _PARAM_SHAPED:
            if k in st and isinstance(st[k], torch.Tensor) and st[k].shape != params[pid].shape:
                raise CheckpointError(
                    f"{name!r}: {k} of parameter {pid} has shape {list(st[k].shape)}, "
                    f"the parameter has {list(params[pid].shape)}"
                )


def _check_stateful(name: str, saved: Any, obj: Stateful) -> None:
    if isinstance(obj, CheckableState):
        try:
            obj.check_state_dict(saved)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{name!r}: {e}") from e
        return
    current = obj.state_dict()
    if isinstance(current, Mapping) and isinstance(saved, Mapping) and set(current) != set(saved):
        raise CheckpointError(f"{name!r}: state keys {sorted(saved)} in the checkpoint, {sorted(current)} here")
