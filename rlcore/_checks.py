"""Argument checks shared by rlcore's public functions.

Every check raises ``TypeError`` / ``ValueError`` with the argument's name, so a
user sees which input was wrong instead of a shape error deep inside torch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def tensor(name: str, x: object, *, ndim: int | tuple[int, ...] | None = None) -> Tensor:
    """Return ``x`` if it is a floating/bool/int tensor with the expected rank."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    return x


def finite(name: str, x: Tensor) -> Tensor:
    """Raise if ``x`` holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def same_shape(name: str, x: Tensor, ref_name: str, ref: Tensor) -> Tensor:
    """Raise unless ``x`` has the shape of ``ref``."""
    if x.shape != ref.shape:
        raise ValueError(
            f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, got {tuple(x.shape)}"
        )
    return x


def unit_interval(name: str, value: float) -> float:
    """Raise unless ``0 <= value <= 1`` (discounts, lambdas, betas)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1], got {type(value).__name__}")
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value > 0`` (or ``>= 0`` with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok or math.isnan(value):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def integer(name: str, value: int, *, minimum: int) -> int:
    """Raise unless ``value`` is an int not below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_float_mask(name: str, x: Tensor, ref_name: str, ref: Tensor) -> Tensor:
    """A done/mask tensor of ``ref``'s shape as floats in {0, 1}."""
    tensor(name, x)
    same_shape(name, x, ref_name, ref)
    x = x.to(ref.dtype) if ref.is_floating_point() else x.float()
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must hold only 0/1 (or booleans)")
    return x
