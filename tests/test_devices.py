"""One device lookup: ``trajkit.devices.module_device``; no module writes its own."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

import trajkit
from trajkit.devices import module_device

ROOT = Path(trajkit.__file__).parent


def _own_lookups(path: Path) -> list[str]:
    """Functions in ``path`` that loop over ``.parameters()`` or ``.buffers()`` and return a ``.device``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        calls = {c.func.attr for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
        returns_device = any(
            isinstance(r, ast.Return) and isinstance(r.value, ast.Attribute) and r.value.attr == "device"
            for r in ast.walk(node)
        )
        if returns_device and calls & {"parameters", "buffers"}:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_no_module_but_devices_looks_up_a_module_device_itself() -> None:
    found = [f for p in sorted(ROOT.rglob("*.py")) if p.name != "devices.py" for f in _own_lookups(p)]
    assert not found, found


def test_module_device_of_parameters_buffers_and_stateless_modules() -> None:
    assert module_device(torch.nn.Linear(2, 2).to("meta")) == torch.device("meta")
    m = torch.nn.Module()
    m.register_buffer("b", torch.zeros(1, device="meta"))
    assert module_device(m) == torch.device("meta")
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")
