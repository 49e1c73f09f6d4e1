"""Split-delivery vehicle routing (SDVRP): CVRP where a customer may be served over several visits.

Each visit delivers as much of the customer's remaining demand as the vehicle
still carries. The remaining demand is a dynamic node feature: the model adds
a projection of it to the glimpse and pointer keys at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from problems.base import Instance, StepContext, with_depot
from problems.cvrp import CVRP

__all__ = ["SDVRP", "SDVRPState", "deliveries"]

_EPS = 1e-5


@dataclass(frozen=True)
class SDVRPState:
    current: Tensor  # (B, k)
    remaining: Tensor  # (B, k, n + 1) demand still to deliver (0 at the depot)
    used: Tensor  # (B, k) load delivered on the current trip
    step: int


def deliveries(demand: Tensor, tours: Tensor) -> Tensor:
    """Amount delivered at each step of ``(B, k, T)`` tours for ``(B, n)`` demands.

    Each visit delivers ``min(remaining demand, remaining capacity)``; the depot
    refills the vehicle (capacity 1).
    """
    batch, k, steps = tours.shape
    remaining = with_depot(demand)[:, None].repeat(1, k, 1)
    used = torch.zeros(batch, k, dtype=demand.dtype, device=demand.device)
    out = torch.zeros(batch, k, steps, dtype=demand.dtype, device=demand.device)
    for t in range(steps):
        node = tours[..., t]
        amount = torch.minimum(remaining.gather(2, node.unsqueeze(-1)).squeeze(-1), 1.0 - used)
        amount = torch.where(node == 0, torch.zeros_like(amount), amount.clamp_min(0.0))
        out[..., t] = amount
        remaining = remaining.scatter_add(2, node.unsqueeze(-1), -amount.unsqueeze(-1))
        used = torch.where(node == 0, torch.zeros_like(used), used + amount)
    return out


class SDVRP:
    """SDVRP with the conventions of Kool et al. (2019); instances as :class:`~problems.cvrp.CVRP`."""

    name = "sdvrp"
    stochastic = False
    node_dim = 4
    context_nodes = 1  # the current node
    context_extra = 1
    dynamic_dim = 1
    coord_keys = ("depot", "locs")

    def __init__(self) -> None:
        self._cvrp = CVRP()  # same instances, features, starts and tour cost

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        return self._cvrp.generate(num, size, generator)

    def node_features(self, inst: Instance) -> Tensor:
        return self._cvrp.node_features(inst)

    def max_starts(self, inst: Instance) -> int:
        return self._cvrp.max_starts(inst)

    def starts(self, inst: Instance, num: int) -> Tensor:
        return self._cvrp.starts(inst, num)

    def init_state(self, inst: Instance, k: int) -> SDVRPState:
        demand = with_depot(inst["demand"])
        batch = demand.shape[0]
        return SDVRPState(
            current=torch.zeros(batch, k, dtype=torch.long, device=demand.device),
            remaining=demand.unsqueeze(1).repeat(1, k, 1),
            used=torch.zeros(batch, k, device=demand.device),
            step=0,
        )

    def dynamic(self, state: SDVRPState) -> Tensor:
        """``(B, k, n + 1, 1)`` remaining demand per node."""
        return state.remaining.unsqueeze(-1)

    def context(self, state: SDVRPState) -> StepContext:
        return state.current.unsqueeze(-1), (1.0 - state.used).unsqueeze(-1)

    def mask(self, state: SDVRPState) -> Tensor:
        """Customers with nothing left, every customer when the vehicle is empty, and the
        depot right after the depot while demand remains."""
        served = state.remaining <= _EPS
        empty = (state.used >= 1.0 - _EPS).unsqueeze(-1)
        mask = served | empty
        demand_left = ~served[..., 1:].all(dim=-1)
        mask[..., 0] = (state.current == 0) & demand_left
        return mask

    def step(self, state: SDVRPState, action: Tensor) -> SDVRPState:
        here = state.remaining.gather(2, action.unsqueeze(-1)).squeeze(-1)
        amount = torch.minimum(here, 1.0 - state.used).clamp_min(0.0)
        amount = torch.where(action == 0, torch.zeros_like(amount), amount)
        remaining = state.remaining.scatter_add(2, action.unsqueeze(-1), -amount.unsqueeze(-1))
        used = torch.where(action == 0, torch.zeros_like(state.used), state.used + amount)
        return replace(state, current=action, remaining=remaining, used=used, step=state.step + 1)

    def finished(self, state: SDVRPState) -> bool:
        return bool((state.remaining[..., 1:] <= _EPS).all()) and bool((state.current == 0).all())

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        return self._cvrp.cost(inst, tours)

    def check(self, inst: Instance, tours: Tensor) -> None:
        """Every customer's demand fully delivered; no trip above capacity (by construction
        of :func:`deliveries`, which never loads more than the vehicle holds)."""
        flat = tours.reshape(tours.shape[0], -1, tours.shape[-1])
        delivered = deliveries(inst["demand"], flat)
        per_node = torch.zeros(*flat.shape[:2], inst["demand"].shape[1] + 1,
                               dtype=delivered.dtype, device=delivered.device)
        per_node = per_node.scatter_add(2, flat, delivered)[..., 1:]
        if bool(((per_node - inst["demand"].unsqueeze(1)).abs() > _EPS).any()):
            raise ValueError("every customer's demand must be fully delivered")
