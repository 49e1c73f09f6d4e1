"""Ensembles of categorical agents (Lindenberg, Nordqvist, Lindahl 2020).

Each of ``k`` :class:`~distributional.c51.C51` members acts with its own
network in its own environment and keeps its own replay. What the ensemble
shares is the target: every member learns toward the projected Bellman update
of the *mixture* ``(1/k) sum_i Z_i(s', .)`` of all members' target-network
distributions at its next state, the next action being greedy on the mixture's
mean (:func:`mixture_targets`). With ``k = 1`` this is exactly C51's target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from distributional.c51 import C51, greedy_target
from rlcore.buffers import ReplaySample

__all__ = ["mixture_act", "mixture_probs", "mixture_targets"]


def _check_members(agents: Sequence[C51]) -> None:
    if len(agents) < 1:
        raise ValueError(f"agents must hold at least one member (k >= 1), got {len(agents)}")
    supports = {(a.support.v_min, a.support.v_max, a.support.n_atoms) for a in agents}
    if len(supports) != 1:
        raise ValueError(f"all members must share one support, got {sorted(supports)}")


def mixture_probs(agents: Sequence[C51], obs: Tensor, target: bool = False) -> Tensor:
    """The mixture ``(1/k) sum_i p_i(obs)`` ``(B, n_actions, n_atoms)`` of the members'
    online (or, with ``target``, target-network) distributions."""
    _check_members(agents)
    probs = [a.target_probs(obs) if target else a.probs(obs) for a in agents]
    return torch.stack(probs).mean(dim=0)


def mixture_targets(agents: Sequence[C51], batches: Sequence[ReplaySample]) -> list[Tensor]:
    """Each member's target: the projected Bellman update of the ensemble's mixture.

    Args:
        agents: the ``k`` members.
        batches: one replay batch per member (member ``i`` learns from ``batches[i]``).

    Returns:
        ``k`` tensors ``(B_i, n_atoms)``, member ``i``'s target distributions.
    """
    _check_members(agents)
    if len(agents) != len(batches):
        raise ValueError(f"need one batch per member, got {len(batches)} for {len(agents)}")
    # One forward pass of each target network over every member's next states.
    next_obs = torch.cat([b.next_obs for b in batches])
    mixture = mixture_probs(agents, next_obs, target=True)
    support = agents[0].support
    sizes = [len(b.actions) for b in batches]
    return [
        greedy_target(support, part, batch)
        for part, batch in zip(mixture.split(sizes), batches, strict=True)
    ]


def mixture_act(agents: Sequence[C51], obs: Tensor) -> Tensor:
    """Greedy actions ``(B,)`` of the ensemble acting on its mixture's mean."""
    return agents[0].support.mean(mixture_probs(agents, obs)).argmax(dim=1)
