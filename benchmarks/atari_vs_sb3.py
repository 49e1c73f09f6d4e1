"""PPO on Atari: our training loop against stable-baselines3's PPO, side by side in one run.

    nice -n 10 python benchmarks/atari_vs_sb3.py [--updates 3] [--rounds 2]

Both train ALE/Breakout-v5 with the same settings (8 envs x 128 steps, Nature
CNN, 4 epochs, minibatch 256, lr 2.5e-4, clip 0.1, the same seed) and the same
preprocessing (sticky actions 0.25, max-and-skip 4, 84x84 grey, 4-frame stack,
no no-op or fire reset, life loss not terminal, rewards clipped for learning).
Each timing covers building the environments and the agent and ``--updates``
rollouts with their updates: total environment steps per second including
updates. Ours runs twice, in float32 (SB3's precision) and with the Nature
CNN under bfloat16 autocast (``--precision bf16``, which ``--precision auto``,
the default, picks on CPUs with bf16 instructions; its effect on learning:
``benchmarks/atari_precision.py``); the three alternate
``--rounds`` times, so neighbours see about the same machine load; reported
are the median speeds and the ratio ours / SB3 of each round with their median
(target >= 1.5 on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack

from exploration.agent import AgentConfig, train

ENV, ENVS, STEPS, SEED = "ALE/Breakout-v5", 8, 128, 0


def ours(updates: int, backend: str, precision: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = AgentConfig(env=ENV, algo="ppo", vector_env=backend, num_envs=ENVS, num_steps=STEPS,
                          total_steps=updates * ENVS * STEPS, epochs=4, minibatches=4, lr=2.5e-4,
                          clip=0.1, seed=SEED, run_dir=tmp, checkpoint_every=10**6,
                          precision=precision)
        tic = time.perf_counter()
        train(cfg)
        return updates * ENVS * STEPS / (time.perf_counter() - tic)


def sb3(updates: int) -> float:
    tic = time.perf_counter()
    env = make_atari_env(
        ENV, n_envs=ENVS, seed=SEED,
        env_kwargs={"frameskip": 1, "repeat_action_probability": 0.25,
                    "max_num_frames_per_episode": 18_000},
        wrapper_kwargs={"noop_max": 0, "terminal_on_life_loss": False, "clip_reward": True},
    )
    env = VecFrameStack(env, n_stack=4)
    model = PPO("CnnPolicy", env, n_steps=STEPS, batch_size=256, n_epochs=4, learning_rate=2.5e-4,
                clip_range=0.1, ent_coef=0.01, vf_coef=0.5, gamma=0.99, gae_lambda=0.95,
                max_grad_norm=0.5, seed=SEED, device="cpu", verbose=0)
    model.learn(total_timesteps=updates * ENVS * STEPS)
    env.close()
    return updates * ENVS * STEPS / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=3, help="rollouts + updates per timing")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of all three")
    parser.add_argument("--backend", choices=["gymnasium", "ale"], default="gymnasium",
                        help="our vector env (the default of examples/train_atari.py is gymnasium)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for both (0: torch's default, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    default = AgentConfig(env=ENV, precision="auto").precision
    print(f"our default precision on this machine (--precision auto): {default}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = {"ours fp32": lambda: ours(args.updates, args.backend, "fp32"),
            "ours bf16": lambda: ours(args.updates, args.backend, "bf16"),
            "sb3 fp32": lambda: sb3(args.updates)}
    results: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            results[name].append(run())
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items())
              + " env steps/s", flush=True)
    median = {k: statistics.median(v) for k, v in results.items()}
    for name in ("ours fp32", "ours bf16"):
        ratios = [a / b for a, b in zip(results[name], results["sb3 fp32"], strict=True)]
        print(f"{name} ({args.backend}): median {median[name]:.1f} env steps/s vs sb3 fp32 "
              f"{median['sb3 fp32']:.1f}; per-round ratios "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; median ratio "
              f"{statistics.median(ratios):.2f}x (target >= 1.5)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
