"""Running statistics, seeding, logging and config parsing."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlcore import DiscountedReturnFilter, Logger, RunningMeanStd, seed_everything
from rlcore.config import option, parse_config, require


def test_running_mean_std_matches_numpy_over_batches() -> None:
    gen = np.random.default_rng(0)
    batches = [gen.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 100, 2)]
    rms = RunningMeanStd(shape=(3,), epsilon=1e-12)
    for b in batches:
        rms.update(torch.from_numpy(b).float())
    data = np.concatenate([b.astype(np.float32).astype(np.float64) for b in batches])
    assert rms.mean.dtype == torch.float64
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-9, atol=1e-9)
    x = torch.tensor([[100.0, -100.0, 3.0]])
    assert float(rms.normalize(x, clip=5.0).abs().max()) == 5.0
    with pytest.raises(ValueError, match="x"):
        rms.update(torch.ones(4, 2))


def test_running_mean_std_state_round_trip() -> None:
    rms = RunningMeanStd(())
    rms.update(torch.tensor([1.0, 2.0, 4.0]))
    other = RunningMeanStd(())
    other.load_state_dict(rms.state_dict())
    assert torch.equal(other.mean, rms.mean) and other.count == rms.count


def test_discounted_return_filter_runs_over_time_per_environment() -> None:
    f = DiscountedReturnFilter(num_envs=2, gamma=0.5)
    rewards = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, 0.0]])  # (T=3, N=2)
    f.update(rewards)
    # env 0: R = 1, 1.5, 1.75; env 1: R = 0, 2, 1   (over time, not across envs)
    expected = np.array([1.0, 1.5, 1.75, 0.0, 2.0, 1.0])
    assert torch.allclose(f.returns, torch.tensor([1.75, 1.0], dtype=torch.float64))
    np.testing.assert_allclose(float(f.rms.mean), expected.mean(), rtol=1e-3)
    np.testing.assert_allclose(float(f.rms.std), expected.std(), rtol=1e-3)
    g = DiscountedReturnFilter(num_envs=1, gamma=0.5)
    g.update(torch.tensor([[1.0], [1.0]]), dones=torch.tensor([[1], [0]]))
    assert float(g.returns[0]) == 1.0  # reset after the done at t=0: R = 1 then 1
    with pytest.raises(ValueError, match="rewards"):
        f.update(torch.ones(3, 5))
    with pytest.raises(ValueError, match="gamma"):
        DiscountedReturnFilter(2, gamma=1.2)


def test_seed_everything_is_reproducible_and_zero_is_a_seed() -> None:
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(0)
    a = draw()
    seed_everything(0)
    assert draw() == a
    seed_everything(1)
    assert draw() != a
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)  # type: ignore[arg-type]


def test_logger_writes_tensorboard_and_csv(tmp_path) -> None:
    with Logger(tmp_path, config={"lr": 0.1, "name": "x"}) as log:
        log.log({"train/cost": 1.5, "time/sps": 10.0}, step=1)
        log.log({"train/cost": 1.0}, step=2)
        with pytest.raises(ValueError, match="prefix"):
            log.log({"cost": 1.0}, step=3)
        with pytest.raises(ValueError, match="prefix"):
            log.log({"unknown/cost": 1.0}, step=3)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"train/cost", "time/sps"} <= set(acc.Tags()["scalars"])
    assert [e.value for e in acc.Scalars("train/cost")] == [1.5, 1.0]
    rows = (tmp_path / "progress.csv").read_text().strip().splitlines()
    assert rows[0] == "step,tag,value,wall_time" and len(rows) == 4
    assert '"lr": 0.1' in (tmp_path / "config.json").read_text()


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    """A toy config."""

    steps: int = option(10, "number of steps")
    lr: float = option(0.1, "learning rate")
    mode: Literal["a", "b"] = option("a", "which mode")
    name: str | None = option(None, "optional name")
    fast: bool = option(False, "go fast")

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", ">= 1", self.steps)


def test_parse_config_builds_a_cli_from_the_dataclass(capsys) -> None:
    cfg = parse_config(ToyConfig, ["--steps", "3", "--mode", "b", "--fast", "--name", "run"])
    assert cfg == ToyConfig(steps=3, mode="b", fast=True, name="run")
    assert parse_config(ToyConfig, []) == ToyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 4  # type: ignore[misc]
    with pytest.raises(SystemExit):
        parse_config(ToyConfig, ["--mode", "c"])
    with pytest.raises(SystemExit):
        parse_config(ToyConfig, ["--help"])
    out = capsys.readouterr().out
    assert "number of steps" in out and "--no-fast" in out
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        parse_config(ToyConfig, ["--steps", "0"])
