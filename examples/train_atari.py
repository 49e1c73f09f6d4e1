"""Train PPO or PPO with Random Network Distillation on Atari (or any discrete gymnasium env).

Atari games get the RND paper's preprocessing (sticky actions 0.25, max-and-skip
4, 84x84 grey, 4-frame stack, 18,000-frame episodes, life loss not terminal).
Logs go to TensorBoard under ``runs/<env>_<algo>_seed<seed>`` (or ``--run-dir``),
with a checkpoint every ``--checkpoint-every`` updates::

    python examples/train_atari.py --env ALE/Breakout-v5 --algo ppo
    python examples/train_atari.py --env ALE/MontezumaRevenge-v5 --algo rnd --num-envs 32
    python examples/train_atari.py --env ALE/Breakout-v5 --algo ppo --resume   # continue exactly
    tensorboard --logdir runs

``--help`` lists every option; settings left at None take the algorithm's
reference value (CleanRL's Atari PPO, or the RND paper).
"""

from __future__ import annotations

from exploration.agent import AgentConfig, train
from rlcore.config import parse_config

if __name__ == "__main__":
    config = parse_config(AgentConfig, description=__doc__.split("\n\n")[0])
    print(f"training {config.algo} on {config.env}; logs and checkpoint in {config.run_dir}")
    result = train(config)
    print(f"done after {int(result['global_step'])} agent steps: mean return of the last (up to) "
          f"100 episodes {result['mean_return_last_100']:.2f}, best {result['best_return']:.2f}")
