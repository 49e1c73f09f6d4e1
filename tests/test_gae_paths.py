"""The compiled CPU pass of gae and its torch fallback (used off the CPU) agree."""

from __future__ import annotations

import pytest
import torch

from rlcore import estimators
from rlcore.estimators import discounted_returns, gae


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_and_torch_paths_agree(dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(50, 7, generator=gen, dtype=dtype)
    v = torch.randn(50, 7, generator=gen, dtype=dtype)
    d = torch.rand(50, 7, generator=gen) < 0.1
    last = torch.randn(7, generator=gen, dtype=dtype)
    adv, ret = gae(r, v, d, last, 0.99, 0.9)
    adv_t, ret_t = estimators._gae_torch(r, v, d, last, 0.99, 0.9)
    assert adv.dtype == dtype
    torch.testing.assert_close(adv, adv_t)
    torch.testing.assert_close(ret, ret_t)


def test_half_precision_takes_the_torch_path() -> None:
    r = torch.tensor([[1.0], [1.0]], dtype=torch.bfloat16)
    out = discounted_returns(r, torch.zeros(2, 1, dtype=torch.bool), 0.5)
    assert out.dtype == torch.bfloat16
    assert out.float().flatten().tolist() == [1.5, 1.0]


def test_compiled_path_reports_bad_values() -> None:
    r = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="values"):
        gae(r, torch.tensor([[0.0, float("inf")]] * 3), torch.zeros(3, 2), torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="dones"):
        gae(r, r, torch.full((3, 2), 0.5), torch.zeros(2), 0.9, 0.9)
    with pytest.raises(ValueError, match="last_value"):
        gae(r, r, torch.zeros(3, 2), torch.tensor([0.0, float("nan")]), 0.9, 0.9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nstep_compiled_and_torch_paths_agree(dtype) -> None:
    from rlcore.estimators import nstep_returns

    gen = torch.Generator().manual_seed(1)
    r = torch.randn(30, 6, generator=gen, dtype=dtype)
    d = torch.rand(30, 6, generator=gen) < 0.2
    tr = d & (torch.rand(30, 6, generator=gen) < 0.5)
    for truncated in (None, tr):
        got = nstep_returns(r, d, 0.9, 4, truncated)
        ref = estimators._nstep_torch(r, d, 0.9, 4, truncated)
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="truncated marks"):
        nstep_returns(r, torch.zeros(30, 6), 0.9, 4, torch.ones(30, 6))
