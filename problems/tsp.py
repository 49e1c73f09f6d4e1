"""The travelling salesman problem: visit every node once, return to the start."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from problems.base import Instance, StepContext, distinct_starts, tour_length

__all__ = ["TSP", "TSPState"]


@dataclass(frozen=True)
class TSPState:
    """``k`` partial tours per instance."""

    first: Tensor  # (B, k) first node (valid once step > 0)
    current: Tensor  # (B, k) last node
    visited: Tensor  # (B, k, n) bool
    step: int  # nodes placed so far


class TSP:
    """TSP with the conventions of Kool et al. (2019): uniform unit-square nodes.

    Context for the decoder: the embeddings of the first and the current node
    (a learned placeholder before the first choice).
    """

    name = "tsp"
    stochastic = False
    node_dim = 2
    context_nodes = 2
    context_extra = 0
    coord_keys = ("locs",)

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        return {"locs": torch.rand(num, size, 2, generator=generator)}

    def node_features(self, inst: Instance) -> Tensor:
        return inst["locs"]

    def max_starts(self, inst: Instance) -> int:
        return inst["locs"].shape[1]

    def starts(self, inst: Instance, num: int) -> Tensor:
        batch, n = inst["locs"].shape[:2]
        return distinct_starts(batch, n, num, inst["locs"].device, offset=0)

    def init_state(self, inst: Instance, k: int) -> TSPState:
        batch, n, _ = inst["locs"].shape
        device = inst["locs"].device
        zeros = torch.zeros(batch, k, dtype=torch.long, device=device)
        visited = torch.zeros(batch, k, n, dtype=torch.bool, device=device)
        return TSPState(first=zeros, current=zeros, visited=visited, step=0)

    def context(self, state: TSPState) -> StepContext | None:
        if state.step == 0:
            return None
        return torch.stack((state.first, state.current), dim=-1), None

    def mask(self, state: TSPState) -> Tensor:
        return state.visited

    def step(self, state: TSPState, action: Tensor) -> TSPState:
        visited = state.visited.scatter(2, action.unsqueeze(-1), True)
        first = action if state.step == 0 else state.first
        return replace(state, first=first, current=action, visited=visited, step=state.step + 1)

    def finished(self, state: TSPState) -> bool:
        return state.step >= state.visited.shape[-1]

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        return tour_length(inst["locs"], tours)

    def check(self, inst: Instance, tours: Tensor) -> None:
        n = inst["locs"].shape[1]
        if tours.shape[-1] != n:
            raise ValueError(f"tours must visit all {n} nodes, got length {tours.shape[-1]}")
        expected = torch.arange(n, device=tours.device)
        if not bool((tours.sort(dim=-1).values == expected).all()):
            raise ValueError("tours must be permutations: every node exactly once")
