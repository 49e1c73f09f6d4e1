"""Decoding strategies: greedy, sampling, multi-start (POMO), and x8 symmetry augmentation.

They combine: ``decode(model, inst, "multistart", augment=8)`` runs every node
as a first node on each of the 8 symmetric copies of every instance and keeps
the best solution. Large batches are processed in chunks so memory stays
bounded whatever the number of instances.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from problems.base import Instance
from problems.model import AttentionModel

__all__ = ["STRATEGIES", "augment", "by_instance", "decode", "from_instance"]

Strategy = Literal["greedy", "sample", "multistart"]
STRATEGIES: tuple[str, ...] = ("greedy", "sample", "multistart")


def _symmetries(xy: Tensor) -> list[Tensor]:
    """The 8 symmetries of the unit square (identity first)."""
    x, y = xy[..., :1], xy[..., 1:]
    pairs = [(x, y), (y, x), (1 - x, y), (y, 1 - x), (x, 1 - y), (1 - y, x), (1 - x, 1 - y),
             (1 - y, 1 - x)]
    return [torch.cat(p, dim=-1) for p in pairs]


def augment(inst: Instance, coord_keys: tuple[str, ...], num: int) -> Instance:
    """Stack ``num`` (1, 2, 4 or 8) symmetric copies: ``(num * B, ...)``, copy-major."""
    if num not in (1, 2, 4, 8):
        raise ValueError(f"augment must be 1, 2, 4 or 8, got {num}")
    out = {}
    for key, value in inst.items():
        if key in coord_keys:
            out[key] = torch.cat(_symmetries(value)[:num], dim=0)
        else:
            out[key] = value.repeat(num, *([1] * (value.dim() - 1)))
    return out


def by_instance(x: Tensor, copies: int) -> Tensor:
    """``(copies * B, k, ...)`` copy-major rows (as :func:`augment` stacks them) to
    ``(B, copies * k, ...)``: every rollout of one instance, over all its copies, in one row."""
    if x.shape[0] % copies:
        raise ValueError(f"x: {x.shape[0]} rows are not a multiple of copies={copies}")
    rest = x.shape[1:]
    return x.view(copies, -1, *rest).transpose(0, 1).reshape(-1, copies * rest[0], *rest[1:])


def from_instance(x: Tensor, copies: int) -> Tensor:
    """The inverse of :func:`by_instance`: ``(B, copies * k, ...)`` to ``(copies * B, k, ...)``."""
    if x.shape[1] % copies:
        raise ValueError(f"x: {x.shape[1]} columns are not a multiple of copies={copies}")
    k, rest = x.shape[1] // copies, x.shape[2:]
    return x.view(x.shape[0], copies, k, *rest).transpose(0, 1).reshape(-1, k, *rest)


def _pad_cat(parts: list[Tensor]) -> Tensor:
    """Concatenate ``(b, T_i)`` node sequences, padding with node 0 (the depot where there is one)."""
    width = max(p.shape[-1] for p in parts)
    return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[-1])) for p in parts])


MAX_ROLLOUTS = 16384
"""Rollouts decoded side by side at most (instances x augment x rollouts per instance):
bounds memory, and larger steps only run slower on CPU."""


def _rollouts_per_instance(model: AttentionModel, inst: Instance, strategy: Strategy,
                           samples: int) -> int:
    if strategy == "multistart":
        n = model.problem.max_starts(inst)
        return n if samples <= 1 else min(samples, n)
    return samples if strategy == "sample" else 1


@torch.no_grad()
def _decode_chunk(
    model: AttentionModel, inst: Instance, strategy: Strategy, k: int, augment_num: int,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Best of ``augment_num * k`` rollouts per instance of one chunk."""
    problem = model.problem
    batch = next(iter(inst.values())).shape[0]
    aug = augment(inst, problem.coord_keys, augment_num)
    first = problem.starts(aug, k) if strategy == "multistart" else None
    out = model.rollout(aug, k=k, greedy=strategy != "sample", first=first, generator=generator)
    cost = problem.cost(aug, out.actions)  # (A * B, k)
    cost, actions = by_instance(cost, augment_num), by_instance(out.actions, augment_num)
    best = cost.argmin(dim=1)
    rows = torch.arange(batch, device=best.device)
    return actions[rows, best], cost[rows, best]


def decode(
    model: AttentionModel,
    inst: Instance,
    strategy: Strategy = "greedy",
    samples: int = 1,
    augment: int = 1,
    batch_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Best solution per instance under a decoding strategy.

    Args:
        model: a trained :class:`~problems.model.AttentionModel` (put in eval mode here).
        inst: instance batch in the unit square.
        strategy: ``"greedy"`` (one greedy rollout), ``"sample"`` (``samples``
            sampled rollouts, best kept) or ``"multistart"`` (a greedy rollout
            from every possible first node; ``samples > 1`` caps the number of starts).
        samples: rollouts per instance for ``"sample"``.
        augment: symmetric copies of each instance (1, 2, 4 or 8); the best is kept.
        batch_size: instances per chunk at most; a chunk also holds at most
            ``MAX_ROLLOUTS`` rollouts (instances x ``augment`` x rollouts per instance).
        generator: RNG for sampling.

    Returns:
        ``(actions (B, T), costs (B,))`` in the instance's (normalised) units.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model.problem.stochastic and (strategy != "greedy" or augment != 1):
        raise ValueError(f"{model.problem.name} is stochastic: only strategy='greedy' with "
                         "augment=1 is fair (picking the best of several rollouts would use "
                         "prizes that the other rollouts revealed)")
    was_training = model.training
    model.eval()
    n_inst = next(iter(inst.values())).shape[0]
    k = _rollouts_per_instance(model, inst, strategy, samples)
    batch_size = max(1, min(batch_size, MAX_ROLLOUTS // (augment * k)))
    actions, costs = [], []
    for i in range(0, n_inst, batch_size):
        part = {k: v[i : i + batch_size] for k, v in inst.items()}
        a, c = _decode_chunk(model, part, strategy, k, augment, generator)
        actions.append(a)
        costs.append(c)
    model.train(was_training)
    return _pad_cat(actions), torch.cat(costs)
