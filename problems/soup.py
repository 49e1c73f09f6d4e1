"""Greedy model soup: average the weights of the checkpoints that help on held-out data.

    python -m problems.soup --problem op --prize dist --size 50 --out soup.pt \\
        runs/a/best.pt runs/a/checkpoint.pt runs/b/best.pt runs/b/checkpoint.pt

After Wortsman et al. (2022): every candidate is scored alone (greedy decoding
of --num instances drawn with --data-seed; 4321 is problems.train's validation
set), then, best first, each joins the soup if the soup's score does not get
worse. Runs fine-tuned from one model stay in one basin, where the mean of
their weights can decode better than any of them. The soup is written as
export_solver writes it. Its score on the selection data is biased upward; confirm
it on instances that neither training nor the selection saw, e.g.
`python -m problems.bench ... --data-seed 4322 --solver soup.pt --against OLD`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from problems.bench import family, parse_decode, run_model
from problems.data import paper_dataset
from problems.solver import export_solver, load_solver, mean_weights

__all__ = ["greedy_soup"]

T = TypeVar("T")


def greedy_soup(candidates: Sequence[T], score: Callable[[list[T]], float],
                ) -> tuple[list[T], float, list[float], list[tuple[T, float, bool]]]:
    """Choose the ingredients of a greedy soup.

    Args:
        candidates: the checkpoints (or anything ``score`` takes), in any order.
        score: the held-out score of the mean of a list of candidates; higher is better.

    Returns:
        The chosen ingredients (best alone first), their soup's score, each candidate's
        score alone (in the order given) and the steps: ``(candidate, score of the soup
        with it, kept)``, starting with the best candidate alone.
    """
    if not candidates:
        raise ValueError("candidates: expected at least one")
    alone = [score([c]) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: -alone[i])
    soup, best = [candidates[order[0]]], alone[order[0]]
    steps = [(candidates[order[0]], best, True)]
    for i in order[1:]:
        value = score([*soup, candidates[i]])
        keep = value >= best
        if keep:
            soup.append(candidates[i])
            best = value
        steps.append((candidates[i], value, keep))
    return soup, best, alone, steps


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoints", nargs="+",
                        help="candidate checkpoints (training checkpoints or exported files) of "
                        "one problem, size and model shape")
    parser.add_argument("--out", required=True, help="where to write the soup")
    parser.add_argument("--problem", default="tsp",
                        choices=["tsp", "cvrp", "sdvrp", "op", "pctsp", "spctsp"],
                        help="problem family of the checkpoints")
    parser.add_argument("--prize", default="dist", choices=["const", "unif", "dist"],
                        help="OP prize distribution")
    parser.add_argument("--size", type=int, default=20, help="nodes per selection instance")
    parser.add_argument("--num", type=int, default=10000, help="selection instances")
    parser.add_argument("--data-seed", type=int, default=4321,
                        help="seed of the selection instances (4321: problems.train's validation "
                        "set, which the runs' best.pt were already chosen on)")
    parser.add_argument("--decode", default="greedy",
                        help="decode spec that scores a soup, as problems.bench's --decodes")
    parser.add_argument("--uniform", action="store_true",
                        help="also print the score of the mean of all the candidates")
    parser.add_argument("--note", default="", help="stored in the file's provenance")
    parser.add_argument("--device", default="cpu", help="where decoding runs (cpu, cuda)")
    args = parser.parse_args(argv)
    parse_decode(args.decode)
    problem = f"op_{args.prize}" if args.problem == "op" else args.problem
    # Averaging all of them first checks, before any decoding, that every candidate fits.
    solver = load_solver(args.checkpoints, problem=problem, device=args.device)
    # Each file is read once more; every soup scored is a mean of these weights.
    weights = {p: load_solver(p, device=args.device).model.state_dict()
               for p in args.checkpoints}
    inst = paper_dataset(problem, args.num, args.size, args.data_seed)
    sign = 1.0 if family(problem) == "op" else -1.0  # OP's prize is maximised, costs minimised

    def objective(paths: list[str]) -> float:
        solver.model.load_state_dict(mean_weights([weights[p] for p in paths]))
        return float(run_model(solver, inst, args.decode, seed=0)[1].mean())

    print(f"{problem.upper()}{args.size}, {args.decode} on {args.num} instances "
          f"(seed {args.data_seed}); {'higher' if sign > 0 else 'lower'} is better")
    soup, chosen, alone, steps = greedy_soup(args.checkpoints, lambda p: sign * objective(p))
    for path, value in zip(args.checkpoints, alone, strict=True):
        print(f"  alone  {sign * value:10.4f}  {path}")
    for path, value, kept in steps:
        print(f"  soup   {sign * value:10.4f}  + {path}  {'kept' if kept else 'dropped'}")
    if args.uniform:
        print(f"  all    {objective(list(args.checkpoints)):10.4f}  mean of all "
              f"{len(args.checkpoints)}")
    selection = {"data_seed": args.data_seed, "num": args.num, "decode": args.decode,
                 "score": sign * chosen, "alone": dict(zip(args.checkpoints,
                                                           np.multiply(sign, alone).tolist(),
                                                           strict=True))}
    command = " ".join(["python -m problems.soup", *map(shlex.quote, sys.argv[1:] if argv is None
                                                        else argv)])
    out = export_solver(soup, Path(args.out), command=command, note=args.note, selection=selection)
    print(f"wrote {out}: the mean of {len(soup)} of {len(args.checkpoints)} checkpoints, "
          f"{sign * chosen:.4f}")


if __name__ == "__main__":
    main()
