"""The solver API for every problem: caller's units in, routes, objective and feasibility out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems.model import AttentionModel, ModelConfig
from problems.registry import make_problem
from problems.solver import Solver
from tests.conftest import load_example

SMALL = ModelConfig(embed_dim=32, heads=4, layers=1, ff_dim=64)
RNG = np.random.default_rng(0)
VRP = dict(depot=[50.0, 50.0], locs=RNG.random((12, 2)) * 100, demand=RNG.integers(1, 10, 12),
           capacity=20)
OP = dict(depot=[0.0, 0.0], locs=RNG.random((12, 2)) * 10, prize=RNG.random(12), max_length=25.0)
PC = dict(depot=[0.0, 0.0], locs=RNG.random((12, 2)), prize=RNG.random(12) * 0.3,
          penalty=RNG.random(12) * 0.5)


def solver(name: str) -> Solver:
    torch.manual_seed(0)
    return Solver(AttentionModel(make_problem(name), SMALL), size=12)


def test_vrp_routes_are_trips_in_the_callers_units() -> None:
    res = solver("cvrp").solve(VRP, decode="multistart", augment=2)
    assert res.feasible.all()
    trips = res.routes[0]
    assert sorted(c for trip in trips for c in trip) == list(range(12))
    for trip in trips:
        assert sum(VRP["demand"][c] for c in trip) <= 20
    pts = np.vstack((VRP["depot"], VRP["locs"]))
    length = sum(np.linalg.norm(np.diff(pts[[0, *[c + 1 for c in trip], 0]], axis=0), axis=1).sum()
                 for trip in trips)
    assert res.costs[0] == pytest.approx(length, rel=1e-9)


def test_sdvrp_reports_delivered_amounts() -> None:
    res = solver("sdvrp").solve(**VRP)
    assert res.feasible.all()
    delivered = np.zeros(12)
    for trip, amounts in zip(res.routes[0], res.delivered[0], strict=True):
        assert sum(amounts) <= 20 + 1e-9
        for c, a in zip(trip, amounts, strict=True):
            delivered[c] += a
    np.testing.assert_allclose(delivered, VRP["demand"], atol=1e-6)


def test_op_objective_is_the_collected_prize_within_the_length() -> None:
    res = solver("op_dist").solve(OP, decode="sample", samples=8)
    visited = res.routes[0]
    assert res.feasible.all() and len(set(visited)) == len(visited)
    assert res.costs[0] == pytest.approx(OP["prize"][visited].sum(), rel=1e-9)
    pts = np.vstack((OP["depot"], OP["locs"]))
    leg = [0, *[v + 1 for v in visited], 0]
    assert np.linalg.norm(np.diff(pts[leg], axis=0), axis=1).sum() <= 25.0 + 1e-6


def test_pctsp_collects_the_minimum_prize_or_visits_everything() -> None:
    for name in ("pctsp", "spctsp"):
        res = solver(name).solve(PC)
        visited = res.routes[0]
        assert res.feasible.all()
        assert PC["prize"][visited].sum() >= 1 - 1e-6 or len(visited) == 12


def test_a_batch_and_scalars_broadcast() -> None:
    batch = dict(depot=np.zeros((3, 2)), locs=RNG.random((3, 12, 2)),
                 demand=RNG.integers(1, 10, (3, 12)), capacity=[20, 30, 40])
    res = solver("cvrp").solve(batch)
    assert res.tours.shape[0] == 3 and res.costs.shape == (3,) and res.feasible.all()


def test_plot_draws_trips(tmp_path) -> None:
    s = solver("cvrp")
    res = s.solve(VRP)
    s.plot(VRP, res.tours[0], tmp_path / "cvrp.png")
    assert (tmp_path / "cvrp.png").stat().st_size > 1000


@pytest.mark.parametrize("name,data,message", [
    ("cvrp", dict(VRP, demand=np.full(12, 25)), "exceed capacity"),
    ("cvrp", dict(VRP, demand=np.ones(11)), "demand must have one value per location"),
    ("cvrp", dict(VRP, capacity=-1), "capacity"),
    ("cvrp", {k: v for k, v in VRP.items() if k != "depot"}, "depot is required"),
    ("op_dist", dict(OP, prize=-np.ones(12)), "prize must be >= 0"),
    ("op_dist", dict(OP, max_length=0.001), "too short to leave the depot"),
    ("pctsp", dict(PC, penalty=-np.ones(12)), "penalty must be >= 0"),
    ("pctsp", dict(PC, locs=np.full((12, 2), np.nan)), "NaN or inf"),
])
def test_bad_input_names_the_problem(name, data, message) -> None:
    with pytest.raises(ValueError, match=message):
        solver(name).solve(data)


def test_wrong_kind_of_input() -> None:
    with pytest.raises(TypeError, match="dict or keyword"):
        solver("cvrp").solve(np.random.rand(5, 2))
    with pytest.raises(TypeError, match="unexpected arguments"):
        solver("cvrp").solve(VRP, prize=np.ones(12))
    with pytest.raises(ValueError, match="improve"):
        solver("cvrp").solve(VRP, improve="2opt")


def test_solve_routing_example_draws_every_model(tmp_path, monkeypatch, capsys) -> None:
    example = load_example("solve_routing")
    monkeypatch.setattr("sys.argv", ["solve_routing.py", "--out", str(tmp_path)])
    example.main()
    printed = capsys.readouterr().out
    assert printed.count("feasible True") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cvrp20_routes.png", "op_dist20_routes.png", "pctsp20_routes.png"]
