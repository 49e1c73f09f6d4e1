"""Optional reference solvers: LKH-3 (elkai), HGS (PyVRP) and OR-Tools routing.

Problems with a depot take ``depot (B, 2)`` and ``locs (B, n, 2)`` and return
node sequences with 0 for the depot and ``i`` for ``locs[i - 1]``, as the
model does; CVRP demands are integers with an integer ``capacity``.

They are slow but strong, and serve to measure gaps. Both need the
``reference`` extra (``pip install -e '.[reference]'``); without it a clear
``ImportError`` names the extra.
"""

from __future__ import annotations

import numpy as np

from problems.heuristics import _batch

__all__ = ["lkh_tsp", "ortools_cvrp", "ortools_op", "ortools_pctsp", "ortools_tsp", "pyvrp_cvrp"]

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


def _scaled_dist(pts: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Integer distance matrix of ``pts`` rescaled so the extent is ``scale``; and the factor."""
    factor = scale / (float(np.ptp(pts, axis=0).max()) or 1.0)
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) * factor
    return np.rint(dist).astype(np.int64), factor


def _depot_points(depot: np.ndarray, locs: np.ndarray) -> np.ndarray:
    c, _ = _batch(locs)
    d = np.asarray(depot, dtype=np.float64).reshape(-1, 1, 2)
    return np.concatenate((np.broadcast_to(d, (c.shape[0], 1, 2)), c), axis=1)


def _pad(seqs: list[list[int]]) -> np.ndarray:
    width = max(len(s) for s in seqs) or 1
    return np.array([s + [0] * (width - len(s)) for s in seqs], dtype=np.int64)


def pyvrp_cvrp(depot: np.ndarray, locs: np.ndarray, demand: np.ndarray, capacity: int,
               time_limit: float = 1.0, scale: float = 1e5, seed: int = 0) -> np.ndarray:
    """HGS (PyVRP) for CVRP with ``time_limit`` seconds per instance; demands and capacity
    are integers."""
    pyvrp = _require("pyvrp")
    from pyvrp.stop import MaxRuntime

    pts = _depot_points(depot, locs)
    dem = np.asarray(demand).reshape(pts.shape[0], -1)
    seqs = []
    for inst, q in zip(pts, dem, strict=True):
        dist, _ = _scaled_dist(inst, scale)
        model = pyvrp.Model()
        model.add_vehicle_type(num_available=len(q), capacity=int(capacity))
        nodes = [model.add_location(float(x), float(y)) for x, y in inst]
        model.add_depot(nodes[0])
        for node, amount in zip(nodes[1:], q, strict=True):
            model.add_client(node, delivery=int(amount))
        for i, a in enumerate(nodes):
            for j, b in enumerate(nodes):
                model.add_edge(a, b, int(dist[i, j]))
        best = model.solve(stop=MaxRuntime(time_limit), seed=seed, display=False).best
        seq: list[int] = []
        for route in best.routes():
            seq += [act.idx + 1 for act in route if act.is_client()] + [0]  # clients are 0-based
        seqs.append(seq)
    return _pad(seqs)


def _ortools_route(dist: np.ndarray, time_limit: float, configure) -> list[int]:  # noqa: ANN001
    """Solve a one-vehicle OR-Tools routing model (``configure`` adds the problem's
    constraints) and return the visited nodes after the depot."""
    _require("ortools")
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    manager = pywrapcp.RoutingIndexManager(len(dist), configure.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)
    configure(routing, manager)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(1000 * time_limit))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        raise RuntimeError("OR-Tools found no solution within the time limit")
    seq: list[int] = []
    for v in range(configure.vehicles):
        index = solution.Value(routing.NextVar(routing.Start(v)))
        trip = []
        while not routing.IsEnd(index):
            trip.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        if trip:
            seq += trip + [0]
    return seq


class _Setup:
    """Callable that adds a problem's costs and constraints to an OR-Tools model."""

    def __init__(self, dist: np.ndarray, vehicles: int = 1, **data: np.ndarray) -> None:
        self.dist, self.vehicles, self.data = dist, vehicles, data

    def transit(self, routing, manager, values: np.ndarray) -> int:  # noqa: ANN001
        def cb(i: int, j: int) -> int:
            return int(values[manager.IndexToNode(i), manager.IndexToNode(j)])

        return routing.RegisterTransitCallback(cb)

    def unary(self, routing, manager, values: np.ndarray) -> int:  # noqa: ANN001
        def cb(i: int) -> int:
            return int(values[manager.IndexToNode(i)])

        return routing.RegisterUnaryTransitCallback(cb)


class _CVRPSetup(_Setup):
    def __call__(self, routing, manager) -> None:  # noqa: ANN001
        routing.SetArcCostEvaluatorOfAllVehicles(self.transit(routing, manager, self.dist))
        demand = np.concatenate(([0], self.data["demand"]))
        routing.AddDimensionWithVehicleCapacity(
            self.unary(routing, manager, demand), 0, [int(self.data["capacity"])] * self.vehicles,
            True, "load")


class _OPSetup(_Setup):
    def __call__(self, routing, manager) -> None:  # noqa: ANN001
        # Maximise the prize: dropping a node costs its (scaled) prize; a tiny arc cost
        # breaks ties towards shorter tours.
        routing.SetArcCostEvaluatorOfAllVehicles(self.transit(routing, manager, self.dist // 1000))
        for node, prize in enumerate(self.data["prize"], start=1):
            routing.AddDisjunction([manager.NodeToIndex(node)], int(prize))
        routing.AddDimension(self.transit(routing, manager, self.dist), 0,
                             int(self.data["max_length"]), True, "length")


class _PCTSPSetup(_Setup):
    def __call__(self, routing, manager) -> None:  # noqa: ANN001
        routing.SetArcCostEvaluatorOfAllVehicles(self.transit(routing, manager, self.dist))
        for node, penalty in enumerate(self.data["penalty"], start=1):
            routing.AddDisjunction([manager.NodeToIndex(node)], int(penalty))
        prize = np.concatenate(([0], self.data["prize"]))
        routing.AddDimension(self.unary(routing, manager, prize), 0, int(prize.sum()) + 1, True,
                             "prize")
        routing.GetDimensionOrDie("prize").CumulVar(routing.End(0)).SetMin(
            min(int(self.data["min_prize"]), int(prize.sum())))


def ortools_cvrp(depot: np.ndarray, locs: np.ndarray, demand: np.ndarray, capacity: int,
                 time_limit: float = 1.0, scale: float = 1e5) -> np.ndarray:
    """OR-Tools routing for CVRP (guided local search); integer demands and capacity."""
    pts = _depot_points(depot, locs)
    dem = np.asarray(demand).reshape(pts.shape[0], -1).astype(np.int64)
    return _pad([_ortools_route(_scaled_dist(p, scale)[0], time_limit,
                                _CVRPSetup(_scaled_dist(p, scale)[0], vehicles=len(q), demand=q,
                                           capacity=np.int64(capacity)))
                 for p, q in zip(pts, dem, strict=True)])


def ortools_op(depot: np.ndarray, locs: np.ndarray, prize: np.ndarray, max_length: np.ndarray,
               time_limit: float = 1.0, scale: float = 1e5) -> np.ndarray:
    """OR-Tools routing for OP: optional nodes worth their prize, a length dimension."""
    pts = _depot_points(depot, locs)
    pr = np.asarray(prize, dtype=np.float64).reshape(pts.shape[0], -1)
    limit = np.broadcast_to(np.asarray(max_length, dtype=np.float64).reshape(-1), (pts.shape[0],))
    seqs = []
    for p, q, m in zip(pts, pr, limit, strict=True):
        dist, factor = _scaled_dist(p, scale)
        # floor the limit so rounding never admits a tour longer than max_length
        setup = _OPSetup(dist, prize=np.rint(q * 1e6), max_length=np.floor(m * factor) - len(p))
        seqs.append(_ortools_route(dist, time_limit, setup))
    return _pad(seqs)


def ortools_pctsp(depot: np.ndarray, locs: np.ndarray, prize: np.ndarray, penalty: np.ndarray,
                  min_prize: float = 1.0, time_limit: float = 1.0, scale: float = 1e5) -> np.ndarray:
    """OR-Tools routing for PCTSP: optional nodes cost their penalty; collect ``min_prize``."""
    pts = _depot_points(depot, locs)
    pr = np.asarray(prize, dtype=np.float64).reshape(pts.shape[0], -1)
    pen = np.asarray(penalty, dtype=np.float64).reshape(pts.shape[0], -1)
    seqs = []
    for p, q, r in zip(pts, pr, pen, strict=True):
        dist, factor = _scaled_dist(p, scale)
        setup = _PCTSPSetup(dist, prize=np.floor(q * 1e6), penalty=np.rint(r * factor),
                            min_prize=np.ceil(min_prize * 1e6))
        seqs.append(_ortools_route(dist, time_limit, setup))
    return _pad(seqs)
