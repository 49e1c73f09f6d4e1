"""Our two attention paths side by side: ``scaled_dot_product_attention`` against ``attend``'s
own three products, in the steps that use it.

    python benchmarks/attention_paths.py [--repeats 5]

``problems.model.attend`` multiplies out the scores itself on CPU when several queries meet at
most ``SMALL_ATTENTION`` keys (the encoder, and the multi-rollout decoder of 20- and 50-node
problems), because torch's CPU kernel is tiled for long sequences. Where that threshold lies
depends on the CPU; this script re-measures it: each case runs with the kernel everywhere and
with the products everywhere (the threshold at 0 and at infinity), in one process, and prints
both times and which path the shipped threshold takes there. Training steps (POMO: one rollout
from every node, shared baseline, batch 64, random initial weights) run on one thread, as the
training runs do; decoding of the paper's test instances with the shipped models on torch's
default threads, as ``problems.bench`` does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import median_seconds

import problems.model as model_module
from problems.data import TEST_SEED, paper_dataset
from problems.decoding import decode
from problems.model import AttentionModel
from problems.registry import make_problem
from problems.solver import load_solver
from rlcore import reinforce_loss


def pomo_step(problem_name: str, size: int) -> Callable[[], None]:
    """One POMO training step at batch 64, every node a start."""
    problem = make_problem(problem_name)
    torch.manual_seed(0)
    model = AttentionModel(problem)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    inst = paper_dataset(problem_name, 64, size, TEST_SEED)
    starts = problem.max_starts(inst)

    def step() -> None:
        out = model.rollout(inst, k=starts, greedy=False, first=problem.starts(inst, starts))
        cost = problem.cost(inst, out.actions)
        loss, _ = reinforce_loss(out.logp.flatten(), (cost.mean(1, keepdim=True) - cost).flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def decoding(size: int, strategy: str, num: int, augment: int = 1) -> Callable[[], None]:
    """Decoding ``num`` TSP test instances with the shipped ``tsp<size>``: trained weights, since
    the products' speed depends on them (with the shipped ``tsp50`` they are the slower path
    at 50 keys, with random weights the faster)."""
    model = load_solver(f"tsp{size}").model
    inst = paper_dataset("tsp", num, size, TEST_SEED)
    return lambda: decode(model, inst, strategy, augment=augment)


CASES: list[tuple[str, int, int, bool, Callable[[], Callable[[], None]]]] = [
    ("POMO training step, TSP20", 1, 20, True, lambda: pomo_step("tsp", 20)),
    ("POMO training step, TSP50", 1, 50, True, lambda: pomo_step("tsp", 50)),
    ("POMO training step, CVRP20", 1, 21, True, lambda: pomo_step("cvrp", 20)),
    ("greedy decoding, 1,000 TSP20", 0, 20, False, lambda: decoding(20, "greedy", 1000)),
    ("multistart decoding, 200 TSP20", 0, 20, True, lambda: decoding(20, "multistart", 200)),
    ("multistart x8 decoding, 200 TSP50", 0, 50, True,
     lambda: decoding(50, "multistart", 200, augment=8)),
    ("greedy decoding, 1,000 TSP100", 0, 100, False, lambda: decoding(100, "greedy", 1000)),
]
"""(name, torch threads (0: torch's default), keys per query, whether the decoder has several
queries per instance (the encoder always has), builder of the timed call)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per case (median)")
    args = parser.parse_args()
    shipped = model_module.SMALL_ATTENTION
    default_threads = torch.get_num_threads()
    print(f"median of {args.repeats}; shipped: products up to {shipped} keys, else the kernel")
    print(f"{'case':34s} {'kernel':>9s} {'products':>9s} {'kernel/products':>16s}  shipped")
    try:
        for name, threads, keys, several, build in CASES:
            torch.set_num_threads(threads or default_threads)
            seconds = {}
            for label, threshold in (("kernel", 0), ("products", 1 << 30)):
                model_module.SMALL_ATTENTION = threshold
                seconds[label] = median_seconds(build(), args.repeats)
            path = "kernel"
            if keys <= shipped:
                path = "products" if several else "products (encoder), kernel (decoder)"
            print(f"{name:34s} {seconds['kernel']:8.3f}s {seconds['products']:8.3f}s "
                  f"{seconds['kernel'] / seconds['products']:15.2f}x  {path}")
    finally:
        model_module.SMALL_ATTENTION = shipped


if __name__ == "__main__":
    main()
