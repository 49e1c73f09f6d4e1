"""Heuristics and reference solvers for the problems with a depot give feasible solutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems.data import paper_dataset
from problems.heuristics import greedy_insertion_op, greedy_insertion_pctsp, savings
from problems.registry import make_problem


def feasible_cost(name: str, inst, seqs: np.ndarray) -> np.ndarray:
    tours = torch.from_numpy(seqs).unsqueeze(1)
    make_problem(name).check(inst, tours)
    return make_problem(name).cost(inst, tours)[:, 0].numpy()


def test_savings_by_hand_and_on_random_instances() -> None:
    # Two customers on opposite sides: merging saves nothing, so two trips stay apart;
    # two customers next to each other that fit together are merged.
    depot = np.zeros((1, 2))
    apart = savings(depot, np.array([[[1.0, 0.0], [-1.0, 0.0]]]), np.array([[0.5, 0.5]]))
    assert sorted(s for s in apart[0].tolist() if s) == [1, 2] and apart[0].tolist().count(0) >= 2
    close = savings(depot, np.array([[[1.0, 0.0], [1.0, 0.1]]]), np.array([[0.5, 0.5]]))
    assert close[0].tolist()[:3] in ([1, 2, 0], [2, 1, 0])
    full = savings(depot, np.array([[[1.0, 0.0], [1.0, 0.1]]]), np.array([[0.6, 0.5]]))
    assert full[0].tolist().count(0) >= 2  # 0.6 + 0.5 > 1: no merge
    inst = paper_dataset("cvrp", 20, 20, 1234)
    costs = feasible_cost("cvrp", inst, savings(inst["depot"].numpy(), inst["locs"].numpy(),
                                               inst["demand"].numpy()))
    assert 5.0 < costs.mean() < 8.0  # the paper's best known CVRP20 mean is 6.10


def test_insertion_heuristics_are_feasible() -> None:
    op = paper_dataset("op_dist", 20, 20, 1234)
    seqs = greedy_insertion_op(op["depot"].numpy(), op["locs"].numpy(), op["prize"].numpy(),
                               op["max_length"].numpy())
    assert -feasible_cost("op_dist", op, seqs).mean() > 3.0  # best known 5.39
    pc = paper_dataset("pctsp", 20, 20, 1234)
    seqs = greedy_insertion_pctsp(pc["depot"].numpy(), pc["locs"].numpy(), pc["prize"].numpy(),
                                  pc["penalty"].numpy())
    assert feasible_cost("pctsp", pc, seqs).mean() < 4.5  # best known 3.13


def test_reference_solvers_for_depot_problems() -> None:
    pytest.importorskip("pyvrp")
    pytest.importorskip("ortools")
    from problems import reference as R

    inst = paper_dataset("cvrp", 2, 12, 1234)
    demand = np.rint(inst["demand"].numpy() * 20).astype(int)  # capacity 20 for n = 10..12
    hgs = feasible_cost("cvrp", inst, R.pyvrp_cvrp(inst["depot"].numpy(), inst["locs"].numpy(),
                                                   demand, 20, time_limit=0.3))
    ort = feasible_cost("cvrp", inst, R.ortools_cvrp(inst["depot"].numpy(), inst["locs"].numpy(),
                                                     demand, 20, time_limit=0.3))
    heur = feasible_cost("cvrp", inst, savings(inst["depot"].numpy(), inst["locs"].numpy(),
                                               inst["demand"].numpy()))
    assert (hgs <= heur + 1e-5).all() and (ort <= heur * 1.05).all()
    op = paper_dataset("op_dist", 2, 12, 1234)
    feasible_cost("op_dist", op, R.ortools_op(op["depot"].numpy(), op["locs"].numpy(),
                                              op["prize"].numpy(), op["max_length"].numpy(),
                                              time_limit=0.3))
    pc = paper_dataset("pctsp", 2, 12, 1234)
    feasible_cost("pctsp", pc, R.ortools_pctsp(pc["depot"].numpy(), pc["locs"].numpy(),
                                               pc["prize"].numpy(), pc["penalty"].numpy(),
                                               time_limit=0.3))
