"""Optional reference solvers: LKH-3 (through elkai) and OR-Tools routing.

They are slow but strong, and serve to measure gaps. Both need the
``reference`` extra (``pip install -e '.[reference]'``); without it a clear
``ImportError`` names the extra.
"""

from __future__ import annotations

import numpy as np

from problems.heuristics import _batch

__all__ = ["lkh_tsp", "ortools_tsp"]

_EXTRA = "install the optional reference solvers with: pip install -e '.[reference]'"


def _require(module: str):  # noqa: ANN202 - returns a module
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(f"{module} is not installed; {_EXTRA}") from err


def lkh_tsp(coords: np.ndarray, runs: int = 1, scale: float = 1e6) -> np.ndarray:
    """LKH-3 tours for ``(n, 2)`` or ``(B, n, 2)`` coordinates.

    LKH works on integer EUC_2D distances, so coordinates are shifted to 0 and
    multiplied by ``scale / extent`` first (rounding errors of 1e-6 of the extent).

    Args:
        coords: coordinates in any units.
        runs: LKH runs per instance (more is slower and rarely better for n <= 100).
        scale: integer resolution of the rescaled coordinates.
    """
    elkai = _require("elkai")
    c, single = _batch(coords)
    tours = []
    for inst in c:
        shifted = inst - inst.min(axis=0)
        extent = float(shifted.max()) or 1.0
        pts = shifted * (scale / extent)
        problem = elkai.Coordinates2D({i: (float(x), float(y)) for i, (x, y) in enumerate(pts)})
        tour = problem.solve_tsp(runs=runs)[:-1]  # elkai repeats the first city at the end
        tours.append(np.asarray(tour, dtype=np.int64))
    out = np.stack(tours)
    return out[0] if single else out


def ortools_tsp(coords: np.ndarray, time_limit: float = 1.0, scale: float = 1e6) -> np.ndarray:
    """OR-Tools routing (guided local search, ``time_limit`` seconds per instance)."""
    _require("ortools")
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    c, single = _batch(coords)
    tours = []
    for inst in c:
        n = len(inst)
        extent = float(np.ptp(inst, axis=0).max()) or 1.0
        dist = np.sqrt(((inst[:, None] - inst[None]) ** 2).sum(-1)) * (scale / extent)
        dist = np.rint(dist).astype(np.int64)
        manager = pywrapcp.RoutingIndexManager(n, 1, 0)
        routing = pywrapcp.RoutingModel(manager)

        def arc(i: int, j: int, dist=dist, manager=manager) -> int:
            return int(dist[manager.IndexToNode(i), manager.IndexToNode(j)])

        routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(arc))
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        )
        params.time_limit.FromMilliseconds(int(1000 * time_limit))
        solution = routing.SolveWithParameters(params)
        index, tour = routing.Start(0), []
        while not routing.IsEnd(index):
            tour.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        tours.append(np.asarray(tour, dtype=np.int64))
    out = np.stack(tours)
    return out[0] if single else out
