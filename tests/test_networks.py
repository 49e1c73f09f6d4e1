"""Shared network trunks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlcore.networks import NatureCNN, mlp


def test_mlp_shapes_and_last_layer() -> None:
    net = mlp(4, [64, 64], 2)
    assert net(torch.zeros(5, 4)).shape == (5, 2)
    assert isinstance(net[-1], nn.Linear)
    trunk = mlp(4, [8])
    assert isinstance(trunk[-1], nn.ReLU)
    with pytest.raises(ValueError, match="in_dim"):
        mlp(0, [8])


def test_nature_cnn_takes_uint8_frames() -> None:
    net = NatureCNN(in_channels=4)
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    out = net(frames)
    assert out.shape == (2, 512)
    assert torch.allclose(out, net(frames.float()))
    with pytest.raises(ValueError, match="84, 84"):
        net(torch.zeros(2, 4, 64, 64))
