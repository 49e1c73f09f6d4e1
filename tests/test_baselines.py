"""REINFORCE baselines: exponential, critic, shared, none, and the greedy rollout with its t-test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlcore import (
    CriticBaseline,
    ExponentialBaseline,
    GreedyRolloutBaseline,
    NoBaseline,
    SharedBaseline,
    group_mean,
)
from rlcore.baselines import Baseline


class ToyPolicy(nn.Module):
    """Greedy cost of instance x: ``offset + x . w`` (w gives each model its own per-instance noise)."""

    def __init__(self, offset: float, w_seed: int = 0, dim: int = 4) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(w_seed)
        self.offset = nn.Parameter(torch.tensor(offset))
        self.w = nn.Parameter(0.5 * torch.randn(dim, generator=gen))


def toy_rollout(model: ToyPolicy, batch: torch.Tensor) -> torch.Tensor:
    return model.offset + batch @ model.w


def toy_eval_set(size: int, seed: int) -> torch.Tensor:
    return torch.randn(size, 4, generator=torch.Generator().manual_seed(seed))


def make_rollout_baseline(policy: nn.Module, **kw) -> GreedyRolloutBaseline:
    return GreedyRolloutBaseline(
        policy, toy_rollout, toy_eval_set, eval_size=500, batch_size=128, seed=7, **kw
    )


def test_every_baseline_satisfies_the_protocol() -> None:
    policy = ToyPolicy(1.0)
    for b in (NoBaseline(), ExponentialBaseline(), SharedBaseline(),
              CriticBaseline(nn.Linear(4, 1)), make_rollout_baseline(policy)):
        assert isinstance(b, Baseline)


def test_no_baseline_is_zero() -> None:
    value, loss = NoBaseline().eval(None, torch.tensor([1.0, 2.0]))
    assert torch.equal(value, torch.zeros(2)) and float(loss) == 0.0


def test_exponential_baseline_by_hand() -> None:
    b = ExponentialBaseline(beta=0.8)
    v1, _ = b.eval(None, torch.tensor([1.0, 3.0]))  # first batch: its mean, 2
    assert torch.allclose(v1, torch.tensor([2.0, 2.0]))
    v2, _ = b.eval(None, torch.tensor([4.0, 6.0]))  # 0.8 * 2 + 0.2 * 5 = 2.6
    assert torch.allclose(v2, torch.tensor([2.6, 2.6]))
    restored = ExponentialBaseline(beta=0.5)
    restored.load_state_dict(b.state_dict())
    v3, _ = restored.eval(None, torch.tensor([0.0]))  # 0.8 * 2.6 + 0.2 * 0 = 2.08
    assert torch.allclose(v3, torch.tensor([2.08]))


def test_shared_baseline_is_group_mean() -> None:
    cost = torch.tensor([[1.0, 2.0, 6.0], [4.0, 4.0, 1.0]])
    value, loss = SharedBaseline().eval(None, cost)
    assert torch.allclose(value, torch.tensor([[3.0] * 3, [3.0] * 3]))
    assert torch.allclose(cost - value, group_mean(cost))
    with pytest.raises(ValueError, match="cost"):
        SharedBaseline().eval(None, torch.ones(3))


def test_critic_baseline_learns_the_cost() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    b = CriticBaseline(critic)
    opt = torch.optim.Adam(b.parameters(), lr=0.05)
    x = torch.randn(256, 2)
    cost = 3.0 * x[:, 0] - x[:, 1] + 1.0
    first = None
    for _ in range(300):
        value, loss = b.eval(x, cost)
        assert not value.requires_grad and loss.requires_grad
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first
    assert torch.allclose(loss, nn.functional.mse_loss(critic(x), cost))


def test_rollout_baseline_warms_up_with_exponential() -> None:
    b = make_rollout_baseline(ToyPolicy(5.0))
    value, _ = b.eval(None, torch.tensor([1.0, 3.0]))  # epoch 0: exponential, first batch mean
    assert torch.allclose(value, torch.tensor([2.0, 2.0]))
    b.epoch_callback(ToyPolicy(5.0), epoch=0)
    batch = toy_eval_set(3, 99)
    value, loss = b.eval(batch, torch.zeros(3))  # afterwards: the frozen model's greedy cost
    assert torch.allclose(value, toy_rollout(ToyPolicy(5.0), batch))
    assert not value.requires_grad and float(loss) == 0.0


def test_clearly_better_candidate_replaces_the_baseline() -> None:
    policy = ToyPolicy(5.0, w_seed=0)
    b = make_rollout_baseline(policy)
    old_eval_set = b.eval_set.clone()
    candidate = ToyPolicy(4.0, w_seed=1)  # mean cost 1 lower, different per-instance noise
    metrics = b.epoch_callback(candidate, epoch=0)
    assert metrics["baseline/replaced"] == 1.0 and metrics["baseline/p_value"] < 0.05
    assert torch.equal(b.model.offset.data, torch.tensor(4.0))
    assert not torch.equal(b.eval_set, old_eval_set)  # a fresh evaluation set is drawn
    assert torch.allclose(b.eval_costs, toy_rollout(candidate, b.eval_set).double().detach())
    candidate.offset.data.fill_(0.0)  # the frozen copy is a copy
    assert torch.equal(b.model.offset.data, torch.tensor(4.0))
    assert all(not p.requires_grad for p in b.model.parameters())


def test_candidate_that_is_not_significantly_better_does_not_replace() -> None:
    b = make_rollout_baseline(ToyPolicy(5.0, w_seed=0))
    # Mean improvement of 0.001 under per-instance noise of std ~1: not significant.
    metrics = b.epoch_callback(ToyPolicy(4.999, w_seed=1), epoch=0)
    assert metrics["baseline/replaced"] == 0.0 and metrics["baseline/p_value"] >= 0.05
    # A worse candidate is never tested, never replaces.
    metrics = b.epoch_callback(ToyPolicy(6.0, w_seed=0), epoch=1)
    assert metrics["baseline/replaced"] == 0.0 and metrics["baseline/p_value"] == 1.0
    assert torch.equal(b.model.offset.data, torch.tensor(5.0))


def test_rollout_baseline_state_round_trip() -> None:
    b = make_rollout_baseline(ToyPolicy(5.0))
    b.eval(None, torch.tensor([2.0]))
    b.epoch_callback(ToyPolicy(3.0, w_seed=2), epoch=0)
    fresh = make_rollout_baseline(ToyPolicy(9.0))
    fresh.load_state_dict(b.state_dict())
    assert fresh.replacements == b.replacements == 1 and fresh.epochs_done == 1
    assert torch.equal(fresh.eval_set, b.eval_set)
    assert torch.equal(fresh.eval_costs, b.eval_costs)
    batch = toy_eval_set(5, 3)
    assert torch.equal(fresh.eval(batch, torch.zeros(5))[0], b.eval(batch, torch.zeros(5))[0])


def test_rollout_baseline_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    b = make_rollout_baseline(ToyPolicy(5.0))
    b.epoch_callback(ToyPolicy(1.0, w_seed=3), epoch=0)
    assert torch.equal(torch.rand(3), expected)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="beta"):
        ExponentialBaseline(beta=1.5)
    with pytest.raises(TypeError, match="critic"):
        CriticBaseline(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy"):
        GreedyRolloutBaseline(object(), toy_rollout, toy_eval_set)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        make_rollout_baseline(ToyPolicy(1.0), alpha=2.0)
    with pytest.raises(ValueError, match="cost"):
        ExponentialBaseline().eval(None, torch.tensor([float("nan")]))
