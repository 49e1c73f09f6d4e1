"""Distributional agents: C51 and ensembles of categorical agents.

* :mod:`distributional.categorical`: the fixed support, the C51 projection and
  the cross-entropy loss.
* :mod:`distributional.c51`: one categorical DQN agent (:class:`C51`) and its
  networks (MLP for vectors and MinAtar grids, Nature CNN for Atari).
* :mod:`distributional.ensemble`: mixture targets of Lindenberg et al. (2020).
* :mod:`distributional.train`: the config and the one training loop for
  ``c51``, ``ensemble`` and ``independent`` agents.
* :mod:`distributional.plot`: draw predicted return distributions.

Replay (:class:`rlcore.buffers.ReplayBuffer`) and n-step returns
(:func:`rlcore.nstep_returns`) come from ``rlcore``.
"""

from distributional.c51 import C51, CategoricalQNetwork, c51_targets, greedy_target, make_network
from distributional.categorical import Support, categorical_loss, project
from distributional.ensemble import mixture_act, mixture_probs, mixture_targets
from distributional.plot import plot_distributions
from distributional.train import PRESETS, TrainConfig, evaluate, load_agents, make_env, train

__all__ = [
    "C51",
    "PRESETS",
    "CategoricalQNetwork",
    "Support",
    "TrainConfig",
    "c51_targets",
    "categorical_loss",
    "evaluate",
    "greedy_target",
    "load_agents",
    "make_env",
    "make_network",
    "mixture_act",
    "mixture_probs",
    "mixture_targets",
    "plot_distributions",
    "project",
    "train",
]
