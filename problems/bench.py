"""Compare a solver with heuristics and a reference solver on the paper's test set.

    python -m problems.bench --problem tsp --size 50 --num 1000
    python -m problems.bench --problem cvrp --size 20 --decodes greedy multistart:8
    python -m problems.bench --problem op --prize dist --size 20
    python -m problems.bench --problem tsp --size 100 --tsplib ../shared/data/tsplib
    python -m problems.bench --problem cvrp --size 100 --cvrplib ../shared/data/cvrplib

Prints the mean objective, the gap to the reference (LKH-3 for TSP, PyVRP's HGS
for CVRP/SDVRP, OR-Tools for OP/PCTSP; costs cached under ``--cache``) and
wall time per method. OP is a maximisation: its gap is the prize missed
relative to the reference. ``--tsplib`` / ``--cvrplib`` evaluate on the
library instances with their integer rounding against the known optima.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from problems.base import Instance
from problems.cvrp import capacity_for
from problems.data import TEST_SEED, paper_dataset, paper_test_set, read_tsplib, tsplib_length
from problems.decoding import STRATEGIES, decode
from problems.heuristics import (
    farthest_insertion,
    greedy_insertion_op,
    greedy_insertion_pctsp,
    nearest_neighbour,
    savings,
    two_opt,
)
from problems.registry import make_problem
from problems.solver import Solver, load_solver

__all__ = ["compare", "cvrplib_table", "parse_decode", "reference_costs", "run_model",
           "tsplib_table"]

Method = Callable[[Instance], np.ndarray]  # instance batch -> (B, T) node sequences


def _np(inst: Instance, key: str) -> np.ndarray:
    return inst[key].double().numpy()


def _capacity(inst: Instance) -> tuple[np.ndarray, int]:
    """Integer demands and capacity of the paper's CVRP data (demand is demand / capacity)."""
    cap = int(capacity_for(inst["demand"].shape[1]))
    return np.rint(_np(inst, "demand") * cap).astype(np.int64), cap


_VRP_HEURISTICS: dict[str, Method] = {
    "savings + 2-opt": lambda i: savings(_np(i, "depot"), _np(i, "locs"), _np(i, "demand")),
}
HEURISTICS: dict[str, dict[str, Method]] = {
    "tsp": {
        "nearest neighbour": lambda i: nearest_neighbour(_np(i, "locs")),
        "farthest insertion": lambda i: farthest_insertion(_np(i, "locs")),
        "2-opt (from nearest neighbour)":
            lambda i: two_opt(_np(i, "locs"), nearest_neighbour(_np(i, "locs"))),
    },
    "cvrp": _VRP_HEURISTICS,
    "sdvrp": _VRP_HEURISTICS,
    "op": {"greedy insertion": lambda i: greedy_insertion_op(
        _np(i, "depot"), _np(i, "locs"), _np(i, "prize"), _np(i, "max_length"))},
    "pctsp": {"greedy insertion": lambda i: greedy_insertion_pctsp(
        _np(i, "depot"), _np(i, "locs"), _np(i, "prize"), _np(i, "penalty"))},
    "spctsp": {},
}
"""Problem family -> heuristic name -> method."""


def _reference(family: str, seconds: float) -> tuple[str, Method] | None:
    """The family's reference solver, or None when it has none."""
    from problems import reference as ref

    table: dict[str, tuple[str, Method]] = {
        "tsp": ("LKH-3 (elkai)", lambda i: ref.lkh_tsp(_np(i, "locs"))),
        "cvrp": (f"PyVRP HGS {seconds:g}s", lambda i: ref.pyvrp_cvrp(
            _np(i, "depot"), _np(i, "locs"), *_capacity(i), time_limit=seconds)),
        "op": (f"OR-Tools {seconds:g}s", lambda i: ref.ortools_op(
            _np(i, "depot"), _np(i, "locs"), _np(i, "prize"), _np(i, "max_length"),
            time_limit=seconds)),
        "pctsp": (f"OR-Tools {seconds:g}s", lambda i: ref.ortools_pctsp(
            _np(i, "depot"), _np(i, "locs"), _np(i, "prize"), _np(i, "penalty"),
            time_limit=seconds)),
    }
    table["sdvrp"] = table["cvrp"]
    return table.get(family)


