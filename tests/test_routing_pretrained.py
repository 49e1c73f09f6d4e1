"""Every shipped checkpoint loads, solves instances of its problem and size through the
public API, feasibly, and lands near the reference solver (or, where none is cached,
not far behind the problem's classical heuristic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from problems import load_solver, pretrained_names
from problems.bench import compare, family, parse_decode
from problems.data import TEST_SEED, paper_test_set
from tests.conftest import ROOT

REFERENCE = ROOT / "benchmarks" / "reference"
NUM = 20


def test_every_problem_of_the_paper_is_shipped() -> None:
    names = set(pretrained_names())
    for name in ("tsp20", "tsp50", "tsp100", "cvrp20", "cvrp50", "sdvrp20", "op_dist20", "op_dist50",
                 "op_const20", "op_unif20", "pctsp20", "spctsp20"):
        assert name in names


def _benchmark(problem: str, size: int, inst: dict) -> tuple[str, float]:
    """Mean objective of the cached reference on these instances, else of the best
    classical heuristic (SPCTSP: PCTSP's, planned on the expected prizes)."""
    cached = sorted(REFERENCE.glob(f"{problem}{size}_seed{TEST_SEED}_*.npz"))
    if cached:
        with np.load(cached[0]) as data:
            return "reference", float(data["costs"][:NUM].mean())
    planned = "pctsp" if problem == "spctsp" else problem
    if problem == "spctsp":
        inst = {**inst, "real_prize": inst["prize"]}
    rows, _ = compare(None, planned, inst, [], heuristics=True, cache=None, ref_seconds=0)
    values = [value for _, value, _, _ in rows]
    return "heuristic", max(values) if family(problem) == "op" else min(values)


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_model_is_feasible_and_near_the_benchmark(name) -> None:
    solver = load_solver(name)
    problem, size = solver.problem.name, solver.size
    inst = paper_test_set(problem, size, NUM)
    arrays = {k: v.double().numpy() for k, v in inst.items()}
    if problem == "tsp":
        res = solver.solve(arrays["locs"], decode="greedy")
    else:
        if "demand" in arrays:
            arrays["capacity"] = 1.0  # the paper's demands are already fractions of it
        if problem == "pctsp":
            del arrays["real_prize"]  # the deterministic variant has only one prize
        res = solver.solve(arrays, decode="greedy")
    assert res.feasible.all()
    kind, bench = _benchmark(problem, size, inst)
    ours = float(res.costs.mean())
    # Loose bounds (the shipped models' full-test-set numbers are in the README); they
    # catch a broken checkpoint, a wrong feature scaling or a mismatched problem.
    slack = 0.15 if kind == "reference" else 0.05
    if family(problem) == "op":
        assert ours >= (1 - slack) * bench
        if kind == "reference":
            assert ours <= bench * (1 + 1e-6)
    else:
        assert ours <= (1 + slack) * bench
        if kind == "reference":
            assert ours >= bench * (1 - 1e-6)


def test_decode_specs_parse_into_strategy_samples_and_augmentations() -> None:
    assert parse_decode("greedy") == ("greedy", 1, 1)
    assert parse_decode("multistart:8") == ("multistart", 1, 8)
    assert parse_decode("sample:1280") == ("sample", 1280, 1)
    assert parse_decode("sample:160:8") == ("sample", 160, 8)
    for bad in ("beam", "greedy:8:2", "sample:x", "multistart:", "sample:4:2:1"):
        with pytest.raises(ValueError, match="decode spec"):
            parse_decode(bad)


def test_bench_decodes_with_the_parsed_samples_and_augmentations(monkeypatch) -> None:
    import problems.bench

    calls = []

    def recording_decode(model, inst, strategy, **kwargs):
        assert isinstance(kwargs["generator"], torch.Generator)
        calls.append((strategy, {k: v for k, v in kwargs.items() if k != "generator"}))
        return real_decode(model, inst, strategy, **kwargs)

    real_decode = problems.bench.decode
    monkeypatch.setattr(problems.bench, "decode", recording_decode)
    inst = paper_test_set("cvrp", 20, 4)
    rows, _ = compare(load_solver("cvrp20"), "cvrp", inst, ["sample:4:8", "multistart:2"],
                      heuristics=False, cache=None, ref_seconds=0)
    assert calls == [("sample", {"samples": 4, "augment": 8}),
                     ("multistart", {"samples": 1, "augment": 2})]
    assert [row[0] for row in rows] == ["model sample x8 aug (4 samples)",
                                        "model multistart x2 aug"]


def test_bench_sampled_rows_repeat_with_their_seed() -> None:
    inst = paper_test_set("op_dist", 20, 16)
    solver = load_solver("op_dist20")
    rows = [compare(solver, "op_dist", inst, ["sample:2"], heuristics=False, cache=None,
                    ref_seconds=0, seed=seed)[1]["model sample (2 samples)"] for seed in (0, 0, 1)]
    np.testing.assert_array_equal(rows[0], rows[1])
    assert not np.array_equal(rows[0], rows[2])
