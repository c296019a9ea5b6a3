"""``BasePol``: what every policy shares (observation features, the ``act`` loop, the recurrent forward).

A policy built on an MLP net maps observations ``(B, *obs_shape)`` to distribution
parameters. A policy built on a recurrent net (:func:`trajkit.nets.lstm`,
:func:`trajkit.nets.gru`) also takes and returns its hidden state, explicitly:

* ``pol(obs, hs=hs, h_masks=h_masks) -> (params, hs)``: one step, ``obs: (B, *obs_shape)``,
  ``hs: (B, S)``, ``h_masks: (B,)`` (optional, 1.0 resets the row first); or a sequence,
  ``obs: (T, B, *obs_shape)``, ``h_masks: (T, B)``, params ``(T, B, ...)``;
* ``pol.act(obs, deterministic, generator, hs=hs, h_masks=h_masks) -> (acs, params, hs)``;
* ``pol.init_hs(B) -> (B, S)`` zeros, the state at an episode's start.

Nothing is stored on the module between calls. See :mod:`trajkit.recurrent`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from trajkit.devices import module_device
from trajkit.nets import obs_features
from trajkit.pds import Pd
from trajkit.recurrent import RecurrentModel
from trajkit.spaces import BoxBounds, flat_dim

__all__ = ["BasePol", "stateless"]


def _ob_inputs(ob_space: gym.Space) -> str:
    return f"the observation ({ob_space})"


def stateless(pol: BasePol, hs: torch.Tensor | None, h_masks: torch.Tensor | None) -> None:
    """TypeError if a policy without a recurrent net is given a hidden state or reset masks."""
    if hs is not None or h_masks is not None:
        raise TypeError(f"{type(pol).__name__} is not recurrent, so it takes no hs or h_masks")


class BasePol(RecurrentModel, nn.Module):
    """Common parts: observation flattening/normalization, the ``act`` loop and the recurrent forward."""

    pd: Pd

    def __init__(
        self, ob_space: gym.Space, ac_space: gym.Space, obs_normalizer: nn.Module | None = None
    ) -> None:
        super().__init__()
        # Any: each subclass narrows the space type (Box, Discrete, ...) it accepts at run time
        self.ob_space: Any = ob_space
        self.ac_space: Any = ac_space
        self.obs_normalizer = obs_normalizer
        self._ob_dim = flat_dim(ob_space)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs_features(obs, self.obs_normalizer, self._ob_dim)

    def forward(
        self, obs: torch.Tensor, hs: torch.Tensor | None = None, h_masks: torch.Tensor | None = None
    ) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def act(
        self,
        obs: torch.Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
        hs: torch.Tensor | None = None,
        h_masks: torch.Tensor | None = None,
    ) -> Any:
        """Actions ``(B, *ac_shape)`` and distribution parameters for observations ``(B, *obs_shape)``.

        A recurrent policy needs ``hs: (B, S)`` (``h_masks: (B,)`` optional) and returns
        ``(acs, params, hs)``, the state after this step last; an MLP policy returns ``(acs, params)``.
        """
        if hs is None and h_masks is None and not self.recurrent:
            params = self(obs)
            acs = self.pd.mode(params) if deterministic else self.pd.sample(params, generator)
            return acs, params
        params, hs = self(obs, hs=hs, h_masks=h_masks)
        acs = self.pd.mode(params) if deterministic else self.pd.sample(params, generator)
        return acs, params, hs

    def to_env_ac(self, ac: np.ndarray) -> Any:
        """The action the environment receives for one policy action ``ac: (*ac_shape)``."""
        return ac

    def _box_bounds(self) -> BoxBounds:
        """The Box action space's :class:`BoxBounds`, computed once per space."""
        bb = self.__dict__.get("_cached_box_bounds")
        if bb is None or bb.space is not self.ac_space:
            bb = self.__dict__["_cached_box_bounds"] = BoxBounds(self.ac_space)
        return bb

    @property
    def device(self) -> torch.device:
        return module_device(self)