def family(problem: str) -> str:
    return "op" if problem.startswith("op_") else problem


def parse_decode(spec: str) -> tuple[str, int, int]:
    """``(strategy, samples, augment)`` of a decode spec.

    ``"greedy"``, ``"greedy:8"`` and ``"multistart:8"`` (8 symmetric copies),
    ``"sample:1280"`` (1,280 samples), ``"sample:160:8"`` (160 samples of each of 8 copies).
    """
    strategy, *nums = spec.split(":")
    takes = 2 if strategy == "sample" else 1
    if strategy not in STRATEGIES or len(nums) > takes or not all(n.isdigit() for n in nums):
        raise ValueError(f"decode spec must be greedy[:aug], multistart[:aug] or "
                         f"sample[:samples[:aug]] with integer counts, got {spec!r}")
    counts = [int(n) for n in nums]
    if strategy == "sample":
        samples, augment = (counts + [1, 1])[:2]
        return strategy, samples, augment
    return strategy, 1, counts[0] if counts else 1


def _objective(problem: str, inst: Instance, seqs: np.ndarray) -> np.ndarray:
    """Feasibility-checked objective per instance (prize for OP, cost otherwise)."""
    p = make_problem(problem)
    tours = torch.from_numpy(np.asarray(seqs, dtype=np.int64)).unsqueeze(1)
    p.check(inst, tours)
    cost = p.cost(inst, tours)[:, 0].double().numpy()
    return -cost if family(problem) == "op" else cost


def reference_costs(problem: str, inst: Instance, cache: Path | None,
                    seconds: float = 1.0) -> tuple[str, np.ndarray] | None:
    """The reference solver's objectives, read from / written to ``cache``; None when the
    reference package is missing, the problem has no reference, or nothing is cached and
    ``seconds`` is 0."""
    num = len(next(iter(inst.values())))
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            costs, name = data["costs"], str(data["name"]) if "name" in data else "reference"
        if len(costs) >= num:  # the cache holds the first instances of the same test set
            return f"{name} [cached]", costs[:num]
    ref = _reference(family(problem), seconds)
    if ref is None or seconds <= 0:
        return None
    name, method = ref
    try:
        costs = _objective(problem, inst, method(inst))
    except ImportError:
        return None
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, costs=costs, name=name)
    return name, costs


def run_model(solver: Solver, inst: Instance, spec: str, seed: int
              ) -> tuple[str, np.ndarray, float, np.ndarray]:
    """Decode ``inst`` with ``spec`` (see :func:`parse_decode`): the row's label, each
    instance's objective (tour cost, or OP's prize), the seconds taken and the sequences."""
    strategy, samples, augment = parse_decode(spec)
    # A fresh generator per row: each sampled row repeats exactly, whatever rows precede it.
    gen = torch.Generator(device=solver.device).manual_seed(seed)
    tic = time.perf_counter()
    model_inst = {k: v.float().to(solver.device) for k, v in inst.items()}
    tours, _ = decode(solver.model, model_inst, strategy, samples=samples, augment=augment,
                      generator=gen)
    seconds = time.perf_counter() - tic
    seqs = tours.cpu().numpy()
    label = f"model {strategy}" + (f" x{augment} aug" if augment > 1 else "")
    label += f" ({samples} samples)" if strategy == "sample" else ""
    return label, _objective(solver.problem.name, inst, seqs), seconds, seqs


