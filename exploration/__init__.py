"""Exploration agents: PPO with Random Network Distillation (Burda et al. 2018) on Atari.

* :class:`RND`: target / predictor networks, observation normalisation and
  intrinsic-reward scaling.
* :func:`train` / :class:`AgentConfig`: the PPO and PPO-RND agent (its loop
  reads top to bottom in ``exploration/agent.py``); :func:`load_agent` and
  :func:`evaluate` play a checkpoint.
* :func:`make_vector_env`: Atari with the paper's preprocessing (ale-py), any
  gymnasium id, and ``exploration/Chain-v0``, a hard-exploration combination lock.

Needs the ``atari`` extra (ale-py, opencv).
"""

from exploration.agent import AgentConfig, evaluate, load_agent, train
from exploration.envs import ChainEnv, RoomTracker, make_env, make_vector_env
from exploration.rnd import RND

__all__ = [
    "RND",
    "AgentConfig",
    "ChainEnv",
    "RoomTracker",
    "evaluate",
    "load_agent",
    "make_env",
    "make_vector_env",
    "train",
]
