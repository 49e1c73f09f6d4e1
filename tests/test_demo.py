"""The demo trains a REINFORCE policy that clearly beats random tours, in seconds."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, load_example

demo = load_example("reinforce_demo")


def test_optimal_cost_by_enumeration_on_a_square() -> None:
    square = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    assert torch.allclose(demo.optimal_cost(square), torch.tensor([4.0]))
    tour = torch.tensor([[0, 1, 2, 3]])  # crosses the diagonals: 2 * sqrt(2) + 2
    assert torch.allclose(demo.tour_cost(square, tour), torch.tensor([2 * 2**0.5 + 2]))


@pytest.mark.parametrize("baseline", ["rollout", "exponential", "critic"])
def test_reinforce_with_a_baseline_learns(tmp_path, baseline) -> None:
    cfg = demo.DemoConfig(nodes=7, epochs=3, batches_per_epoch=15, eval_size=500,
                          test_size=300, baseline=baseline, run_dir=str(tmp_path))
    result = demo.train(cfg)
    random_gap = demo.random_gap(7, 300)
    assert random_gap > 0.4
    assert result["eval/gap"] < 0.10, result  # random tours: ~50 %
    assert (tmp_path / "checkpoint.pt").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())


def test_demo_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="nodes"):
        demo.DemoConfig(nodes=12)
    with pytest.raises(ValueError, match="lr"):
        demo.DemoConfig(lr=0.0)


def test_demo_help_explains_every_option() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "reinforce_demo.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--nodes", "--baseline", "--resume", "--run-dir", "--seed"):
        assert flag in out
