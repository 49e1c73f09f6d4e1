"""C51: it learns a small chain's return distributions exactly; networks and config checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distributional.c51 import C51, c51_targets, make_network
from distributional.categorical import Support
from distributional.plot import plot_distributions
from distributional.train import TrainConfig
from rlcore.buffers import ReplayBuffer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: extra threads only fight over the shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_c51_learns_a_deterministic_chain_exactly() -> None:
    """States 0 -> 1 -> 2 -> end, reward 1 per step, gamma 0.5, atoms 0, 0.5, ..., 2.

    The returns are 1.75, 1.5 and 1. C51's fixed point is the projection of the
    Bellman update: state 2 puts all mass on 1.0, state 1 on 1 + 0.5 * 1 = 1.5,
    and state 0 splits 1 + 0.5 * 1.5 = 1.75 half and half between 1.5 and 2.0.
    """
    torch.manual_seed(0)
    support = Support(0.0, 2.0, 5)
    agent = C51(make_network((3,), 2, 5, hidden=(32,)), support, lr=1e-2, adam_eps=1e-8)
    buf = ReplayBuffer(300, (3,), n_step=1, gamma=0.5)
    eye = np.eye(3, dtype=np.float32)
    rng = np.random.default_rng(0)
    for step in range(100):
        s = step % 3
        nxt = eye[s + 1] if s < 2 else eye[0]
        buf.add(eye[s][None], rng.integers(0, 2, 1), np.array([1.0]), np.array([s == 2]),
                np.array([False]), nxt[None])
    for step in range(600):
        batch = buf.sample(32)
        agent.learn(batch, c51_targets([agent], [batch])[0])
        if step % 20 == 0:
            agent.sync_target()
    probs = agent.probs(torch.from_numpy(eye))
    expected = torch.tensor([[0, 0, 0, 0.5, 0.5], [0, 0, 0, 1.0, 0], [0, 0, 1.0, 0, 0]])
    for action in range(2):
        assert torch.allclose(probs[:, action], expected, atol=0.02), probs[:, action]
    assert torch.allclose(support.mean(probs), torch.tensor([[1.75] * 2, [1.5] * 2, [1.0] * 2]),
                          atol=0.02)


def test_networks_for_vectors_grids_and_frames() -> None:
    mlp_net = make_network((4,), 2, 51, hidden=(64, 64))
    assert mlp_net(torch.zeros(3, 4)).shape == (3, 2, 51)
    grid_net = make_network((10, 10, 4), 3, 11)  # MinAtar: boolean grids, flattened
    assert grid_net(torch.zeros(2, 10, 10, 4, dtype=torch.bool)).shape == (2, 3, 11)
    cnn = make_network((4, 84, 84), 6, 51)
    assert cnn(torch.zeros(1, 4, 84, 84, dtype=torch.uint8)).shape == (1, 6, 51)


def test_act_is_epsilon_greedy_on_the_mean() -> None:
    support = Support(0.0, 2.0, 5)
    net = make_network((1,), 3, 5, hidden=(4,))
    with torch.no_grad():  # action 2's distribution sits at the top atom, the others at 0
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([30.0, 0, 0, 0, 0] * 2 + [0, 0, 0, 0, 30.0]))
    agent = C51(net, support)
    rng = np.random.default_rng(0)
    assert (agent.act(torch.zeros(100, 1), 0.0, rng) == 2).all()
    explored = agent.act(torch.zeros(3000, 1), 1.0, rng)
    assert np.bincount(explored, minlength=3).min() > 900


def test_bad_input_raises_value_errors() -> None:
    with pytest.raises(ValueError, match="v_min"):
        TrainConfig(v_min=5.0, v_max=5.0)
    with pytest.raises(ValueError, match="n_atoms"):
        TrainConfig(n_atoms=1)
    with pytest.raises(ValueError, match="members"):
        TrainConfig(agent="ensemble", members=0)
    with pytest.raises(ValueError, match="members must be 1 for agent c51"):
        TrainConfig(agent="c51", members=3)
    with pytest.raises(ValueError, match="hidden"):
        TrainConfig(hidden="64,x")
    with pytest.raises(ValueError, match="network has 5 atoms but support has 7"):
        C51(make_network((2,), 2, 5), Support(0.0, 1.0, 7))
    with pytest.raises(ValueError, match="lr"):
        C51(make_network((2,), 2, 5), Support(0.0, 1.0, 5), lr=0.0)


def test_presets_fill_only_unset_fields() -> None:
    atari = TrainConfig(env_id="ALE/Pong-v5", lr=1e-3).resolved()
    assert (atari.n_atoms, atari.v_min, atari.v_max) == (51, -10.0, 10.0)  # the C51 paper
    assert atari.lr == 1e-3 and atari.adam_eps == pytest.approx(0.01 / 32)
    assert TrainConfig(env_id="Acrobot-v1").resolved().v_min == -100.0


def test_plot_distributions_writes_a_png(tmp_path) -> None:
    support = Support(0.0, 2.0, 5)
    probs = {"member 0": torch.full((2, 5), 0.2), "ensemble": torch.eye(5)[:2]}
    path = plot_distributions(support, probs, tmp_path / "d.png", action_names=["left", "right"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="atoms"):
        plot_distributions(support, {"a": torch.zeros(2, 4)}, tmp_path / "e.png")
