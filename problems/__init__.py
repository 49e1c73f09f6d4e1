"""Routing problems and attention-model solvers (Kool et al. 2019; POMO-style multi-start).

>>> from problems import load_solver
>>> solver = load_solver("tsp50")
>>> res = solver.solve(coords, decode="multistart", augment=8)
"""

from problems.envs import RoutingEnv, register_envs
from problems.registry import PROBLEMS, make_problem
from problems.solver import Solution, Solver, load_solver, pretrained_names
from problems.tsp import TSP

register_envs()

__all__ = ["PROBLEMS", "TSP", "RoutingEnv", "Solution", "Solver", "load_solver", "make_problem",
           "pretrained_names", "register_envs"]
