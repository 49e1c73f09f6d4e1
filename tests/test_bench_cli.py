"""`python -m problems.bench` reads the instances it names: the test set, or fresh ones."""

from __future__ import annotations

import sys

import pytest

from problems import load_solver
from problems.bench import compare, main
from problems.data import paper_dataset


def _greedy_row(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> tuple[str, float]:
    monkeypatch.setattr(sys, "argv", ["bench", "--problem", "tsp", "--num", "20", "--decodes",
                                      "greedy", "--no-heuristics", "--ref-seconds", "0", *argv])
    main()
    lines = capsys.readouterr().out.splitlines()
    greedy = next(line for line in lines if "model greedy" in line)
    return lines[0], float(greedy.split()[2])


def test_data_seed_benches_fresh_instances(monkeypatch, capsys) -> None:
    title, value = _greedy_row(["--data-seed", "7"], monkeypatch, capsys)
    assert title == "TSP20, 20 fresh instances (seed 7)"
    rows, _ = compare(load_solver("tsp20"), "tsp", paper_dataset("tsp", 20, 20, 7), ["greedy"],
                      heuristics=False, cache=None, ref_seconds=0)
    assert value == pytest.approx(rows[0][1], abs=1e-4)
    test_title, test_value = _greedy_row([], monkeypatch, capsys)
    assert test_title == "TSP20, 20 test instances (seed 1234)"
    assert test_value != pytest.approx(value, abs=1e-3)


def test_against_prints_the_paired_difference(monkeypatch, capsys) -> None:
    _, ours = _greedy_row(["--data-seed", "7"], monkeypatch, capsys)
    _, theirs = _greedy_row(["--data-seed", "7", "--solver", "tsp50"], monkeypatch, capsys)
    monkeypatch.setattr(sys, "argv", ["bench", "--problem", "tsp", "--num", "20", "--decodes",
                                      "greedy", "--no-heuristics", "--ref-seconds", "0",
                                      "--data-seed", "7", "--against", "tsp50"])
    main()
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("  paired difference, model greedy, minus tsp50: ")
    mean, err = float(last.split()[-5]), float(last.split()[-3])
    assert mean == pytest.approx(ours - theirs, abs=2e-4)
    assert 0 < err < abs(ours)


def test_several_data_seeds_pool_their_instances(monkeypatch, capsys) -> None:
    _, a = _greedy_row(["--data-seed", "7"], monkeypatch, capsys)
    _, b = _greedy_row(["--data-seed", "8"], monkeypatch, capsys)
    title, pooled = _greedy_row(["--data-seed", "7", "8"], monkeypatch, capsys)
    assert title == "TSP20, 40 fresh instances (seeds 7, 8, 20 each)"
    assert pooled == pytest.approx((a + b) / 2, abs=2e-4)
