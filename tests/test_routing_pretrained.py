"""Every shipped checkpoint loads and solves instances of its size near the reference cost."""

from __future__ import annotations

import numpy as np
import pytest

from problems import load_solver, pretrained_names
from problems.data import TEST_SEED, paper_dataset
from tests.conftest import ROOT

REFERENCE = ROOT / "benchmarks" / "reference"


def test_something_is_shipped() -> None:
    assert "tsp20" in pretrained_names()


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_model_is_close_to_the_reference(name) -> None:
    solver = load_solver(name)
    problem, size = solver.problem.name, solver.size
    inst = paper_dataset(problem, 20, size, TEST_SEED)
    ref_file = next(REFERENCE.glob(f"{problem}{size}_seed{TEST_SEED}_*.npz"))
    with np.load(ref_file) as data:
        reference = data["costs"][:20]  # LKH-3 costs of the same 20 test instances
    res = solver.solve(inst["locs"].double().numpy(), decode="greedy")
    assert res.feasible.all()
    assert res.costs.mean() <= 1.10 * reference.mean()  # loose: the shipped models are far better
    assert res.costs.mean() >= reference.mean() * (1 - 1e-6)  # nothing beats LKH-3 on average here
