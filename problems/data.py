"""Datasets with the conventions of Kool et al. (2019), and readers for TSPLIB.

The paper's test sets use seed 1234 and validation sets seed 4321, drawn with
NumPy's legacy global RNG (``np.random.seed(seed)``, then depot, locations and
demands in that order), so they are reproducible from the command line::

    python -m problems.data --problem tsp --size 20 --seed 1234 --num 10000 -o tsp20_test.npz
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

import numpy as np
import torch

from problems.base import Instance
from problems.cvrp import capacity_for
from problems.op import PRIZE_TYPES, max_length_for, op_prizes
from problems.pctsp import PENALTY_FACTOR
from problems.registry import PROBLEMS

__all__ = ["load_dataset", "paper_dataset", "paper_test_set", "read_tsplib", "save_dataset",
           "tsplib_length"]

TEST_SEED = 1234
VALIDATION_SEED = 4321
PAPER_TEST_SIZE = 10_000


def paper_dataset(problem: str, num: int, size: int, seed: int) -> Instance:
    """``num`` instances of ``size`` nodes drawn exactly as the paper's ``generate_data.py``.

    The global NumPy RNG is seeded (as the paper does) and restored afterwards,
    so calling this never disturbs a training run.
    """
    if num < 1 or size < 1:
        raise ValueError(f"num and size must be >= 1, got num={num}, size={size}")
    generators = {
        "tsp": _tsp, "cvrp": _cvrp, "sdvrp": _cvrp, "pctsp": partial(_pctsp, False), "spctsp": partial(_pctsp, True),
        **{f"op_{kind}": partial(_op, kind) for kind in PRIZE_TYPES},
    }
    if problem not in generators:
        raise ValueError(f"problem must be one of {sorted(generators)}, got {problem!r}")
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        return generators[problem](num, size)
    finally:
        np.random.set_state(saved)


def paper_test_set(problem: str, size: int, num: int = 1000) -> Instance:
    """The first ``num`` instances of the paper's test set (10,000 instances, seed 1234).

    Not the same as ``paper_dataset(problem, num, size, 1234)`` for problems with a
    depot: the paper draws every depot before any location, so the set's size
    shifts where each instance's locations come from.
    """
    if not 1 <= num <= PAPER_TEST_SIZE:
        raise ValueError(f"num must be in [1, {PAPER_TEST_SIZE}], got {num}")
    inst = paper_dataset(problem, PAPER_TEST_SIZE, size, TEST_SEED)
    return {k: v[:num].clone() for k, v in inst.items()}


def _tsp(num: int, size: int) -> Instance:
    locs = np.random.uniform(size=(num, size, 2))
    return {"locs": torch.from_numpy(locs).float()}


def _cvrp(num: int, size: int) -> Instance:
    depot = np.random.uniform(size=(num, 2))
    locs = np.random.uniform(size=(num, size, 2))
    demand = np.random.randint(1, 10, size=(num, size))
    return {
        "depot": torch.from_numpy(depot).float(),
        "locs": torch.from_numpy(locs).float(),
        "demand": torch.from_numpy(demand / capacity_for(size)).float(),
    }


def _op(kind: str, num: int, size: int) -> Instance:
    depot = torch.from_numpy(np.random.uniform(size=(num, 2))).float()
    locs = torch.from_numpy(np.random.uniform(size=(num, size, 2))).float()
    unif = np.random.randint(0, 100, size=(num, size)) if kind == "unif" else np.zeros((num, size))
    return {
        "depot": depot,
        "locs": locs,
        "prize": op_prizes(kind, depot, locs, torch.from_numpy(unif).float()),
        "max_length": torch.full((num,), max_length_for(size)),
    }


def _pctsp(stochastic: bool, num: int, size: int) -> Instance:
    depot = np.random.uniform(size=(num, 2))
    locs = np.random.uniform(size=(num, size, 2))
    penalty = np.random.uniform(size=(num, size)) * max_length_for(size) * PENALTY_FACTOR / size
    prize = np.random.uniform(size=(num, size)) * 4 / size
    real = np.random.uniform(size=(num, size)) * prize * 2
    out = {"depot": depot, "locs": locs, "penalty": penalty, "prize": prize,
           "real_prize": real if stochastic else prize}
    return {k: torch.from_numpy(v).float() for k, v in out.items()}


def save_dataset(inst: Instance, path: str | os.PathLike[str]) -> None:
    """Write an instance batch to ``.npz``."""
    np.savez_compressed(path, **{k: v.numpy() for k, v in inst.items()})


def load_dataset(path: str | os.PathLike[str]) -> Instance:
    """Read an instance batch written by :func:`save_dataset`."""
    with np.load(path) as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


def read_tsplib(path: str | os.PathLike[str]) -> tuple[str, np.ndarray]:
    """``(name, coords (n, 2))`` of a EUC_2D ``.tsp`` file, read with tsplib95."""
    import tsplib95

    prob = tsplib95.load(str(path))
    if prob.edge_weight_type != "EUC_2D":
        raise ValueError(f"{path}: only EUC_2D instances are supported, got {prob.edge_weight_type}")
    nodes = sorted(prob.node_coords)
    return prob.name, np.array([prob.node_coords[i] for i in nodes], dtype=np.float64)


def tsplib_length(coords: np.ndarray, tour: np.ndarray) -> int:
    """Closed tour length with TSPLIB's EUC_2D rounding: ``nint`` of each edge."""
    pos = coords[tour]
    edges = np.sqrt(((pos - np.roll(pos, -1, axis=0)) ** 2).sum(axis=1))
    return int(np.floor(edges + 0.5).sum())


def _main() -> None:
    parser = argparse.ArgumentParser(
        description="Write a dataset with the paper's conventions (test seed 1234, validation 4321).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--problem", default="tsp", choices=sorted(PROBLEMS), help="problem")
    parser.add_argument("--size", type=int, default=20, help="nodes per instance")
    parser.add_argument("--num", type=int, default=10_000, help="number of instances")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="1234: test, 4321: validation")
    parser.add_argument("-o", "--output", required=True, help="output .npz file")
    args = parser.parse_args()
    inst = paper_dataset(args.problem, args.num, args.size, args.seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_dataset(inst, args.output)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in inst.items())
    print(f"wrote {args.output}: {shapes}")


if __name__ == "__main__":
    _main()
