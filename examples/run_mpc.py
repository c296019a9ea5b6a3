"""MPC with a learned dynamics model and random shooting: machina's recipe, with trajkit.

    python examples/run_mpc.py                           # Pendulum-v1, 10000 steps
    python examples/run_mpc.py --steps 2000 --seed 1

Settings come from ``trajkit/run/presets/mpc.yaml`` (``trajkit train mpc``): one
deterministic model refit after every 200-step episode, and at every step 1000 uniform
action sequences of 20 steps scored with the known Pendulum reward; the first action of
the best is taken. The loop is PETS's (``examples/run_pets.py``); only the preset differs.
"""

from __future__ import annotations

import argparse

from _common import parse_run_args
from run_pets import run

import trajkit as tk


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, tk.run.RunSettings]:
    return parse_run_args("mpc", __doc__, "Pendulum-v1", argv)


if __name__ == "__main__":
    run(*parse_args())  # type: ignore[arg-type]
