"""Solve one instance of each routing problem with the shipped models and draw it.

    python examples/solve_routing.py --out docs/img

Writes ``<name>_routes.png`` per model: the CVRP and SDVRP trips in colours,
OP and PCTSP prizes as marker sizes. Instances are drawn in the caller's units
(coordinates 0-100, integer demands) to show that any scale works.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from problems import load_solver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="folder for the PNG files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random instances")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 20
    depot, locs = rng.uniform(0, 100, 2), rng.uniform(0, 100, (n, 2))
    instances = {
        "cvrp20": {"depot": depot, "locs": locs, "demand": rng.integers(1, 10, n), "capacity": 30},
        "op_dist20": {"depot": depot, "locs": locs, "prize": rng.uniform(0, 1, n),
                      "max_length": 200.0},
        "pctsp20": {"depot": depot, "locs": locs, "prize": rng.uniform(0, 4 / n, n),
                    "penalty": rng.uniform(0, 100 * 3 * 2 / n, n)},  # distance units
    }
    for name, data in instances.items():
        solver = load_solver(name)
        res = solver.solve(data, decode="multistart", augment=8)
        path = out / f"{name}_routes.png"
        solver.plot(data, res.tours[0], path, title=f"{name}: objective {res.costs[0]:.2f}")
        print(f"{name}: objective {res.costs[0]:.3f}, feasible {bool(res.feasible[0])}, "
              f"routes {res.routes[0]} -> {path}")


if __name__ == "__main__":
    main()