def compare(
    solver: Solver | None, problem: str, inst: Instance, decodes: list[str], heuristics: bool,
    cache: Path | None, ref_seconds: float = 1.0, seed: int = 0,
) -> tuple[list[tuple[str, float, float | None, float]], dict[str, np.ndarray]]:
    """Rows ``(method, mean objective, gap or None, seconds)`` and each method's sequences.

    Each sampled decode row draws from its own generator seeded with ``seed``.

    The gap is ``mean / reference - 1`` for costs and ``1 - mean / reference`` for OP's
    prize, so positive is worse in both cases.
    """
    rows: list[tuple[str, np.ndarray, float]] = []
    seqs: dict[str, np.ndarray] = {}
    for spec in decodes if solver is not None else []:
        label, objective, seconds, s = run_model(solver, inst, spec, seed)
        rows.append((label, objective, seconds))
        seqs[label] = s
    for name, method in HEURISTICS[family(problem)].items() if heuristics else []:
        tic = time.perf_counter()
        s = method(inst)
        rows.append((name, _objective(problem, inst, s), time.perf_counter() - tic))
        seqs[name] = s
    tic = time.perf_counter()
    ref = reference_costs(problem, inst, cache, ref_seconds)
    if ref is not None:
        rows.append((ref[0], ref[1], time.perf_counter() - tic))
    sign = -1.0 if family(problem) == "op" else 1.0
    table = [(name, float(c.mean()),
              None if ref is None else sign * float(c.mean() / ref[1].mean() - 1), s)
             for name, c, s in rows]
    return table, seqs


def print_table(title: str, table: list[tuple[str, float, float | None, float]]) -> None:
    print(title)
    print(f"  {'method':38s} {'objective':>10s} {'gap':>9s} {'time':>9s}")
    for name, value, gap, seconds in table:
        gap_s = "-" if gap is None else f"{100 * gap:.2f} %"
        print(f"  {name:38s} {value:10.4f} {gap_s:>9s} {seconds:8.1f}s")


def _optima(path: Path) -> dict[str, int]:
    optimal = {}
    for line in path.read_text().splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            optimal[parts[0]] = int(parts[1])
    return optimal


def tsplib_table(solver: Solver, folder: Path, decode: str, samples: int = 1, augment: int = 1,
                 seed: int = 0) -> list[tuple[str, int, int, float]]:
    """``(name, optimum, our length, gap)`` per TSPLIB instance, with TSPLIB rounding."""
    optimal = _optima(folder / "optimal.txt")
    rows = []
    for path in sorted(folder.glob("*.tsp")):
        name, coords = read_tsplib(path)
        res = solver.solve(coords, decode=decode, samples=samples, augment=augment, seed=seed)
        length = tsplib_length(coords, res.tours[0])
        rows.append((name, optimal[name], length, length / optimal[name] - 1))
    return rows


