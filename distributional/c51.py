"""C51 (Bellemare, Dabney, Munos 2017): a categorical return distribution per action.

:class:`C51` holds one agent's online and target networks and its Adam
optimiser; it acts epsilon-greedily on the mean of its distribution and learns
from a projected target distribution it is given. :func:`c51_targets` builds
each agent's own target (plain C51); :func:`distributional.ensemble.mixture_targets`
builds the ensemble's. The training loop that feeds them is
:func:`distributional.train.train`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from distributional.categorical import Support, categorical_loss, project
from rlcore.buffers import ReplaySample
from rlcore.networks import NatureCNN, mlp

__all__ = ["C51", "CategoricalQNetwork", "c51_targets", "greedy_target", "make_network"]


class CategoricalQNetwork(nn.Module):
    """A trunk and a linear head giving ``n_atoms`` logits for each of ``n_actions``.

    Args:
        trunk: maps a batch of observations to ``(B, features)``.
        features: width of the trunk's output.
        n_actions: number of discrete actions.
        n_atoms: atoms of the support.
        flatten: flatten observations to float vectors before the trunk (for MLPs on
            vectors or MinAtar's boolean grids).
    """

    def __init__(
        self, trunk: nn.Module, features: int, n_actions: int, n_atoms: int,
        flatten: bool = False,
    ) -> None:
        super().__init__()
        self.trunk, self.n_actions, self.n_atoms = trunk, n_actions, n_atoms
        self.head = nn.Linear(features, n_actions * n_atoms)
        self.flatten = flatten

    def forward(self, obs: Tensor) -> Tensor:
        """Logits ``(B, n_actions, n_atoms)``; softmax over the last axis gives the distributions."""
        if self.flatten:
            obs = obs.flatten(1).to(torch.float32)
        return self.head(self.trunk(obs)).view(-1, self.n_actions, self.n_atoms)


def make_network(
    obs_shape: Sequence[int], n_actions: int, n_atoms: int, hidden: Sequence[int] = (64, 64)
) -> CategoricalQNetwork:
    """Nature CNN for ``(C, 84, 84)`` Atari frames, otherwise an MLP on the flattened observation."""
    obs_shape = tuple(obs_shape)
    if len(obs_shape) == 3 and obs_shape[1:] == (84, 84):
        trunk: nn.Module = NatureCNN(in_channels=obs_shape[0])
        return CategoricalQNetwork(trunk, trunk.features, n_actions, n_atoms)
    if not hidden:
        raise ValueError("hidden must name at least one layer width")
    trunk = mlp(math.prod(obs_shape), hidden)
    return CategoricalQNetwork(trunk, hidden[-1], n_actions, n_atoms, flatten=True)


class C51:
    """One categorical DQN agent: online and target networks, Adam, epsilon-greedy acting.

    Args:
        network: the online network; the target network starts as a copy.
        support: the atoms its distributions live on (``network.n_atoms`` of them).
        lr: Adam learning rate.
        adam_eps: Adam's epsilon (the C51 paper: 0.01 / batch size).
        max_grad_norm: gradient-norm clip; ``None`` (the default, as in the C51 paper,
            Dopamine and CleanRL) for none.
    """

    def __init__(
        self,
        network: CategoricalQNetwork,
        support: Support,
        lr: float = 2.5e-4,
        adam_eps: float = 3.125e-4,
        max_grad_norm: float | None = None,
    ) -> None:
        if not isinstance(network, CategoricalQNetwork):
            raise TypeError(f"network must be a CategoricalQNetwork, got {type(network).__name__}")
        if network.n_atoms != support.n_atoms:
            raise ValueError(
                f"network has {network.n_atoms} atoms but support has {support.n_atoms}"
            )
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not adam_eps > 0:
            raise ValueError(f"adam_eps must be > 0, got {adam_eps}")
        self.online, self.support = network, support
        self.target = copy.deepcopy(network).requires_grad_(False)
        self.params = list(network.parameters())
        # The fused kernel updates every tensor in one call: on small networks the
        # per-tensor loop of the default implementation costs more than the math.
        fused = self.params[0].device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.params, lr=lr, eps=adam_eps, fused=fused)
        self.max_grad_norm = max_grad_norm

    @torch.no_grad()
    def probs(self, obs: Tensor) -> Tensor:
        """Online distributions ``(B, n_actions, n_atoms)``."""
        return torch.softmax(self.online(obs), dim=-1)

    @torch.no_grad()
    def target_probs(self, obs: Tensor) -> Tensor:
        """Target-network distributions ``(B, n_actions, n_atoms)``."""
        return torch.softmax(self.target(obs), dim=-1)

    def act(self, obs: Tensor, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy actions ``(B,)`` on the mean of the online distributions."""
        explore = rng.random(len(obs)) < epsilon
        actions = rng.integers(0, self.online.n_actions, size=len(obs))
        if not explore.all():  # while exploring, the network need not run
            greedy = self.support.mean(self.probs(obs)).argmax(dim=1).cpu().numpy()
            actions = np.where(explore, actions, greedy)
        return actions

    def mean_q(self, obs: Tensor) -> float:
        """Mean over the batch and actions of the online expected returns (for logging)."""
        return float(self.support.mean(self.probs(obs)).mean())

    def learn(self, batch: ReplaySample, target: Tensor) -> float:
        """One Adam step on the cross-entropy to ``target`` ``(B, n_atoms)``; returns the loss."""
        logits = self.online(batch.obs)
        index = batch.actions.view(-1, 1, 1).expand(-1, 1, logits.shape[2])
        chosen = logits.gather(1, index).squeeze(1)
        loss = categorical_loss(chosen, target).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.params, self.max_grad_norm, foreach=True)
        self.optimizer.step()
        return float(loss.detach())

    def sync_target(self) -> None:
        """Copy the online weights into the target network."""
        self.target.load_state_dict(self.online.state_dict())

    def state_dict(self) -> dict[str, dict]:
        return {
            "online": self.online.state_dict(), "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, dict]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])


def greedy_target(support: Support, next_probs: Tensor, batch: ReplaySample) -> Tensor:
    """Project the Bellman update of the greedy action's distribution ``(B, n_atoms)``.

    ``next_probs`` ``(B, n_actions, n_atoms)`` are the distributions at the
    bootstrap observations; the next action maximises their mean.
    """
    best = support.mean(next_probs).argmax(dim=1)
    index = best.view(-1, 1, 1).expand(-1, 1, next_probs.shape[2])
    chosen = next_probs.gather(1, index).squeeze(1)
    return project(support, chosen, batch.returns, batch.discounts)


def c51_targets(agents: Sequence[C51], batches: Sequence[ReplaySample]) -> list[Tensor]:
    """Each agent's own C51 target from its own target network (independent agents)."""
    if len(agents) != len(batches):
        raise ValueError(f"need one batch per agent, got {len(batches)} for {len(agents)}")
    return [
        greedy_target(agent.support, agent.target_probs(batch.next_obs), batch)
        for agent, batch in zip(agents, batches, strict=True)
    ]
