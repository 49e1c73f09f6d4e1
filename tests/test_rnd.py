"""RND: novelty falls where the predictor has trained and stays high elsewhere; reward scaling;
PPO-RND finds a sparse reward that PPO alone misses."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from exploration.agent import AgentConfig, train
from exploration.envs import ChainEnv
from exploration.rnd import RND
from rlcore import DiscountedReturnFilter


def _train_predictor(rnd: RND, seen: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-3)
    for _ in range(steps):
        loss, _ = rnd.loss(seen)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_novelty_falls_for_seen_states_and_stays_high_for_unseen() -> None:
    torch.manual_seed(0)
    rnd = RND((16,), num_envs=1, proportion=1.0)
    seen = torch.randn(32, 16)
    unseen = torch.randn(32, 16) + 3.0  # another region of observation space
    rnd.update_obs_stats(torch.cat([seen, unseen]))
    before_seen, before_unseen = rnd.novelty(seen).mean(), rnd.novelty(unseen).mean()
    _train_predictor(rnd, seen, 300)
    after_seen, after_unseen = rnd.novelty(seen).mean(), rnd.novelty(unseen).mean()
    assert after_seen < 0.05 * before_seen
    assert after_unseen > 0.3 * before_unseen
    assert after_unseen > 10 * after_seen


def test_novelty_on_frames_uses_the_newest_frame_normalised_and_clipped() -> None:
    torch.manual_seed(0)
    rnd = RND((4, 84, 84), num_envs=2)
    stacks = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8)
    newest = rnd.select(stacks)
    assert newest.shape == (6, 1, 84, 84) and torch.equal(newest[:, 0], stacks[:, 3])
    rnd.update_obs_stats(newest)
    x = rnd._normalized(torch.full((1, 1, 84, 84), 10_000.0))
    assert float(x.max()) == 5.0
    seen, unseen = newest[:3], torch.zeros(3, 1, 84, 84, dtype=torch.uint8)
    rnd.proportion = 1.0
    start = rnd.novelty(seen).mean()
    _train_predictor(rnd, seen, 40)
    assert rnd.novelty(seen).mean() < 0.2 * start
    assert rnd.novelty(unseen).mean() > 3 * rnd.novelty(seen).mean()


def test_predictor_trains_on_the_given_proportion() -> None:
    torch.manual_seed(0)
    rnd = RND((4,), num_envs=1, proportion=0.25)
    counts = []
    original = rnd._errors

    def counting(obs):
        counts.append(obs.shape[0])
        return original(obs)

    rnd._errors = counting
    for _ in range(200):
        rnd.loss(torch.randn(64, 4))
    assert np.mean(counts) == pytest.approx(16, rel=0.1)
    with pytest.raises(ValueError, match="proportion"):
        RND((4,), num_envs=1, proportion=0.0)
    with pytest.raises(ValueError, match="obs_shape"):
        RND((4, 4), num_envs=1)


def test_intrinsic_reward_is_scaled_by_the_std_of_the_discounted_return_over_time() -> None:
    rnd = RND((4,), num_envs=2, gamma=0.9)
    rewards = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 10.0]])
    scaled = rnd.scale(rewards)
    ref = DiscountedReturnFilter(2, 0.9)
    std = ref.update(rewards)
    assert torch.allclose(scaled, rewards / std.float())
    # The filter runs over time per environment: env 0's return is 1, 2.9, 5.61.
    assert torch.allclose(ref.returns, torch.tensor([5.61, 10.0], dtype=torch.float64))
    state = rnd.state_dict()
    other = RND((4,), num_envs=2, gamma=0.9)
    other.load_state_dict(state)
    assert torch.equal(other.reward_filter.returns, rnd.reward_filter.returns)


def test_chain_env_is_a_combination_lock() -> None:
    env = gym.make("exploration/Chain-v0")
    obs, _ = env.reset(seed=0)
    inner = env.unwrapped
    assert isinstance(inner, ChainEnv) and obs.argmax() == 0
    total, steps, done = 0.0, 0, False
    while not done:  # the right action in every cell reaches the reward
        obs, reward, term, trunc, _ = env.step(int(inner._right[inner.position]))
        total, steps, done = total + reward, steps + 1, term or trunc
    assert term and total == 1.0 and steps == inner.length - 1
    env.reset()
    env.step(int(inner._right[0]))
    obs, *_ = env.step(1 - int(inner._right[1]))  # a wrong action sends it back to the start
    assert obs.argmax() == 0


def _chain(algo: str, seed: int, steps: int, run_dir) -> float:
    cfg = AgentConfig(env="exploration/Chain-v0", algo=algo, num_envs=8, num_steps=64,
                      total_steps=steps, lr=1e-3, gamma=0.99, clip=0.2, ent_coef=0.01,
                      anneal_lr=False, rnd_init_steps=16, seed=seed, torch_threads=1,
                      checkpoint_every=1000, run_dir=str(run_dir / f"{algo}{seed}"))
    return train(cfg)["best_return"]


def test_rnd_reaches_the_sparse_reward_where_ppo_alone_does_not(tmp_path) -> None:
    """Same budget (24k steps, about 600 episodes), three seeds each."""
    budget = 24_576
    assert [_chain("rnd", s, budget, tmp_path) for s in range(3)] == [1.0, 1.0, 1.0]
    assert [_chain("ppo", s, budget, tmp_path) for s in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.slow
def test_rnd_reaches_the_sparse_reward_over_more_seeds(tmp_path) -> None:
    budget = 40_960
    assert [_chain("rnd", s, budget, tmp_path) for s in range(3, 8)] == [1.0] * 5
    assert [_chain("ppo", s, budget, tmp_path) for s in range(3, 8)] == [0.0] * 5
