"""Play a checkpoint of ``examples/train_atari.py``: mean and std of the return, optionally a video.

    python examples/evaluate_atari.py --checkpoint runs/ALE_Breakout-v5_ppo_seed0/checkpoint.pt \
        --episodes 10 --video breakout.mp4
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exploration.agent import evaluate, load_agent
from rlcore.config import option, parse_config, require


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Evaluate a trained agent on the environment it was trained on."""

    checkpoint: str = option("", "checkpoint.pt written by examples/train_atari.py (required)")
    episodes: int = option(10, "full episodes to play")
    env: str | None = option(None, "env id; None: the checkpoint's (another id is refused)")
    video: str | None = option(None, "record every episode to this .mp4 file; None: no video")
    greedy: bool = option(False, "take the most likely action instead of sampling (training samples)")
    seed: int = option(10_000, "episode i is reset with seed + i")
    device: str = option("cpu", "torch device")

    def __post_init__(self) -> None:
        require(bool(self.checkpoint), "checkpoint", "a path", self.checkpoint)
        require(self.episodes >= 1, "episodes", ">= 1", self.episodes)
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(self.video is None or self.video.endswith(".mp4"), "video", "a .mp4 path", self.video)


def main(cfg: EvalConfig) -> tuple[float, float]:
    agent_cfg, model = load_agent(cfg.checkpoint, env=cfg.env, device=cfg.device)
    returns = evaluate(agent_cfg, model, cfg.episodes, cfg.seed, cfg.greedy, cfg.video, cfg.device)
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(f"{agent_cfg.env} ({agent_cfg.algo}), {cfg.episodes} episodes: "
          f"return {mean:.2f} +- {std:.2f} (min {min(returns):.0f}, max {max(returns):.0f})")
    if cfg.video:
        print(f"video written to {cfg.video}")
    return mean, std


if __name__ == "__main__":
    main(parse_config(EvalConfig))
