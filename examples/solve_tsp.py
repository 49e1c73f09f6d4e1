"""Solve 1,000 TSP50 instances with the shipped model and compare with classical heuristics.

    python examples/solve_tsp.py [--size 50] [--num 1000] [--plot tour.png]

Prints mean cost, gap to LKH-3 (when the `reference` extra is installed; its
costs are cached in benchmarks/reference/) and wall time for greedy and
multi-start x8-augmented decoding, nearest neighbour, farthest insertion and
2-opt, then draws one tour.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from problems import load_solver
from problems.bench import compare, print_table
from problems.data import TEST_SEED, paper_test_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", type=int, default=50, help="nodes per instance (20, 50 or 100)")
    parser.add_argument("--num", type=int, default=1000, help="test instances (the paper's seed 1234)")
    parser.add_argument("--plot", default="tour.png", help="where to draw the first instance's tour")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    solver = load_solver(f"tsp{args.size}")
    inst = paper_test_set("tsp", args.size, args.num)
    cache = Path(__file__).resolve().parents[1] / "benchmarks" / "reference" / (
        f"tsp{args.size}_seed{TEST_SEED}_lkh-3.npz")
    table, tours = compare(solver, "tsp", inst, ["greedy", "multistart:8"], True, cache)
    print_table(f"TSP{args.size}: {args.num} instances of the paper's test set, gap to LKH-3", table)
    best = "model multistart x8 aug"
    solver.plot(inst["locs"][0].double().numpy(), tours[best][0], args.plot,
                title=f"TSP{args.size}, {best}")
    print(f"tour plot: {args.plot}")


if __name__ == "__main__":
    main()
