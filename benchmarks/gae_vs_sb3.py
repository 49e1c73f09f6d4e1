"""GAE: rlcore.gae against stable-baselines3's RolloutBuffer, same data, one run.

    python benchmarks/gae_vs_sb3.py [--steps 128] [--envs 2048] [--repeats 50]

Both compute GAE(lambda) advantages and returns over a (T, N) float32 rollout
on the CPU with one thread (SB3's loop is NumPy, ours torch). Prints the median
time of each, the speed ratio (SB3 time / ours; target >= 1) and the largest
absolute difference of advantages and returns (target <= 1e-6).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from timing import median_seconds

from rlcore import gae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=128, help="rollout length T")
    parser.add_argument("--envs", type=int, default=2048, help="parallel environments N")
    parser.add_argument("--repeats", type=int, default=50, help="timed repetitions (median)")
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--lam", type=float, default=0.95)
    parser.add_argument("--done-prob", type=float, default=0.02, help="chance an episode ends at a step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    T, N = args.steps, args.envs

    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    dones = rng.random((T, N)) < args.done_prob  # ours: episode ended at step t
    last_value = rng.normal(size=N).astype(np.float32)

    buf = RolloutBuffer(T, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), device="cpu",
                        gae_lambda=args.lam, gamma=args.gamma, n_envs=N)
    buf.rewards[:] = rewards
    buf.values[:] = values
    # SB3 marks the first step of an episode: episode_starts[t + 1] = dones[t].
    buf.episode_starts[1:] = dones[:-1]
    last_t, dones_last = torch.from_numpy(last_value), dones[-1]

    r_t, v_t, d_t = torch.from_numpy(rewards), torch.from_numpy(values), torch.from_numpy(dones)
    adv, ret = gae(r_t, v_t, d_t, last_t, args.gamma, args.lam)
    buf.compute_returns_and_advantage(last_t, dones_last)
    adv_diff = float(np.abs(adv.numpy() - buf.advantages).max())
    ret_diff = float(np.abs(ret.numpy() - buf.returns).max())

    t_sb3 = median_seconds(lambda: buf.compute_returns_and_advantage(last_t, dones_last), args.repeats)
    t_ours = median_seconds(lambda: gae(r_t, v_t, d_t, last_t, args.gamma, args.lam), args.repeats)

    print(f"GAE over T={T}, N={N} (float32, 1 thread, median of {args.repeats})")
    print(f"  stable-baselines3 RolloutBuffer: {1e3 * t_sb3:8.3f} ms")
    print(f"  rlcore.gae                     : {1e3 * t_ours:8.3f} ms")
    print(f"  speed ratio (SB3 / ours)       : {t_sb3 / t_ours:8.2f}x   (target >= 1)")
    print(f"  max |advantage difference|     : {adv_diff:.2e}   (target <= 1e-6)")
    print(f"  max |return difference|        : {ret_diff:.2e}   (target <= 1e-6)")


if __name__ == "__main__":
    main()
