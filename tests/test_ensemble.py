"""Ensemble targets against hand-computed ones, exact resume, and learning CartPole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distributional.c51 import C51, c51_targets, make_network
from distributional.categorical import Support
from distributional.ensemble import mixture_act, mixture_targets
from distributional.train import TrainConfig, train
from rlcore.buffers import ReplaySample

SUPPORT = Support(0.0, 4.0, 5)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: extra threads only fight over the shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fixed_agent(atoms_per_action: list[int]) -> C51:
    """An agent whose networks put all mass of action a on atom ``atoms_per_action[a]``."""
    net = make_network((1,), len(atoms_per_action), 5, hidden=(4,))
    bias = torch.zeros(len(atoms_per_action), 5)
    for a, j in enumerate(atoms_per_action):
        bias[a, j] = 40.0  # softmax leaves e^-40 elsewhere: one-hot to float precision
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(bias.flatten())
    agent = C51(net, SUPPORT)
    agent.sync_target()
    return agent


def batch(returns: list[float], discounts: list[float]) -> ReplaySample:
    n = len(returns)
    return ReplaySample(obs=torch.zeros(n, 1), actions=torch.zeros(n, dtype=torch.long),
                        returns=torch.tensor(returns), discounts=torch.tensor(discounts),
                        next_obs=torch.zeros(n, 1), steps=torch.ones(n, dtype=torch.long))


def test_mixture_target_by_hand() -> None:
    """A: action 0 -> 0, action 1 -> 1; B: action 0 -> 4, action 1 -> 2.

    On their own A would bootstrap from action 1 (mean 1) and B from action 0
    (mean 4). The mixture's means are 2 and 1.5, so both bootstrap from action 0
    of the mixture, 0.5 on atom 0 and 0.5 on atom 4.
    """
    a, b = fixed_agent([0, 1]), fixed_agent([4, 2])
    batches = [batch([0.0, 1.0], [1.0, 0.5]), batch([0.0, 0.0], [1.0, 0.0])]
    own = c51_targets([a, b], batches)
    mixed = mixture_targets([a, b], batches)
    assert torch.allclose(own[0][0], torch.tensor([0, 1.0, 0, 0, 0]))
    assert torch.allclose(own[1][0], torch.tensor([0, 0, 0, 0, 1.0]))
    assert torch.allclose(mixed[0][0], torch.tensor([0.5, 0, 0, 0, 0.5]))
    # 1 + 0.5 * {0, 4} = {1, 3}
    assert torch.allclose(mixed[0][1], torch.tensor([0, 0.5, 0, 0.5, 0]))
    assert torch.allclose(mixed[1][0], torch.tensor([0.5, 0, 0, 0, 0.5]))
    # A terminal transition ignores the mixture: all mass at the reward 0.
    assert torch.allclose(mixed[1][1], torch.tensor([1.0, 0, 0, 0, 0]))
    assert mixture_act([a, b], torch.zeros(3, 1)).tolist() == [0, 0, 0]


def test_mixture_target_with_one_member_is_the_c51_target() -> None:
    torch.manual_seed(0)
    agent = C51(make_network((3,), 4, 5, hidden=(16,)), SUPPORT)
    g = torch.Generator().manual_seed(1)
    sample = ReplaySample(
        obs=torch.randn(64, 3, generator=g), actions=torch.randint(0, 4, (64,), generator=g),
        returns=torch.randn(64, generator=g), discounts=torch.rand(64, generator=g),
        next_obs=torch.randn(64, 3, generator=g), steps=torch.ones(64, dtype=torch.long))
    assert torch.equal(mixture_targets([agent], [sample])[0], c51_targets([agent], [sample])[0])


def test_bad_ensembles() -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        mixture_targets([], [])
    with pytest.raises(ValueError, match="one batch per member"):
        mixture_targets([fixed_agent([0])], [])
    odd = C51(make_network((1,), 1, 7, hidden=(4,)), Support(0.0, 1.0, 7))
    with pytest.raises(ValueError, match="share one support"):
        mixture_targets([fixed_agent([0]), odd], [batch([0.0], [1.0])] * 2)


def small(run_dir, **kw) -> TrainConfig:
    base = dict(env_id="CartPole-v1", agent="ensemble", members=2, total_steps=800,
                learning_starts=100, target_update=50, hidden="16", buffer_size=1000,
                eval_every=0, eval_episodes=2, checkpoint_every=0, log_every=200,
                run_dir=str(run_dir))
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("agent, members", [("ensemble", 2), ("c51", 1)])
def test_resume_is_bit_for_bit(tmp_path, agent, members) -> None:
    """800 environment steps straight equal 400 + checkpoint + resume + 400."""
    straight = train(small(tmp_path / "a", agent=agent, members=members))
    train(small(tmp_path / "b", agent=agent, members=members, total_steps=400))
    torch.manual_seed(123)
    np.random.seed(123)  # whatever happens in between must not matter
    resumed = train(small(tmp_path / "b", agent=agent, members=members, resume=True))
    assert resumed == straight
    expected = {f"eval/return_member{i}" for i in range(members)} | {"eval/return_member_mean"}
    assert set(straight) == expected | ({"eval/return_ensemble"} if members > 1 else set())
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for ma, mb in zip(a["members"], b["members"], strict=True):
        for key, value in ma["agent"]["online"].items():
            assert torch.equal(value, mb["agent"]["online"][key]), key
        assert np.array_equal(ma["buffer"]["frames"], mb["buffer"]["frames"])
    assert np.array_equal(a["obs"], b["obs"])


def test_resume_with_another_config_is_refused(tmp_path) -> None:
    train(small(tmp_path, total_steps=200))
    with pytest.raises(ValueError, match="another config"):
        train(small(tmp_path, total_steps=400, lr=0.5, resume=True))


def test_ensemble_learns_cartpole(tmp_path) -> None:
    """Five members, 15k environment steps in total (3k each), about a minute on one core."""
    result = train(TrainConfig(env_id="CartPole-v1", agent="ensemble", members=5,
                               total_steps=15_000, eval_every=0, eval_episodes=5,
                               checkpoint_every=0, run_dir=str(tmp_path)))
    assert result["eval/return_ensemble"] >= 150, result
    assert result["eval/return_member_mean"] >= 100, result
