"""Gymnasium environments: masked random play gives feasible solutions and returns that add up."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import problems  # noqa: F401 - registers the environments
from problems.envs import ENV_IDS


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_masked_random_play_is_feasible_and_returns_add_up(env_id) -> None:
    env = gym.make(f"problems/{env_id}", size=10)
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        assert env.observation_space.contains(obs)
        total, done, steps = 0.0, False, 0
        while not done:
            allowed = np.flatnonzero(env.unwrapped.action_masks())
            obs, reward, done, truncated, info = env.step(int(rng.choice(allowed)))
            total += reward
            steps += 1
            assert not truncated and steps < 100
        inner = env.unwrapped
        tours = torch.tensor([[inner._actions]])
        inner.problem.check(inner._inst, tours)
        empty = float(inner.problem.cost(inner._inst, torch.zeros(1, 1, 1, dtype=torch.long)))
        assert total == pytest.approx(empty - info["cost"], abs=1e-5)


def test_a_forbidden_action_is_refused() -> None:
    env = gym.make("problems/TSP-v0", size=5)
    env.reset(seed=0)
    env.step(2)
    with pytest.raises(ValueError, match="not allowed"):
        env.step(2)
    with pytest.raises(ValueError, match="size"):
        gym.make("problems/TSP-v0", size=2)


def test_maskable_ppo_runs_on_the_environment() -> None:
    contrib = pytest.importorskip("sb3_contrib")
    env = gym.make("problems/CVRP-v0", size=5)
    model = contrib.MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(128)
