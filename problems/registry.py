"""Problem name -> class: the one place new problem families are registered."""

from __future__ import annotations

from problems.base import RoutingProblem
from problems.cvrp import CVRP
from problems.tsp import TSP

PROBLEMS: dict[str, type] = {"tsp": TSP, "cvrp": CVRP}
"""Problem name -> class."""


def make_problem(name: str) -> RoutingProblem:
    """An instance of the named problem."""
    try:
        return PROBLEMS[name]()
    except KeyError:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {name!r}") from None
