"""Timing helpers shared by the benchmark scripts: wall time, and the arithmetic behind it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

_aten = torch.ops.aten
_CPU_ATTENTION = {
    # torch has no formula for the CPU kernels of scaled_dot_product_attention (CUDA's are in
    # flop_registry); the arithmetic is the same, so these reuse torch's attention counts.
    _aten._scaled_dot_product_flash_attention_for_cpu:
        lambda q, k, v, *_, **__: sdpa_flop_count(q.shape, k.shape, v.shape),
    _aten._scaled_dot_product_flash_attention_for_cpu_backward:
        lambda grad, q, k, v, *_, **__: sdpa_backward_flop_count(grad.shape, q.shape, k.shape,
                                                                  v.shape),
}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


class _FlopCount(TorchDispatchMode):
    """Adds up the floating-point operations of every op torch has a formula for (matrix
    products and attention, forward and backward). torch's own ``FlopCounterMode`` also tracks
    modules, and its hooks fail on some third-party models (rl4co's), so this counts ops only."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in _CPU_ATTENTION:
            self.total += _CPU_ATTENTION[packet](*args, **kwargs)
        elif packet in flop_registry:
            self.total += flop_registry[packet](*args, **kwargs, out_val=out)
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations (a multiply-add counts 2) of the matrix products and attention
    in one call of ``fn``, backward passes included; elementwise work is not counted."""
    with _FlopCount() as counter:
        fn()
    return counter.total


def matmul_rate(repeats: int = 20) -> float:
    """This machine's float32 matrix-product rate in FLOP/s at torch's current thread count: the
    best of a few shapes a d=128 attention model multiplies (its feed-forward layers, its
    projections) and one large square product."""
    rates = []
    for m, k, n in ((10240, 128, 512), (10240, 512, 128), (10240, 128, 128), (1024, 1024, 1024)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        rates.append(2 * m * k * n / median_seconds(lambda a=a, b=b: a @ b, repeats))
    return max(rates)
