"""Running statistics for normalising observations and rewards."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlcore import _checks

__all__ = ["DiscountedReturnFilter", "RunningMeanStd"]


class RunningMeanStd:
    """Mean and variance of a stream of batches, merged with the parallel algorithm.

    Statistics are kept in float64 (Chan et al.'s pairwise update loses
    precision in float32 over millions of samples).

    Args:
        shape: shape of one sample (``()`` for scalars).
        epsilon: initial pseudo-count, so the first normalisation is finite.
        device: where the statistics live.
    """

    def __init__(
        self, shape: tuple[int, ...] = (), epsilon: float = 1e-4, device: str | torch.device = "cpu"
    ) -> None:
        self.shape = tuple(shape)
        self.mean = torch.zeros(self.shape, dtype=torch.float64, device=device)
        self.var = torch.ones(self.shape, dtype=torch.float64, device=device)
        self.count = float(_checks.positive("epsilon", epsilon))

    def update(self, x: Tensor) -> None:
        """Merge a batch ``(..., *shape)``: every leading index is one sample."""
        _checks.tensor("x", x)
        if tuple(x.shape[x.dim() - len(self.shape) :]) != self.shape or x.dim() < len(self.shape):
            raise ValueError(f"x must end with shape {self.shape}, got {tuple(x.shape)}")
        _checks.finite("x", x)
        batch = x.detach().reshape(-1, *self.shape).to(self.mean.device, torch.float64)
        n = batch.shape[0]
        if n == 0:
            return
        b_mean = batch.mean(dim=0)
        b_var = batch.var(dim=0, correction=0)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + b_var * n + delta.pow(2) * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> Tensor:
        return torch.sqrt(self.var)

    def normalize(self, x: Tensor, clip: float | None = None, eps: float = 1e-8) -> Tensor:
        """``(x - mean) / sqrt(var + eps)``, optionally clipped to ``[-clip, clip]``; x's dtype."""
        out = (x - self.mean.to(x.dtype)) / torch.sqrt(self.var + eps).to(x.dtype)
        return out if clip is None else out.clamp(-clip, clip)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].to(self.mean.device, torch.float64)
        self.var = state["var"].to(self.var.device, torch.float64)
        self.count = float(state["count"])


class DiscountedReturnFilter:
    """Running std of the discounted return, for scaling rewards (RND's intrinsic reward).

    The return is accumulated over *time*, separately for each environment,
    ``R[t] = gamma * R[t-1] + r[t]``, and every ``R[t]`` updates a
    :class:`RunningMeanStd`. (Accumulating across environments instead of time
    is a known bug of a popular RND reimplementation.) Without ``dones`` the
    stream is non-episodic, as RND's intrinsic reward is.

    Args:
        num_envs: number of parallel environments.
        gamma: discount in ``[0, 1]``.
    """

    def __init__(self, num_envs: int, gamma: float, device: str | torch.device = "cpu") -> None:
        self.num_envs = _checks.integer("num_envs", num_envs, minimum=1)
        self.gamma = _checks.unit_interval("gamma", gamma)
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.rms = RunningMeanStd((), device=device)

    def update(self, rewards: Tensor, dones: Tensor | None = None) -> Tensor:
        """Consume ``(T, num_envs)`` rewards in time order; returns the running std."""
        _checks.tensor("rewards", rewards, ndim=2)
        if rewards.shape[1] != self.num_envs:
            raise ValueError(
                f"rewards must have shape (T, {self.num_envs}), got {tuple(rewards.shape)}"
            )
        _checks.finite("rewards", rewards)
        r = rewards.detach().to(self.returns.device, torch.float64)
        not_done = None
        if dones is not None:
            not_done = 1.0 - _checks.as_float_mask("dones", dones, "rewards", rewards).to(r)
        history = torch.empty_like(r)
        for t in range(r.shape[0]):
            self.returns = self.gamma * self.returns + r[t]
            history[t] = self.returns
            if not_done is not None:
                self.returns = self.returns * not_done[t]
        self.rms.update(history)
        return self.rms.std

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.clone(), "rms": self.rms.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns = state["returns"].to(self.returns.device, torch.float64)
        self.rms.load_state_dict(state["rms"])
