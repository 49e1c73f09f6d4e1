"""Gymnasium environments for the routing problems, with ``action_masks()`` for MaskablePPO.

Importing :mod:`problems` registers ``problems/TSP-v0``, ``problems/CVRP-v0``,
``problems/SDVRP-v0``, ``problems/OP-v0``, ``problems/PCTSP-v0`` and
``problems/SPCTSP-v0``::

    import gymnasium as gym
    import problems
    env = gym.make("problems/CVRP-v0", size=20)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(int(env.unwrapped.action_masks().argmax()))

Each episode is one random instance with the paper's distribution. An action
is the next node (0 is the depot where there is one). The observation is a
flat vector: the node features, the mask of forbidden nodes, a one-hot of the
current node and the state's scalars (load, length or prize so far). The
reward is the decrease of the objective, so an episode's return is the
empty solution's cost minus the final cost (the negative tour length for TSP
and CVRP, the collected prize for OP).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from problems.registry import make_problem

__all__ = ["ENV_IDS", "RoutingEnv", "register_envs"]

ENV_IDS = {"TSP-v0": "tsp", "CVRP-v0": "cvrp", "SDVRP-v0": "sdvrp", "OP-v0": "op_dist",
           "PCTSP-v0": "pctsp", "SPCTSP-v0": "spctsp"}


class RoutingEnv(gym.Env):
    """One routing instance per episode, built on a problem's state, mask and cost.

    Args:
        problem: a name from :data:`problems.PROBLEMS` (e.g. ``"cvrp"``, ``"op_unif"``).
        size: number of nodes (customers for problems with a depot).
    """

    metadata = {"render_modes": []}

    def __init__(self, problem: str = "tsp", size: int = 20) -> None:
        if not isinstance(size, int) or size < 3:
            raise ValueError(f"size must be an int >= 3, got {size!r}")
        self.problem = make_problem(problem)
        self.size = size
        probe = self.problem.generate(1, size)
        state = self.problem.init_state(probe, 1)
        n_nodes = self.problem.mask(state).shape[-1]
        n_feat = self.problem.node_features(probe).numel()
        self._scalars = [f.name for f in dataclasses.fields(state)
                         if isinstance(getattr(state, f.name), torch.Tensor)
                         and getattr(state, f.name).shape == (1, 1)
                         and getattr(state, f.name).is_floating_point()]
        dim = n_feat + 2 * n_nodes + len(self._scalars)
        self.observation_space = spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = spaces.Discrete(n_nodes)
        self._inst: dict[str, torch.Tensor] | None = None

    def _obs(self) -> np.ndarray:
        mask = self.problem.mask(self._state)[0, 0].float()
        current = torch.zeros_like(mask)
        current[int(self._state.current[0, 0])] = 1.0
        scalars = [getattr(self._state, name)[0, 0].reshape(1).float() for name in self._scalars]
        parts = [self._features, mask, current, *scalars]
        return torch.cat(parts).numpy().astype(np.float32)

    def action_masks(self) -> np.ndarray:
        """Bool array, True for nodes that may be chosen now (MaskablePPO's convention)."""
        return ~self.problem.mask(self._state)[0, 0].numpy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        gen = torch.Generator().manual_seed(int(self.np_random.integers(2**31)))
        self._inst = self.problem.generate(1, self.size, generator=gen)
        self._features = self.problem.node_features(self._inst).reshape(-1).float()
        self._state = self.problem.init_state(self._inst, 1)
        self._actions: list[int] = []
        self._cost = float(self.problem.cost(self._inst, torch.zeros(1, 1, 1, dtype=torch.long)))
        return self._obs(), {}

    def step(self, action: int):
        if self._inst is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action) or not self.action_masks()[int(action)]:
            raise ValueError(f"action {action} is not allowed now (see action_masks())")
        self._state = self.problem.step(self._state, torch.tensor([[int(action)]]))
        self._actions.append(int(action))
        tours = torch.tensor([[self._actions]])
        cost = float(self.problem.cost(self._inst, tours))
        reward, self._cost = self._cost - cost, cost
        terminated = self.problem.finished(self._state)
        info = {"cost": cost} if terminated else {}
        return self._obs(), reward, terminated, False, info


def register_envs() -> None:
    """Register ``problems/<NAME>-v0`` with gymnasium (idempotent)."""
    for env_id, name in ENV_IDS.items():
        full = f"problems/{env_id}"
        if full not in gym.registry:
            gym.register(full, entry_point=RoutingEnv, kwargs={"problem": name})
