"""Train C51, a distributional ensemble or independent C51 agents; log to TensorBoard.

    python examples/train_distributional.py --env-id CartPole-v1 --agent c51
    python examples/train_distributional.py --env-id CartPole-v1 --agent ensemble --members 5
    python examples/train_distributional.py --env-id CartPole-v1 --agent independent --members 5
    python examples/train_distributional.py --env-id MinAtar/Breakout-v1 --agent ensemble --members 5
    python examples/train_distributional.py --env-id ALE/Pong-v5 --total-steps 10000000
    python examples/train_distributional.py ... --resume     # continue the same run exactly
    tensorboard --logdir runs

``--env`` is short for ``--env-id``. Settings left unset take
the environment's preset (``distributional.train.PRESETS``). With ``--plot``
the return distributions of each action at the first observation of an
evaluation episode are drawn to ``run_dir/distributions.png`` at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from distributional.ensemble import mixture_probs
from distributional.plot import plot_distributions
from distributional.train import TrainConfig, load_agents, make_env, train
from rlcore.config import parse_config


def draw(run_dir: Path, seed: int) -> Path:
    """Each member's (and the ensemble's) return distributions at one start state."""
    cfg, agents = load_agents(run_dir / "checkpoint.pt")
    obs, _ = make_env(cfg.env_id).reset(seed=seed)
    x = torch.as_tensor(obs)[None]
    probs = {f"member {i}": a.probs(x)[0] for i, a in enumerate(agents)}
    if len(agents) > 1:
        probs["ensemble (mixture)"] = mixture_probs(agents, x)[0]
    title = f"{cfg.env_id}, {cfg.agent}: predicted return distributions at a start state"
    return plot_distributions(agents[0].support, probs, run_dir / "distributions.png",
                              title=title)


def main(argv: list[str]) -> None:
    plot = "--plot" in argv
    # argparse takes --env as the unambiguous prefix of --env-id.
    cfg = parse_config(TrainConfig, [a for a in argv if a != "--plot"])
    result = train(cfg)
    print("final evaluation: " + ", ".join(f"{k} = {v:.1f}" for k, v in result.items()))
    if plot:
        print(f"return distributions drawn to {draw(Path(cfg.run_dir), cfg.seed + 1_000_003)}")


if __name__ == "__main__":
    main(sys.argv[1:])
