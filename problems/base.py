"""What every routing problem provides to the shared model, decoders and trainer.

An *instance batch* is a dict of tensors whose first dimension is the batch
(``{"locs": (B, n, 2)}`` for TSP). A decoding *state* holds ``k`` parallel
rollouts per instance, so tensors in it are shaped ``(B, k, ...)``: the encoder
runs once per instance and all ``k`` rollouts (samples, or POMO's starts)
share its output.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

Instance = dict[str, Tensor]

StepContext = tuple[Tensor, Tensor | None]
"""``(B, k, context_nodes)`` node indices whose embeddings start the step context, and
``(B, k, context_extra)`` scalar features after them (``None`` when there are none). The
model projects every node's embedding once per instance, so a step only gathers."""


class RoutingProblem(Protocol):
    """The interface the attention model, the decoders and the trainer rely on."""

    name: str
    """Short name, e.g. ``"tsp"``."""
    node_dim: int
    """Number of input features per node (``node_features``' last dimension)."""
    coord_keys: tuple[str, ...]
    """Instance keys holding coordinates (normalised, augmented and plotted)."""
    context_nodes: int
    """How many node embeddings the decoder's step context holds (TSP: first and current)."""
    context_extra: int
    """How many scalar features follow them (remaining capacity, length or prize to collect)."""
    stochastic: bool
    """True when part of the instance is revealed only during the tour (SPCTSP): then only
    one greedy rollout is a fair solution, since the best of several would use outcomes
    that the others revealed."""

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        """``num`` random instances with ``size`` nodes (the paper's distribution)."""
        ...

    def node_features(self, inst: Instance) -> Tensor:
        """``(B, n, node_dim)`` inputs of the encoder."""
        ...

    # Optional: ``dynamic_dim: int`` and ``dynamic(state) -> (B, k, n, dynamic_dim)`` for
    # node features that change during decoding (SDVRP's remaining demand).

    def max_starts(self, inst: Instance) -> int:
        """How many distinct first nodes multi-start decoding can use."""
        ...

    def starts(self, inst: Instance, num: int) -> Tensor:
        """``(B, num)`` distinct first nodes for multi-start decoding (POMO)."""
        ...

    def init_state(self, inst: Instance, k: int) -> Any:
        """The empty decoding state of ``k`` rollouts per instance."""
        ...

    def context(self, state: Any) -> StepContext | None:
        """The decoder's step context, or ``None`` for the learned placeholder."""
        ...

    def mask(self, state: Any) -> Tensor:
        """``(B, k, n)`` bool, True where a node may not be chosen next."""
        ...

    def step(self, state: Any, action: Tensor) -> Any:
        """Apply ``(B, k)`` chosen nodes."""
        ...

    def finished(self, state: Any) -> bool:
        """True when every rollout is complete."""
        ...

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        """``(B, k)`` cost (minimised) of ``(B, k, T)`` node sequences."""
        ...

    def check(self, inst: Instance, tours: Tensor) -> None:
        """Raise ``ValueError`` if any ``(B, k, T)`` solution is infeasible."""
        ...


def gather_nodes(x: Tensor, index: Tensor) -> Tensor:
    """``x`` ``(B, n, ...)`` at node indices ``(B, k)``: ``(B, k, ...)``."""
    flat = index.reshape(index.shape[0], -1)
    expand = flat.view(*flat.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, expand).view(*index.shape, *x.shape[2:])


def tour_length(locs: Tensor, tours: Tensor) -> Tensor:
    """Length of closed tours: ``locs`` ``(B, n, 2)``, ``tours`` ``(B, k, T)`` -> ``(B, k)``.

    The tour returns from its last node to its first. Float Euclidean distances.
    """
    pos = gather_nodes(locs, tours.reshape(tours.shape[0], -1)).view(*tours.shape, locs.shape[-1])
    return (pos - pos.roll(-1, dims=2)).norm(dim=-1).sum(dim=-1)


def with_depot(x: Tensor) -> Tensor:
    """Prepend a zero column for the depot: ``(B, n, ...)`` -> ``(B, n + 1, ...)``."""
    return torch.cat((torch.zeros_like(x[:, :1]), x), dim=1)


def depot_locs(inst: Instance) -> Tensor:
    """``(B, n + 1, 2)``: the depot, then the other nodes."""
    return torch.cat((inst["depot"].unsqueeze(1), inst["locs"]), dim=1)


def depot_node_features(inst: Instance, *keys: str) -> Tensor:
    """``(x, y, *inst[keys], is_depot)`` per node, the depot's values 0: ``(B, n + 1, F)``."""
    values = [with_depot(inst[key]) for key in keys]
    is_depot = torch.zeros_like(values[0])
    is_depot[:, 0] = 1.0
    return torch.cat((depot_locs(inst), torch.stack((*values, is_depot), dim=-1)), dim=-1)


def route_length(inst: Instance, tours: Tensor) -> Tensor:
    """Length of routes that leave the depot, visit ``tours`` ``(B, k, T)`` (0 = depot)
    and return: ``(B, k)``."""
    depot = torch.zeros_like(tours[..., :1])
    return tour_length(depot_locs(inst), torch.cat((depot, tours), dim=-1))


def distinct_starts(batch: int, n: int, num: int, device: torch.device, offset: int = 0) -> Tensor:
    """``(batch, num)`` distinct first nodes among ``offset .. offset + n - 1``: all of
    them in order when ``num == n``, else a random subset (global RNG)."""
    if not 1 <= num <= n:
        raise ValueError(f"num must be in [1, {n}] starts for {n} nodes, got {num}")
    if num == n:
        return torch.arange(offset, offset + n, device=device).expand(batch, n)
    return torch.rand(batch, n, device=device).argsort(dim=1)[:, :num] + offset
