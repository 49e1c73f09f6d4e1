"""`python -m problems.soup`: the greedy soup keeps only the ingredients that help."""

from __future__ import annotations

import pytest
import torch

from problems import load_solver
from problems.bench import compare
from problems.data import paper_dataset
from problems.solver import PRETRAINED_DIR
from problems.soup import greedy_soup, main


def test_greedy_soup_adds_best_first_and_keeps_what_helps() -> None:
    calls = []

    def score(xs: list[float]) -> float:
        calls.append(list(xs))
        return -(sum(xs) / len(xs) - 3.0) ** 2

    soup, best, alone, steps = greedy_soup([2.0, 4.5, 3.9, 0.0], score)
    assert alone == pytest.approx([-1.0, -2.25, -0.81, -9.0])
    assert soup == [3.9, 2.0]  # 3.9 alone: -0.81; with 2.0: mean 2.95, -0.0025
    assert best == pytest.approx(-0.0025)
    assert [(c, kept) for c, _, kept in steps] == [(3.9, True), (2.0, True), (4.5, False),
                                                   (0.0, False)]
    assert steps[2][1] == pytest.approx(-((3.9 + 2.0 + 4.5) / 3 - 3.0) ** 2)
    assert calls[4:] == [[3.9, 2.0], [3.9, 2.0, 4.5], [3.9, 2.0, 0.0]]
    with pytest.raises(ValueError, match="candidates"):
        greedy_soup([], score)


def test_soup_cli_writes_the_mean_of_the_kept_checkpoints(tmp_path, capsys) -> None:
    shipped = torch.load(PRETRAINED_DIR / "tsp20.pt", weights_only=False)
    torch.manual_seed(0)
    # An exact copy ties with the model alone, so it joins; heavy noise must hurt.
    # BatchNorm's running variances stay positive: only the learned weights move.
    noisy = {k: v if "running" in k or not v.is_floating_point() else v + torch.randn_like(v)
             for k, v in shipped["model"].items()}
    paths = [str(PRETRAINED_DIR / "tsp20.pt"), str(tmp_path / "noisy.pt"), str(tmp_path / "copy.pt")]
    torch.save({**shipped, "model": noisy}, paths[1])
    torch.save(shipped, paths[2])
    out = tmp_path / "soup.pt"
    main(["--problem", "tsp", "--size", "20", "--num", "30", "--data-seed", "7", "--uniform",
          "--out", str(out), *paths])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "TSP20, greedy on 30 instances (seed 7); lower is better"
    alone = {line.split()[2]: float(line.split()[1]) for line in lines if "alone" in line}
    steps = [line.split() for line in lines if line.startswith("  soup")]
    inst = paper_dataset("tsp", 30, 20, 7)

    def mean(path_or_paths: str | list[str]) -> float:
        rows, _ = compare(load_solver(path_or_paths), "tsp", inst, ["greedy"], heuristics=False,
                          cache=None, ref_seconds=0)
        return rows[0][1]

    assert alone[paths[0]] == pytest.approx(mean(paths[0]), abs=1e-4)
    assert alone[paths[1]] > 1.5 * alone[paths[0]]
    assert [(s[3], s[-1]) for s in steps] == [(paths[0], "kept"), (paths[2], "kept"),
                                              (paths[1], "dropped")]
    assert lines[-1].startswith(f"wrote {out}: the mean of 2 of 3 checkpoints")
    assert float(lines[-1].split()[-1]) == pytest.approx(mean(str(out)), abs=1e-4)
    assert float(lines[-1].split()[-1]) == pytest.approx(alone[paths[0]], abs=1e-4)
    assert float(next(line for line in lines if "mean of all" in line).split()[1]) == \
        pytest.approx(mean(paths), abs=1e-4)
    provenance = torch.load(out, weights_only=False)["provenance"]
    assert provenance["command"].startswith("python -m problems.soup --problem tsp")
    assert provenance["selection"]["data_seed"] == 7
    assert [o["checkpoint"] for o in provenance["soup_of"]] == [paths[0], paths[2]]


def test_soup_cli_rejects_mixed_models(tmp_path) -> None:
    with pytest.raises(ValueError, match="size"):
        main(["--problem", "tsp", "--size", "20", "--num", "5", "--out", str(tmp_path / "x.pt"),
              str(PRETRAINED_DIR / "tsp20.pt"), str(PRETRAINED_DIR / "tsp50.pt")])
