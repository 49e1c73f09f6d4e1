"""Training throughput: our C51 against sb3-contrib's QR-DQN and stable-baselines3's DQN.

    python benchmarks/c51_vs_sb3.py [--steps 10000] [--repeats 2]

All three train on CartPole-v1 with one gradient step per environment step,
the same network (two hidden layers of 64), batch 64, 1-step targets, target
copies every 500 steps, 1000 steps before learning and one torch thread; C51
has 51 atoms, QR-DQN 51 quantiles. The runs alternate (ours, QR-DQN, DQN,
ours, ...) so that they share the machine's load; each time is the whole
``train`` / ``learn`` call (ours includes its final greedy evaluation episode
and checkpoint). Prints environment steps per second (median over repeats) and
the ratios. Targets: >= 2x QR-DQN and >= 1x DQN.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from sb3_contrib import QRDQN
from stable_baselines3 import DQN

from distributional.train import TrainConfig, train

COMMON = dict(learning_starts=1000, batch_size=64, train_freq=1, gradient_steps=1,
              target_update_interval=500, buffer_size=50_000, gamma=0.99,
              exploration_fraction=0.2, exploration_final_eps=0.02, device="cpu", seed=0)


def ours(steps: int, run_dir: str) -> None:
    train(TrainConfig(env_id="CartPole-v1", agent="c51", total_steps=steps, n_atoms=51,
                      hidden="64,64", batch_size=64, n_step=1, train_freq=1,
                      learning_starts=1000, target_update=500, buffer_size=50_000,
                      eps_end=0.02, eps_decay_steps=steps // 5,
                      eval_every=0, eval_episodes=1, checkpoint_every=0, log_every=steps,
                      threads=1, run_dir=run_dir))


def qrdqn(steps: int, _: str) -> None:
    QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(n_quantiles=51, net_arch=[64, 64]),
          **COMMON).learn(steps)


def dqn(steps: int, _: str) -> None:
    DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[64, 64]), **COMMON).learn(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="environment steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (median)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # Creating the first optimizer imports torch._dynamo (seconds): pay it before timing.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    runners = {"ours C51 (51 atoms)": ours, "sb3-contrib QR-DQN (51 quantiles)": qrdqn,
               "SB3 DQN": dqn}
    sps: dict[str, list[float]] = {name: [] for name in runners}
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, run in runners.items():
                tic = time.perf_counter()
                run(args.steps, os.path.join(tmp, f"ours{r}"))
                sps[name].append(args.steps / (time.perf_counter() - tic))
                print(f"  {name}: {sps[name][-1]:.0f} steps/s", flush=True)
    print(f"load average after: {os.getloadavg()}")
    med = {name: statistics.median(v) for name, v in sps.items()}
    for name, value in med.items():
        print(f"{name:36s} {value:7.0f} environment steps/s (median of {args.repeats})")
    ours_sps = med["ours C51 (51 atoms)"]
    print(f"ratio ours / QR-DQN: {ours_sps / med['sb3-contrib QR-DQN (51 quantiles)']:.2f} (target >= 2)")
    print(f"ratio ours / DQN:    {ours_sps / med['SB3 DQN']:.2f} (target >= 1)")


if __name__ == "__main__":
    main()
