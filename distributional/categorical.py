"""Categorical return distributions (Bellemare, Dabney, Munos 2017): support, projection, loss.

A return distribution is a probability vector over ``n_atoms`` fixed atoms
``z_j = v_min + j * dz`` with ``dz = (v_max - v_min) / (n_atoms - 1)``. The
Bellman update ``r + discount * Z`` moves the atoms off the support;
:func:`project` puts the mass back onto the two nearest atoms, in proportion to
their distance (the C51 projection), so no probability is gained or lost.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["Support", "categorical_loss", "project"]


class Support:
    """``n_atoms`` evenly spaced atoms on ``[v_min, v_max]``.

    Args:
        v_min: smallest return represented; must be below ``v_max``.
        v_max: largest return represented.
        n_atoms: number of atoms, at least 2.
        device: where :attr:`atoms` lives.
    """

    def __init__(
        self, v_min: float, v_max: float, n_atoms: int, device: str | torch.device = "cpu"
    ) -> None:
        for name, value in (("v_min", v_min), ("v_max", v_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
        if not v_min < v_max:
            raise ValueError(f"v_min must be < v_max, got v_min={v_min}, v_max={v_max}")
        if isinstance(n_atoms, bool) or not isinstance(n_atoms, int):
            raise TypeError(f"n_atoms must be an int, got {type(n_atoms).__name__}")
        if n_atoms < 2:
            raise ValueError(f"n_atoms must be >= 2, got {n_atoms}")
        self.v_min, self.v_max, self.n_atoms = float(v_min), float(v_max), n_atoms
        self.delta = (self.v_max - self.v_min) / (n_atoms - 1)
        # Computed in float64 so that float32 atoms are the nearest floats to the exact ones.
        atoms = torch.linspace(self.v_min, self.v_max, n_atoms, dtype=torch.float64)
        self.atoms = atoms.to(device=device, dtype=torch.float32)

    def to(self, device: str | torch.device) -> Support:
        """The same support with :attr:`atoms` on ``device``."""
        return Support(self.v_min, self.v_max, self.n_atoms, device)

    def mean(self, probs: Tensor) -> Tensor:
        """Expected return of distributions ``probs`` ``(..., n_atoms)``: ``(...)``."""
        return probs @ self.atoms.to(probs.dtype)

    def __repr__(self) -> str:
        return f"Support(v_min={self.v_min}, v_max={self.v_max}, n_atoms={self.n_atoms})"


def project(support: Support, probs: Tensor, returns: Tensor, discounts: Tensor) -> Tensor:
    """Project ``returns + discounts * Z`` onto ``support`` (the C51 projection).

    ``Z`` is the distribution ``probs`` on the support's atoms. Each shifted
    atom ``Tz = clamp(r + discount * z, v_min, v_max)`` sits between atoms
    ``l = floor(b)`` and ``l + 1`` where ``b = (Tz - v_min) / dz``; its mass is
    split ``1 - (b - l)`` to ``l`` and ``b - l`` to ``l + 1``. The two shares sum
    to one for every atom, so the projection keeps total mass (up to float
    rounding). A terminal transition has ``discount = 0`` and puts all mass at
    ``r``; an n-step target passes the n-step return and ``gamma ** n``.

    Args:
        support: the atoms.
        probs: ``(B, n_atoms)`` distributions of the bootstrap state.
        returns: ``(B,)`` (n-step) rewards.
        discounts: ``(B,)`` discount of the bootstrap, 0 where the episode terminated.

    Returns:
        ``(B, n_atoms)`` projected distributions, ``probs``' dtype.
    """
    if not isinstance(support, Support):
        raise TypeError(f"support must be a Support, got {type(support).__name__}")
    for name, x in (("probs", probs), ("returns", returns), ("discounts", discounts)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if probs.dim() != 2 or probs.shape[1] != support.n_atoms:
        raise ValueError(
            f"probs must have shape (B, {support.n_atoms}), got {tuple(probs.shape)}"
        )
    batch = probs.shape[0]
    for name, x in (("returns", returns), ("discounts", discounts)):
        if x.shape != (batch,):
            raise ValueError(f"{name} must have shape ({batch},), got {tuple(x.shape)}")
    # Positions in units of atoms: b = (r + discount * z - v_min) / dz, clipped to the
    # support (the same as clipping r + discount * z to [v_min, v_max]).
    index = torch.arange(support.n_atoms, device=probs.device, dtype=probs.dtype)
    offset = (returns.to(probs.dtype) - support.v_min) / support.delta
    scale = discounts.to(probs.dtype)
    b = torch.addcmul(
        (offset + scale * (support.v_min / support.delta))[:, None], scale[:, None], index
    ).clamp_(0, support.n_atoms - 1)
    lower = b.floor()
    upper_mass = probs * (b - lower)
    lower_idx = lower.long()
    # One spare column takes the upper share of mass sitting exactly on the last
    # atom, which is always 0, so no index needs clamping.
    out = probs.new_zeros(batch, support.n_atoms + 1)
    out.scatter_add_(1, lower_idx, probs - upper_mass)
    out.scatter_add_(1, lower_idx + 1, upper_mass)
    return out[:, :-1]


def categorical_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy ``-sum_j target_j * log softmax(logits)_j`` per sample.

    Args:
        logits: ``(B, n_atoms)`` unnormalised log-probabilities of the taken actions.
        target: ``(B, n_atoms)`` projected target distributions (no gradient flows into them).

    Returns:
        ``(B,)`` losses; take the mean (or weight them) for the batch loss.
    """
    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError("logits and target must be torch.Tensors")
    if logits.dim() != 2 or logits.shape != target.shape:
        raise ValueError(
            f"logits and target must both have shape (B, n_atoms), got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    return -(target.detach() * torch.log_softmax(logits, dim=1)).sum(dim=1)
