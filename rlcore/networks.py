"""Network trunks shared by the agents: an MLP and the Nature DQN CNN.

Agents build their heads (policy logits, value heads, return distributions) on
top of these trunks, so one Atari torso serves PPO, RND and C51 alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rlcore import _checks

__all__ = ["NatureCNN", "bf16_is_fast", "layer_init", "mlp"]


def bf16_is_fast(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX instructions (elsewhere bf16 autocast is emulated, and slower)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def layer_init(layer: nn.Module, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights with ``gain`` and constant bias (the PPO implementation detail)."""
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.constant_(layer.bias, bias)
    return layer


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None = None,
    activation: type[nn.Module] = nn.ReLU,
    orthogonal: bool = False,
) -> nn.Sequential:
    """``in_dim -> hidden[0] -> ... -> hidden[-1] (-> out_dim)``, activations between.

    No activation after the last layer when ``out_dim`` is given; with
    ``out_dim=None`` the result is a trunk ending in an activation.
    ``orthogonal`` applies :func:`layer_init` (output layer gain 1).
    """
    _checks.integer("in_dim", in_dim, minimum=1)
    for h in hidden:
        _checks.integer("hidden", h, minimum=1)
    layers: list[nn.Module] = []
    prev = in_dim
    for h in hidden:
        lin = nn.Linear(prev, h)
        layers += [layer_init(lin) if orthogonal else lin, activation()]
        prev = h
    if out_dim is not None:
        _checks.integer("out_dim", out_dim, minimum=1)
        lin = nn.Linear(prev, out_dim)
        layers.append(layer_init(lin, gain=1.0) if orthogonal else lin)
    return nn.Sequential(*layers)


class NatureCNN(nn.Module):
    """The Nature DQN torso (Mnih et al. 2015) for ``(B, C, 84, 84)`` frames.

    Conv 32x8x8/4, 64x4x4/2, 64x3x3/1, then a linear layer to ``features``
    (512). Inputs are uint8 pixels or floats in [0, 255]; they are scaled to
    [0, 1] inside, so replay buffers can keep uint8.
    """

    def __init__(
        self,
        in_channels: int = 4,
        features: int = 512,
        activation: type[nn.Module] = nn.ReLU,
        orthogonal: bool = True,
    ) -> None:
        super().__init__()
        _checks.integer("in_channels", in_channels, minimum=1)
        _checks.integer("features", features, minimum=1)

        def init(layer: nn.Module) -> nn.Module:
            return layer_init(layer) if orthogonal else layer

        self.features = features
        self.net = nn.Sequential(
            init(nn.Conv2d(in_channels, 32, 8, stride=4)), activation(),
            init(nn.Conv2d(32, 64, 4, stride=2)), activation(),
            init(nn.Conv2d(64, 64, 3, stride=1)), activation(),
            nn.Flatten(),
            init(nn.Linear(64 * 7 * 7, features)), activation(),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-2:] != (84, 84):
            raise ValueError(f"x must have shape (B, C, 84, 84), got {tuple(x.shape)}")
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
        # conv(x / 255, W) = conv(x, W / 255): scaling the 8 K first-layer weights instead of
        # the 28 K values per frame stack saves a pass over the input (pixels 0..255 are
        # exact in bf16 too, so under autocast they are cast once, straight from uint8).
        first = self.net[0]
        h = nn.functional.conv2d(x.to(dtype), first.weight / 255.0, first.bias, first.stride)
        return self.net[1:](h)
