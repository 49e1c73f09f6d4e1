"""Prize-collecting TSP (PCTSP) and its stochastic variant (SPCTSP).

Node 0 is the depot. The tour starts there and ends on its first return; it
must collect a total prize of at least 1 before returning, unless it visits
every node. Cost = tour length + the penalties of the nodes left out.

In SPCTSP each node's real prize is only revealed on visiting it (uniform on
``[0, 2 * expected]``): the policy sees expected prizes, and the prize still
to collect is updated with the real ones as they are revealed.
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
from problems.op import max_length_for

__all__ = ["PCTSP", "PCTSPState"]

PENALTY_FACTOR = 3.0
_EPS = 1e-5


@dataclass(frozen=True)
class PCTSPState:
    current: Tensor  # (B, k)
    visited: Tensor  # (B, k, n + 1) bool
    collected: Tensor  # (B, k) real prize collected so far
    done: Tensor  # (B, k) bool: back at the depot
    real_prize: Tensor  # (B, 1, n + 1) what a visit actually yields
    step: int


class PCTSP:
    """PCTSP (``stochastic=False``) or SPCTSP (``stochastic=True``), as in Kool et al. (2019).

    Node features ``(x, y, expected prize, penalty, is_depot)``; context: the
    current node's embedding and the prize still to collect.
    """

    node_dim = 5
    context_nodes = 1  # the current node
    context_extra = 1
    coord_keys = ("depot", "locs")

    def __init__(self, stochastic: bool = False) -> None:
        self.stochastic = stochastic
        self.name = "spctsp" if stochastic else "pctsp"

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        """Penalty ~ U(0, 3K/n) with K the OP length limit; prize ~ U(0, 4/n); the real
        prize ~ U(0, 2 * prize) (equal to the prize for PCTSP)."""
        depot = torch.rand(num, 2, generator=generator)
        locs = torch.rand(num, size, 2, generator=generator)
        penalty = torch.rand(num, size, generator=generator) * (
            max_length_for(size) * PENALTY_FACTOR / size)
        prize = torch.rand(num, size, generator=generator) * 4.0 / size
        real = torch.rand(num, size, generator=generator) * prize * 2.0
        return {"depot": depot, "locs": locs, "penalty": penalty, "prize": prize,
                "real_prize": real if self.stochastic else prize}

    def node_features(self, inst: Instance) -> Tensor:
        return depot_node_features(inst, "prize", "penalty")

    def max_starts(self, inst: Instance) -> int:
        return inst["prize"].shape[1]

    def starts(self, inst: Instance, num: int) -> Tensor:
        batch, n = inst["prize"].shape[:2]
        return distinct_starts(batch, n, num, inst["prize"].device, offset=1)

    def init_state(self, inst: Instance, k: int) -> PCTSPState:
        batch, n = inst["prize"].shape
        device = inst["prize"].device
        return PCTSPState(
            current=torch.zeros(batch, k, dtype=torch.long, device=device),
            visited=torch.zeros(batch, k, n + 1, dtype=torch.bool, device=device),
            collected=torch.zeros(batch, k, device=device),
            done=torch.zeros(batch, k, dtype=torch.bool, device=device),
            real_prize=with_depot(inst["real_prize"]).unsqueeze(1),
            step=0,
        )

    def context(self, state: PCTSPState) -> StepContext:
        return state.current.unsqueeze(-1), (1.0 - state.collected).clamp_min(0.0).unsqueeze(-1)

    def mask(self, state: PCTSPState) -> Tensor:
        """Visited nodes; the depot until the prize is reached (or every node is visited);
        after the return only the depot."""
        mask = state.visited | state.done.unsqueeze(-1)
        all_visited = state.visited[..., 1:].all(dim=-1)
        may_return = (state.collected >= 1.0 - _EPS) | all_visited | state.done
        mask[..., 0] = ~may_return
        return mask

    def step(self, state: PCTSPState, action: Tensor) -> PCTSPState:
        gained = state.real_prize.expand_as(state.visited).gather(2, action.unsqueeze(-1))
        return replace(
            state,
            current=action,
            visited=state.visited.scatter(2, action.unsqueeze(-1), True),
            collected=state.collected + gained.squeeze(-1),
            done=state.done | (action == 0),
            step=state.step + 1,
        )

    def finished(self, state: PCTSPState) -> bool:
        return bool(state.done.all())

    def _visited(self, inst: Instance, tours: Tensor) -> Tensor:
        n = inst["prize"].shape[1]
        flat = tours.reshape(tours.shape[0], -1, tours.shape[-1])
        seen = torch.zeros(*flat.shape[:2], n + 1, dtype=torch.bool, device=tours.device)
        return seen.scatter(2, flat, True)[..., 1:].view(*tours.shape[:-1], n)

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        """Tour length plus the penalties of unvisited nodes, ``(B, k)``."""
        length = route_length(inst, tours)
        penalty = inst["penalty"].view(inst["penalty"].shape[0], *([1] * (tours.dim() - 2)), -1)
        missed = (~self._visited(inst, tours)).to(penalty.dtype) * penalty
        return length + missed.sum(dim=-1)

    def check(self, inst: Instance, tours: Tensor) -> None:
        """Nodes at most once; real prize >= 1 collected unless every node is visited."""
        visited = self._visited(inst, tours)
        real = inst["real_prize"].view(inst["real_prize"].shape[0], *([1] * (tours.dim() - 2)), -1)
        collected = (visited.to(real.dtype) * real).sum(dim=-1)
        if bool(((collected < 1.0 - _EPS) & ~visited.all(dim=-1)).any()):
            raise ValueError("a tour returns before collecting a prize of 1 without visiting all nodes")
        for route in tours.reshape(-1, tours.shape[-1]).tolist():
            end = route.index(0) if 0 in route else len(route)
            if len(set(route[:end])) != end or any(node != 0 for node in route[end:]):
                raise ValueError("a node is visited twice or the tour continues after the depot")
