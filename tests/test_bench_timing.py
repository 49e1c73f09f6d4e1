"""The benchmarks' arithmetic counter, against products counted by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "bench_timing", Path(__file__).parents[1] / "benchmarks" / "timing.py")
timing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timing)


def test_count_flops_counts_products_forward_and_backward() -> None:
    a, b = torch.randn(4, 3), torch.randn(3, 5)
    assert timing.count_flops(lambda: a @ b) == 2 * 4 * 3 * 5
    assert timing.count_flops(lambda: torch.relu(a) + 1) == 0
    layer = torch.nn.Linear(3, 5)
    x = torch.randn(4, 3)
    # forward (4x3 by 3x5) and the weight gradient (5x4 by 4x3); x needs no gradient
    assert timing.count_flops(lambda: layer(x).sum().backward()) == 2 * 120
    x.requires_grad_(True)
    assert timing.count_flops(lambda: layer(x).sum().backward()) == 3 * 120
    q = torch.randn(2, 8, 6, 16, requires_grad=True)
    products = 2 * 2 * 8 * 6 * 6 * 16  # one (6x16 by 16x6) product per batch and head
    sdpa = torch.nn.functional.scaled_dot_product_attention
    assert timing.count_flops(lambda: sdpa(q, q, q)) == 2 * products  # scores, weighted sum
    # backward: the scores again, and the gradients of the weights, v, q and k
    assert timing.count_flops(lambda: sdpa(q, q, q).sum().backward()) == 2 * products + 5 * products


def test_matmul_rate_is_positive() -> None:
    assert timing.matmul_rate(repeats=1) > 0
