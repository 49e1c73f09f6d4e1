"""Capacitated vehicle routing (CVRP): serve every customer once, reload at the depot.

Node 0 is the depot, nodes ``1..n`` the customers. Demands are given as a
fraction of the vehicle capacity (the paper's integer demand 1..9 divided by
capacity 30 / 40 / 50 for n = 20 / 50 / 100; the capacity is then 1). A
solution is the sequence of nodes after leaving the depot; the route returns
to the depot at the end and whenever a 0 appears.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from problems.base import (
    Instance,
    StepContext,
    depot_node_features,
    distinct_starts,
    route_length,
    with_depot,
)

__all__ = ["CAPACITIES", "CVRP", "CVRPState"]

CAPACITIES = {10: 20.0, 20: 30.0, 50: 40.0, 100: 50.0}
"""Vehicle capacity by number of customers (Kool et al. 2019; Nazari et al. 2018)."""

_EPS = 1e-5  # demands are fractions of the capacity; sums may round


def capacity_for(size: int) -> float:
    """The paper's capacity for ``size`` customers (the nearest listed size otherwise)."""
    nearest = min(CAPACITIES, key=lambda s: abs(s - size))
    return CAPACITIES[nearest]


@dataclass(frozen=True)
class CVRPState:
    """``k`` partial routes per instance."""

    current: Tensor  # (B, k) current node (0 = depot)
    visited: Tensor  # (B, k, n + 1) bool, customers served (the depot column stays False)
    used: Tensor  # (B, k) capacity used on the current trip
    demand: Tensor  # (B, 1, n + 1) demand per node, 0 at the depot
    step: int


class CVRP:
    """CVRP with the conventions of Kool et al. (2019).

    Node features: ``(x, y, demand, is_depot)``. Context: the current node's
    embedding and the remaining capacity.
    """

    name = "cvrp"
    stochastic = False
    node_dim = 4
    context_nodes = 1  # the current node
    context_extra = 1
    coord_keys = ("depot", "locs")

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        cap = capacity_for(size)
        demand = torch.randint(1, 10, (num, size), generator=generator).float() / cap
        return {
            "depot": torch.rand(num, 2, generator=generator),
            "locs": torch.rand(num, size, 2, generator=generator),
            "demand": demand,
        }

    def node_features(self, inst: Instance) -> Tensor:
        return depot_node_features(inst, "demand")

    def max_starts(self, inst: Instance) -> int:
        return inst["demand"].shape[1]

    def starts(self, inst: Instance, num: int) -> Tensor:
        batch, n = inst["demand"].shape[:2]
        return distinct_starts(batch, n, num, inst["demand"].device, offset=1)

    def init_state(self, inst: Instance, k: int) -> CVRPState:
        batch, n = inst["demand"].shape
        device = inst["demand"].device
        return CVRPState(
            current=torch.zeros(batch, k, dtype=torch.long, device=device),
            visited=torch.zeros(batch, k, n + 1, dtype=torch.bool, device=device),
            used=torch.zeros(batch, k, device=device),
            demand=with_depot(inst["demand"])[:, None],
            step=0,
        )

    def context(self, state: CVRPState) -> StepContext:
        return state.current.unsqueeze(-1), (1.0 - state.used).unsqueeze(-1)

    def mask(self, state: CVRPState) -> Tensor:
        """Served customers, customers that do not fit, and the depot right after the depot
        while customers remain (so a rollout cannot idle)."""
        too_big = state.demand > (1.0 - state.used).unsqueeze(-1) + _EPS
        mask = state.visited | too_big
        customers_left = ~mask[..., 1:].all(dim=-1)
        mask[..., 0] = (state.current == 0) & customers_left
        return mask

    def step(self, state: CVRPState, action: Tensor) -> CVRPState:
        demand = state.demand.expand_as(state.visited).gather(2, action.unsqueeze(-1)).squeeze(-1)
        used = torch.where(action == 0, torch.zeros_like(state.used), state.used + demand)
        visited = state.visited.scatter(2, action.unsqueeze(-1), True)
        visited[..., 0] = False
        return replace(state, current=action, visited=visited, used=used, step=state.step + 1)

    def finished(self, state: CVRPState) -> bool:
        return bool(state.visited[..., 1:].all()) and bool((state.current == 0).all())

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        return route_length(inst, tours)

    def check(self, inst: Instance, tours: Tensor) -> None:
        """Every customer exactly once, no trip above capacity."""
        batch, n = inst["demand"].shape
        flat = tours.reshape(batch, -1, tours.shape[-1])
        for b in range(batch):
            for route in flat[b].tolist():
                customers = [c for c in route if c != 0]
                if sorted(customers) != list(range(1, n + 1)):
                    raise ValueError(f"instance {b}: every customer must be served exactly once")
                load = 0.0
                for node in route:
                    load = 0.0 if node == 0 else load + float(inst["demand"][b, node - 1])
                    if load > 1.0 + _EPS:
                        raise ValueError(f"instance {b}: a trip exceeds the vehicle capacity")
