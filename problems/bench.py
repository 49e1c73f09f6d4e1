"""Compare a solver with heuristics and LKH-3 on the paper's test set.

    python -m problems.bench --problem tsp --size 50 --num 1000
    python -m problems.bench --size 100 --decodes greedy multistart:8 --no-heuristics

Prints mean cost, gap to the reference (LKH-3 when installed, cached under
``--cache``), and wall time per method. ``--tsplib DIR`` instead evaluates on
TSPLIB instances with TSPLIB's rounding against ``DIR/optimal.txt``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from problems.data import TEST_SEED, paper_dataset, read_tsplib, tsplib_length
from problems.heuristics import farthest_insertion, nearest_neighbour, tour_lengths, two_opt
from problems.solver import Solver, load_solver

__all__ = ["compare", "parse_decode", "reference_costs", "tsplib_table"]

HEURISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "nearest neighbour": nearest_neighbour,
    "farthest insertion": farthest_insertion,
    "2-opt (from nearest neighbour)": lambda c: two_opt(c, nearest_neighbour(c)),
}


def parse_decode(spec: str) -> tuple[str, int]:
    """``"greedy"``, ``"multistart:8"`` (8 augmentations), ``"sample:1280"`` -> (decode, number)."""
    name, _, num = spec.partition(":")
    return name, int(num) if num else 1


def reference_costs(coords: np.ndarray, cache: Path | None) -> np.ndarray | None:
    """LKH-3 costs of ``coords``, read from / written to ``cache``; None without elkai."""
    if cache is not None and cache.is_file():
        costs = np.load(cache)["costs"]
        if len(costs) >= len(coords):
            return costs[: len(coords)]
    try:
        from problems.reference import lkh_tsp
        tours = lkh_tsp(coords)
    except ImportError:
        return None
    costs = tour_lengths(coords, tours)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, costs=costs)
    return costs


def _run_model(solver: Solver, coords: np.ndarray, spec: str) -> tuple[str, np.ndarray, float, np.ndarray]:
    decode, num = parse_decode(spec)
    kwargs = {"augment": num} if decode in ("greedy", "multistart") else {"samples": num}
    res = solver.solve(coords, decode=decode, **kwargs)
    label = f"model {decode}" + (f" x{num} aug" if "augment" in kwargs and num > 1 else "")
    label += f" ({num} samples)" if decode == "sample" else ""
    return label, res.costs, res.seconds, res.tours


def compare(
    solver: Solver | None, coords: np.ndarray, decodes: list[str], heuristics: bool,
    cache: Path | None,
) -> tuple[list[tuple[str, float, float | None, float]], dict[str, np.ndarray]]:
    """Rows ``(method, mean cost, gap or None, seconds)`` and each method's tours."""
    rows: list[tuple[str, np.ndarray, float]] = []
    tours: dict[str, np.ndarray] = {}
    for spec in decodes if solver is not None else []:
        label, costs, seconds, t = _run_model(solver, coords, spec)
        rows.append((label, costs, seconds))
        tours[label] = t
    for name, fn in HEURISTICS.items() if heuristics else []:
        tic = time.perf_counter()
        t = fn(coords)
        rows.append((name, tour_lengths(coords, t), time.perf_counter() - tic))
        tours[name] = t
    tic = time.perf_counter()
    cached = cache is not None and cache.is_file()
    ref = reference_costs(coords, cache)
    if ref is not None:
        rows.append(("LKH-3 (elkai)" + (" [cached]" if cached else ""),
                     ref, time.perf_counter() - tic))
    table = [(name, float(c.mean()), None if ref is None else float(c.mean() / ref.mean() - 1), s)
             for name, c, s in rows]
    return table, tours


def print_table(title: str, table: list[tuple[str, float, float | None, float]]) -> None:
    print(title)
    print(f"  {'method':38s} {'mean cost':>10s} {'gap':>9s} {'time':>9s}")
    for name, cost, gap, seconds in table:
        gap_s = "-" if gap is None else f"{100 * gap:.2f} %"
        print(f"  {name:38s} {cost:10.4f} {gap_s:>9s} {seconds:8.1f}s")


def tsplib_table(solver: Solver, folder: Path, decode: str, augment: int) -> list[tuple[str, int, int, float]]:
    """``(name, optimum, our length, gap)`` per TSPLIB instance, with TSPLIB rounding."""
    optimal = {}
    for line in (folder / "optimal.txt").read_text().splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            optimal[parts[0]] = int(parts[1])
    rows = []
    for path in sorted(folder.glob("*.tsp")):
        name, coords = read_tsplib(path)
        res = solver.solve(coords, decode=decode, augment=augment)
        length = tsplib_length(coords, res.tours[0])
        rows.append((name, optimal[name], length, length / optimal[name] - 1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--problem", default="tsp", choices=["tsp"], help="problem family")
    parser.add_argument("--size", type=int, default=20, help="nodes per test instance")
    parser.add_argument("--num", type=int, default=1000, help="test instances (seed 1234)")
    parser.add_argument("--solver", default=None, help="shipped name or checkpoint (default: tsp<size>)")
    parser.add_argument("--decodes", nargs="+", default=["greedy", "multistart:8"],
                        help="greedy[:aug], multistart[:aug], sample[:n]")
    parser.add_argument("--heuristics", action=argparse.BooleanOptionalAction, default=True,
                        help="also run nearest neighbour, farthest insertion and 2-opt")
    parser.add_argument("--cache", default="benchmarks/reference",
                        help="folder for cached LKH-3 costs ('' disables)")
    parser.add_argument("--tsplib", default=None, help="folder of .tsp files and optimal.txt")
    args = parser.parse_args()
    solver = load_solver(args.solver or f"{args.problem}{args.size}", problem=args.problem)
    if args.tsplib:
        decode, num = parse_decode(args.decodes[-1])
        rows = tsplib_table(solver, Path(args.tsplib), decode, num)
        print(f"TSPLIB ({len(rows)} instances), {args.decodes[-1]}, TSPLIB rounding")
        for name, opt, length, gap in rows:
            print(f"  {name:10s} optimum {opt:8d}  ours {length:8d}  gap {100 * gap:6.2f} %")
        print(f"  mean gap {100 * np.mean([r[3] for r in rows]):.2f} %")
        return
    coords = paper_dataset(args.problem, args.num, args.size, TEST_SEED)["locs"].double().numpy()
    cache = (Path(args.cache) / f"{args.problem}{args.size}_seed{TEST_SEED}_lkh.npz"
             if args.cache else None)
    table, _ = compare(solver, coords, args.decodes, args.heuristics, cache)
    print_table(f"{args.problem.upper()}{args.size}, {args.num} test instances (seed {TEST_SEED}), "
                "gap to LKH-3", table)


if __name__ == "__main__":
    main()
