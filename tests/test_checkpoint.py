"""Checkpoints: atomic writes, RNG restore, and exact resume of a training run."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rlcore import load_checkpoint, save_checkpoint
from tests.conftest import load_example

demo = load_example("reinforce_demo")


def small_config(run_dir, **kw):
    base = dict(nodes=6, batch_size=32, batches_per_epoch=4, epochs=4, eval_size=64,
                test_size=50, hidden=16, run_dir=str(run_dir))
    return demo.DemoConfig(**{**base, **kw})


def test_save_and_load_round_trip_restores_rng(tmp_path) -> None:
    path = tmp_path / "sub" / "ck.pt"
    torch.manual_seed(3)
    save_checkpoint(path, {"weights": torch.arange(3), "step": 7})
    expected = (torch.rand(2), np.random.rand(), random.random())
    torch.manual_seed(99)
    state = load_checkpoint(path)
    assert state["step"] == 7 and torch.equal(state["weights"], torch.arange(3))
    got = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_failed_write_keeps_the_previous_checkpoint(tmp_path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(path, {"step": 2, "bad": Unpicklable()})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_bad_checkpoint_input(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"x": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(TypeError, match="state"):
        save_checkpoint(tmp_path / "a.pt", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rng"):
        save_checkpoint(tmp_path / "a.pt", {"rng": 1})


def test_resume_is_bit_for_bit(tmp_path) -> None:
    """N epochs straight equal N/2 epochs + save + load + N/2 epochs (greedy-rollout baseline)."""
    straight = demo.train(small_config(tmp_path / "straight"))
    demo.train(small_config(tmp_path / "split", epochs=2))
    torch.manual_seed(12345)  # whatever happens in between must not matter
    resumed = demo.train(small_config(tmp_path / "split", resume=True))
    assert resumed == straight
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    for key in a["policy"]:
        assert torch.equal(a["policy"][key], b["policy"][key]), key
    assert a["baseline"]["replacements"] == b["baseline"]["replacements"]
    assert torch.equal(a["baseline"]["eval_costs"], b["baseline"]["eval_costs"])


def test_resume_with_another_config_is_refused(tmp_path) -> None:
    demo.train(small_config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="another config"):
        demo.train(small_config(tmp_path, epochs=2, lr=0.5, resume=True))
