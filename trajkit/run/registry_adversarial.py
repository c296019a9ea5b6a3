"""The model factory the registry lines of GAIL, AIRL and DIAYN share.

:mod:`trajkit.run.adversarial` (the loops) imports the off-policy loop, which imports the
registry, so the registry reaches the factory through this lazy wrapper.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from trajkit.run.models import Models


def build_adversarial(cfg: Any, ob_space: gym.Space, ac_space: gym.Space) -> Models:
    """The learner's models plus the discriminator (:func:`trajkit.run.adversarial.build_adversarial`)."""
    from trajkit.run.adversarial import build_adversarial as build

    return build(cfg, ob_space, ac_space)
