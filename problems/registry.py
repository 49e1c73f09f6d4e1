"""Problem name -> class: the one place new problem families are registered."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from problems.base import RoutingProblem
from problems.cvrp import CVRP
from problems.op import OP
from problems.pctsp import PCTSP
from problems.sdvrp import SDVRP
from problems.tsp import TSP

PROBLEMS: dict[str, Callable[[], RoutingProblem]] = {
    "tsp": TSP,
    "cvrp": CVRP,
    "sdvrp": SDVRP,
    "op_const": partial(OP, "const"),
    "op_unif": partial(OP, "unif"),
    "op_dist": partial(OP, "dist"),
    "pctsp": PCTSP,
    "spctsp": partial(PCTSP, stochastic=True),
}
"""Problem name -> constructor."""


def make_problem(name: str) -> RoutingProblem:
    """An instance of the named problem."""
    try:
        return PROBLEMS[name]()
    except KeyError:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {name!r}") from None
