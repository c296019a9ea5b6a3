"""Network builders, and the checks policies and value functions run on the nets they are given."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from trajkit.devices import module_device
from trajkit.recurrent import RecurrentNet


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: type[nn.Module] = nn.Tanh,
    out_gain: float = 1.0,
    orthogonal: bool = True,
) -> nn.Sequential:
    """A multi-layer perceptron ``(B, in_dim) -> (B, out_dim)``.

    With ``orthogonal`` (default) hidden layers get orthogonal weights with gain
    ``sqrt(2)`` and the output layer gain ``out_gain`` (use 0.01 for a policy's mean or
    logits, 1.0 for a value), biases 0: the initialization PPO implementations rely on.
    """
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for i, o in zip(dims[:-1], dims[1:], strict=True):
        layers += [_init(nn.Linear(i, o), math.sqrt(2), orthogonal), activation()]
    layers.append(_init(nn.Linear(dims[-1], out_dim), out_gain, orthogonal))
    return nn.Sequential(*layers)


def lstm(
    in_dim: int,
    out_dim: int,
    *,
    torso: Sequence[int] = (),
    core_size: int = 64,
    head: Sequence[int] = (64,),
    num_layers: int = 1,
    activation: type[nn.Module] = nn.Tanh,
    out_gain: float = 1.0,
    orthogonal: bool = True,
    late_dim: int = 0,
) -> RecurrentNet:
    """A recurrent net ``(T, B, in_dim) -> (T, B, out_dim)`` with an ``nn.LSTM`` core; see :func:`gru`."""
    return _recurrent(nn.LSTM, in_dim, out_dim, torso, core_size, head, num_layers, activation, out_gain, orthogonal,
                      late_dim)


def gru(
    in_dim: int,
    out_dim: int,
    *,
    torso: Sequence[int] = (),
    core_size: int = 64,
    head: Sequence[int] = (64,),
    num_layers: int = 1,
    activation: type[nn.Module] = nn.Tanh,
    out_gain: float = 1.0,
    orthogonal: bool = True,
    late_dim: int = 0,
) -> RecurrentNet:
    """A recurrent net ``(T, B, in_dim) -> (T, B, out_dim)``: MLP torso, ``nn.GRU`` core, MLP head.

    ``torso``: hidden sizes of the MLP before the core (each followed by ``activation``;
    empty: the features go straight into the core). ``core_size``, ``num_layers``: the
    core's hidden size and layers. ``head``: hidden sizes of the MLP after the core,
    whose last layer has gain ``out_gain`` (0.01 for a policy, 1.0 for a value). With
    ``orthogonal`` the torso and head are initialized as in :func:`mlp` and the core's
    weights orthogonally with biases 0. ``late_dim``: the last ``late_dim`` input
    features bypass the torso and core and enter the head beside the core's output (for
    a recurrent critic, the action size: ``Q(h, a)`` with a state of observations only).
    See :mod:`trajkit.recurrent` for the hidden state (``hs: (B, S)``) and reset masks.
    """
    return _recurrent(nn.GRU, in_dim, out_dim, torso, core_size, head, num_layers, activation, out_gain, orthogonal,
                      late_dim)


def _recurrent(
    core_cls: type[nn.LSTM] | type[nn.GRU],
    in_dim: int,
    out_dim: int,
    torso: Sequence[int],
    core_size: int,
    head: Sequence[int],
    num_layers: int,
    activation: type[nn.Module],
    out_gain: float,
    orthogonal: bool,
    late_dim: int = 0,
) -> RecurrentNet:
    if not 0 <= late_dim < in_dim:
        raise ValueError(f"late_dim must be in [0, in_dim={in_dim}), got {late_dim}")
    core_in = in_dim - late_dim
    torso_net: nn.Module = nn.Identity()
    if torso:
        layers = mlp(core_in, torso[-1], torso[:-1], activation, math.sqrt(2), orthogonal)
        torso_net = nn.Sequential(layers, activation())
    core = core_cls(torso[-1] if torso else core_in, core_size, num_layers=num_layers)
    if orthogonal:
        for name, w in core.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(w)
            else:
                nn.init.zeros_(w)
    head_net = mlp(core_size + late_dim, out_dim, head, activation, out_gain, orthogonal)
    return RecurrentNet(torso_net, core, head_net, in_dim, out_dim, late_dim)


def _init(layer: nn.Linear, gain: float, orthogonal: bool) -> nn.Linear:
    if orthogonal:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class DuelingHead(nn.Module):
    """Dueling Q head: ``Q(s, .) = V(s) + A(s, .) - mean_a A(s, a)``, ``(B, feat) -> (B, n)``."""

    def __init__(self, feat_dim: int, n: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        self.v = mlp(feat_dim, 1, hidden, nn.ReLU)
        self.a = mlp(feat_dim, n, hidden, nn.ReLU)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        a = self.a(feat)
        return self.v(feat) + a - a.mean(-1, keepdim=True)


def dueling_mlp(in_dim: int, n: int, hidden: Sequence[int] = (64, 64)) -> nn.Sequential:
    """An MLP trunk with a :class:`DuelingHead`: ``(B, in_dim) -> (B, n)`` Q-values."""
    trunk = mlp(in_dim, hidden[-1], hidden[:-1], nn.ReLU)
    return nn.Sequential(trunk, nn.ReLU(), DuelingHead(hidden[-1], n))


def obs_features(obs: torch.Tensor, obs_normalizer: nn.Module | None, obs_dim: int | None = None) -> torch.Tensor:
    """Observations ``(B, *obs_shape)`` as the float ``(B, obs_dim)`` input of a network, normalized if asked.

    With ``obs_dim``, observations of another size are a ValueError naming both sizes
    (instead of torch's shape mismatch deep inside the network).
    """
    if obs_dim is not None and (obs.dim() == 0 or obs[0].numel() != obs_dim):
        raise ValueError(f"observations of shape {tuple(obs.shape)} have {obs[0].numel() if obs.dim() else 1} "
                         f"features per row; this model's observation space has {obs_dim}")
    obs = obs.float()
    if obs_normalizer is not None:
        obs = obs_normalizer(obs)
    return obs.reshape(obs.shape[0], -1)


def _first_layer(net: nn.Module) -> nn.Module | None:
    """The first module of ``net`` (in registration order) that holds parameters itself."""
    for m in net.modules():
        if any(True for _ in m.parameters(recurse=False)):
            return m
    return None


def net_out_dim(net: nn.Module, in_dim: int, owner: str, inputs: str) -> int:
    """The output size of ``net`` on a ``(1, in_dim)`` input, checked at construction.

    If ``net`` cannot take ``in_dim`` inputs (its first ``nn.Linear`` takes another
    number, or the probe fails), a ValueError says so naming ``owner`` (the class being
    built), ``inputs`` (what the features are, e.g. ``"the observation"``) and both sizes,
    instead of torch's "mat1 and mat2 shapes cannot be multiplied" at the first forward.
    """
    if isinstance(net, RecurrentNet):
        if net.in_dim != in_dim:
            raise ValueError(f"{owner}: {inputs} has {in_dim} features but the recurrent net takes {net.in_dim}; "
                             f"build the net with input size {in_dim}")
        return net.out_dim
    first = _first_layer(net)
    if isinstance(first, nn.Linear) and not isinstance(first.weight, nn.parameter.UninitializedParameter):
        if first.in_features != in_dim:
            raise ValueError(
                f"{owner}: {inputs} has {in_dim} features but the net's first layer takes {first.in_features} "
                f"({first}); build the net with input size {in_dim}"
            )
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, in_dim, device=module_device(net)))
    except RuntimeError as e:
        raise ValueError(f"{owner}: the net cannot take {inputs} of {in_dim} features: {e}") from e
    return int(out.shape[-1])
