"""Orienteering (OP): collect as much prize as possible on a tour of bounded length.

Node 0 is the depot. The tour starts there and ends on its first return; its
length, back to the depot, may not exceed ``max_length`` (2 / 3 / 4 for
n = 20 / 50 / 100). The objective is the total prize collected (maximised), so
:meth:`OP.cost` returns its negative.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from problems.base import (
    Instance,
    StepContext,
    depot_locs,
    depot_node_features,
    gather_nodes,
    route_length,
    with_depot,
)

__all__ = ["MAX_LENGTHS", "OP", "OPState", "max_length_for", "op_prizes"]

MAX_LENGTHS = {20: 2.0, 50: 3.0, 100: 4.0}
"""Tour length limit by number of nodes (Kool et al. 2019)."""

PRIZE_TYPES = ("const", "unif", "dist")
_EPS = 1e-5


def max_length_for(size: int) -> float:
    """The paper's length limit for ``size`` nodes (the nearest listed size otherwise)."""
    return MAX_LENGTHS[min(MAX_LENGTHS, key=lambda s: abs(s - size))]


def op_prizes(kind: str, depot: Tensor, locs: Tensor, unif: Tensor) -> Tensor:
    """The paper's prizes: ``const`` 1; ``unif`` (1 + U{0..99}) / 100 (``unif`` holds the
    integer draws); ``dist`` (1 + int(99 * d0i / max_j d0j)) / 100."""
    if kind == "const":
        return torch.ones(locs.shape[:2])
    if kind == "unif":
        return (1.0 + unif) / 100.0
    if kind == "dist":
        d = (depot.unsqueeze(1) - locs).norm(dim=-1)
        return (1.0 + torch.floor(d / d.amax(dim=1, keepdim=True) * 99.0)) / 100.0
    raise ValueError(f"prize must be one of {PRIZE_TYPES}, got {kind!r}")


@dataclass(frozen=True)
class OPState:
    current: Tensor  # (B, k)
    visited: Tensor  # (B, k, n + 1) bool
    length: Tensor  # (B, k) length travelled so far
    done: Tensor  # (B, k) bool: back at the depot
    locs: Tensor  # (B, n + 1, 2) all nodes, for distances
    max_length: Tensor  # (B, 1)
    step: int


class OP:
    """OP with the conventions of Kool et al. (2019).

    Node features ``(x, y, prize, is_depot)``; context: the current node's
    embedding and the remaining length budget.

    Args:
        prize: ``"const"``, ``"unif"`` or ``"dist"`` (how :meth:`generate` draws prizes).
    """

    node_dim = 4
    context_nodes = 1  # the current node
    context_extra = 1
    stochastic = False
    coord_keys = ("depot", "locs")

    def __init__(self, prize: str = "dist") -> None:
        if prize not in PRIZE_TYPES:
            raise ValueError(f"prize must be one of {PRIZE_TYPES}, got {prize!r}")
        self.prize = prize
        self.name = f"op_{prize}"

    def generate(self, num: int, size: int, generator: torch.Generator | None = None) -> Instance:
        depot = torch.rand(num, 2, generator=generator)
        locs = torch.rand(num, size, 2, generator=generator)
        unif = torch.randint(0, 100, (num, size), generator=generator).float()
        return {
            "depot": depot,
            "locs": locs,
            "prize": op_prizes(self.prize, depot, locs, unif),
            "max_length": torch.full((num,), max_length_for(size)),
        }

    def node_features(self, inst: Instance) -> Tensor:
        return depot_node_features(inst, "prize")

    def max_starts(self, inst: Instance) -> int:
        return inst["prize"].shape[1]

    def starts(self, inst: Instance, num: int) -> Tensor:
        """Distinct first nodes, taken from those reachable within the length limit."""
        batch, n = inst["prize"].shape
        if not 1 <= num <= n:
            raise ValueError(f"num must be in [1, {n}] starts for {n} nodes, got {num}")
        d0 = (inst["locs"] - inst["depot"].unsqueeze(1)).norm(dim=-1)
        reachable = 2 * d0 <= inst["max_length"].unsqueeze(1) - _EPS
        # Reachable nodes first (randomly ordered among themselves); if fewer than num
        # are reachable, the surplus starts repeat the depot, i.e. an empty tour.
        key = torch.rand(batch, n, device=d0.device) - reachable.float()
        order = key.argsort(dim=1)[:, :num]
        ok = reachable.gather(1, order)
        return torch.where(ok, order + 1, torch.zeros_like(order))

    def init_state(self, inst: Instance, k: int) -> OPState:
        batch, n = inst["prize"].shape
        device = inst["prize"].device
        return OPState(
            current=torch.zeros(batch, k, dtype=torch.long, device=device),
            visited=torch.zeros(batch, k, n + 1, dtype=torch.bool, device=device),
            length=torch.zeros(batch, k, device=device),
            done=torch.zeros(batch, k, dtype=torch.bool, device=device),
            locs=depot_locs(inst),
            max_length=inst["max_length"].unsqueeze(1),
            step=0,
        )

    def context(self, state: OPState) -> StepContext:
        return state.current.unsqueeze(-1), (state.max_length - state.length).unsqueeze(-1)

    def mask(self, state: OPState) -> Tensor:
        """Visited nodes and nodes from which the depot is out of reach; after the
        return to the depot only the depot remains."""
        here = gather_nodes(state.locs, state.current)  # (B, k, 2)
        to_node = (state.locs.unsqueeze(1) - here.unsqueeze(2)).norm(dim=-1)  # (B, k, n + 1)
        back = (state.locs - state.locs[:, :1]).norm(dim=-1).unsqueeze(1)  # (B, 1, n + 1)
        too_far = state.length.unsqueeze(-1) + to_node + back > state.max_length.unsqueeze(-1) - _EPS
        mask = state.visited | too_far | state.done.unsqueeze(-1)
        mask[..., 0] = False
        return mask

    def step(self, state: OPState, action: Tensor) -> OPState:
        here = gather_nodes(state.locs, state.current)
        there = gather_nodes(state.locs, action)
        visited = state.visited.scatter(2, action.unsqueeze(-1), True)
        return replace(
            state,
            current=action,
            visited=visited,
            length=state.length + (there - here).norm(dim=-1),
            done=state.done | (action == 0),
            step=state.step + 1,
        )

    def finished(self, state: OPState) -> bool:
        return bool(state.done.all())

    def cost(self, inst: Instance, tours: Tensor) -> Tensor:
        """Negative collected prize (the depot and repeated depot visits collect nothing)."""
        prize = with_depot(inst["prize"])
        flat = tours.reshape(tours.shape[0], -1)
        collected = prize.gather(1, flat).view(tours.shape).sum(dim=-1)
        return -collected

    def length(self, inst: Instance, tours: Tensor) -> Tensor:
        """Closed tour length from the depot, ``(B, k)``."""
        return route_length(inst, tours)

    def check(self, inst: Instance, tours: Tensor) -> None:
        """Nodes at most once before the return, length within the limit."""
        length = self.length(inst, tours)
        if bool((length > inst["max_length"].view(-1, *([1] * (length.dim() - 1))) + _EPS).any()):
            raise ValueError("a tour exceeds max_length")
        flat = tours.reshape(-1, tours.shape[-1]).tolist()
        for route in flat:
            end = route.index(0) if 0 in route else len(route)
            nodes = route[:end]
            if len(set(nodes)) != len(nodes):
                raise ValueError("a node is visited twice")
            if any(node != 0 for node in route[end:]):
                raise ValueError("a tour continues after returning to the depot")