def cvrplib_table(solver: Solver, folder: Path, decode: str, samples: int = 1, augment: int = 1,
                  seed: int = 0) -> list[tuple[str, int, int, float]]:
    """``(name, best known, our cost, gap)`` per CVRPLIB instance, with nint distances."""
    import vrplib

    rows = []
    for path in sorted(folder.glob("*.vrp")):
        inst = vrplib.read_instance(str(path))
        best = int(vrplib.read_solution(str(path.with_suffix(".sol")))["cost"])
        coords = inst["node_coord"].astype(np.float64)
        res = solver.solve(depot=coords[0], locs=coords[1:], demand=inst["demand"][1:],
                           capacity=inst["capacity"], decode=decode, samples=samples,
                           augment=augment, seed=seed)
        seq = np.concatenate(([0], res.tours[0], [0]))
        legs = np.sqrt(((coords[seq[1:]] - coords[seq[:-1]]) ** 2).sum(axis=1))
        cost = int(np.floor(legs + 0.5).sum())
        rows.append((inst["name"], best, cost, cost / best - 1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--problem", default="tsp",
                        choices=["tsp", "cvrp", "sdvrp", "op", "pctsp", "spctsp"])
    parser.add_argument("--prize", default="dist", choices=["const", "unif", "dist"],
                        help="OP prize distribution")
    parser.add_argument("--size", type=int, default=20, help="nodes per test instance")
    parser.add_argument("--num", type=int, default=1000,
                        help="the first NUM instances of the paper's test set (10,000, seed 1234), "
                        "or NUM fresh ones with --data-seed")
    parser.add_argument("--solver", default=None,
                        help="shipped name or checkpoint (default: <problem><size>)")
    parser.add_argument("--decodes", nargs="+", default=["greedy", "multistart:8"],
                        help="greedy[:aug], multistart[:aug], sample[:samples[:aug]]; aug is "
                        "1, 2, 4 or 8 symmetric copies (best kept), e.g. multistart:8 sample:160:8")
    parser.add_argument("--heuristics", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the problem's classical heuristics")
    parser.add_argument("--ref-seconds", type=float, default=1.0,
                        help="time limit per instance of PyVRP / OR-Tools references "
                        "(0: use cached costs only, never run the reference)")
    parser.add_argument("--cache", default="benchmarks/reference",
                        help="folder for cached reference costs ('' disables)")
    parser.add_argument("--data-seed", type=int, nargs="+", default=None,
                        help="instead of the test set, NUM instances drawn as the paper's "
                        "generate_data.py does with this seed (4321 is problems.train's "
                        "validation set; another seed gives data that neither validation nor "
                        "test has seen); several seeds pool NUM instances of each into one "
                        "set (and one paired difference); cached reference costs are not used")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sampled decodes (each row starts from it afresh)")
    parser.add_argument("--against", default=None,
                        help="a second solver (shipped name or checkpoint): also print the "
                        "first decode's mean per-instance difference, --solver minus this one, "
                        "with its standard error, on the same instances")
    parser.add_argument("--tsplib", default=None, help="folder of .tsp files and optimal.txt")
    parser.add_argument("--cvrplib", default=None, help="folder of .vrp and .sol files")
    args = parser.parse_args()
    problem = f"op_{args.prize}" if args.problem == "op" else args.problem
    solver = load_solver(args.solver or f"{problem}{args.size}", problem=problem)
    library = args.tsplib or args.cvrplib
    if library and args.data_seed is not None:
        parser.error("--data-seed draws generated instances; it cannot be combined with "
                     "--tsplib or --cvrplib")
    if library:
        table_fn = tsplib_table if args.tsplib else cvrplib_table
        rows = table_fn(solver, Path(library), *parse_decode(args.decodes[-1]), seed=args.seed)
        print(f"{Path(library).name} ({len(rows)} instances), {args.decodes[-1]}, integer rounding")
        for name, best, ours, gap in rows:
            print(f"  {name:12s} best known {best:8d}  ours {ours:8d}  gap {100 * gap:6.2f} %")
        print(f"  mean gap {100 * np.mean([r[3] for r in rows]):.2f} %")
        return
    if args.data_seed is None:
        inst = paper_test_set(problem, args.size, args.num)
        ref = _reference(family(problem), args.ref_seconds)
        cache = (Path(args.cache) / f"{problem}{args.size}_seed{TEST_SEED}_"
                 f"{ref[0].split()[0].lower() if ref else 'none'}.npz") if args.cache else None
        title = f"{args.num} test instances (seed {TEST_SEED})"
    else:
        sets = [paper_dataset(problem, args.num, args.size, s) for s in args.data_seed]
        inst = {k: torch.cat([d[k] for d in sets]) for k in sets[0]}
        seeds = ", ".join(map(str, args.data_seed))
        cache, title = None, (f"{args.num} fresh instances (seed {seeds})" if len(sets) == 1 else
                              f"{args.num * len(sets)} fresh instances (seeds {seeds}, "
                              f"{args.num} each)")
    table, seqs = compare(solver, problem, inst, args.decodes, args.heuristics, cache,
                          args.ref_seconds, args.seed)
    print_table(f"{problem.upper()}{args.size}, {title}", table)
    if args.against:
        # Both solvers decode the same instances, so the per-instance differences cancel the
        # instances' own spread: their standard error is far below that of either mean.
        other = load_solver(args.against, problem=problem)
        label, theirs, _, _ = run_model(other, inst, args.decodes[0], args.seed)
        diff = _objective(problem, inst, seqs[label]) - theirs
        err = diff.std(ddof=1) / np.sqrt(len(diff))
        print(f"  paired difference, {label}, minus {args.against}: "
              f"{diff.mean():+.4f} +- {err:.4f} (1 s.e.)")


if __name__ == "__main__":
    main()
