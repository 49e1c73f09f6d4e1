"""Random Network Distillation (Burda, Edwards, Storkey, Klimov 2018).

A fixed, randomly initialised *target* network embeds observations; a
*predictor* is trained to reproduce the embedding. Its error is large on
observations unlike those seen so far, and that error is the intrinsic reward.
The details that make it work, all from the paper:

* the networks see observations normalised by a running mean / std
  (initialised from random-agent steps) and clipped to ``[-5, 5]``; for Atari
  only the newest frame of the stack;
* the intrinsic reward is divided by a running std of the *discounted
  intrinsic return*, accumulated over time separately for every environment
  (:class:`rlcore.DiscountedReturnFilter`);
* the predictor learns on a fixed proportion of each minibatch (25 % with
  the paper's 128 envs; the agent's default is 32 / num_envs), so that with
  more environments it does not learn too fast.

The agent adds the intrinsic reward as its own stream (own value head, own
discount, non-episodic); the extrinsic reward is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rlcore import DiscountedReturnFilter, RunningMeanStd, _checks
from rlcore.networks import layer_init, mlp

__all__ = ["RND"]


def _convs() -> list[nn.Module]:
    """The paper's three LeakyReLU convolutions for one 84x84 frame -> 3136 features."""
    return [
        layer_init(nn.Conv2d(1, 32, 8, stride=4)), nn.LeakyReLU(),
        layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.LeakyReLU(),
        layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.LeakyReLU(),
        nn.Flatten(),
    ]


class RND(nn.Module):
    """Target and predictor networks, observation statistics and intrinsic-reward scaling.

    Args:
        obs_shape: shape of one agent observation: ``(C, 84, 84)`` frame stacks
            (RND sees the newest frame) or ``(D,)`` vectors.
        num_envs: parallel environments (for the per-environment return filter).
        gamma: discount of the intrinsic return used for reward scaling (0.99).
        proportion: fraction of each minibatch the predictor is trained on, in ``(0, 1]``.
        obs_clip: normalised observations are clipped to ``[-obs_clip, obs_clip]``.
        features: embedding size (512 in the paper).
        hidden: widths of the MLPs for vector observations (the predictor has one
            more layer than the target, as in the paper's conv version).
        device: where the networks and statistics live.
    """

    def __init__(
        self, obs_shape: Sequence[int], num_envs: int, gamma: float = 0.99,
        proportion: float = 0.25, obs_clip: float = 5.0, features: int = 512,
        hidden: Sequence[int] = (256, 256), device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        obs_shape = tuple(obs_shape)
        if len(obs_shape) not in (1, 3):
            raise ValueError(f"obs_shape must be (C, 84, 84) or (D,), got {obs_shape}")
        if not 0 < proportion <= 1:
            raise ValueError(f"proportion must be in (0, 1], got {proportion}")
        _checks.positive("obs_clip", obs_clip)
        _checks.integer("features", features, minimum=1)
        self.images = len(obs_shape) == 3
        self.proportion, self.obs_clip = float(proportion), float(obs_clip)
        if self.images:
            if obs_shape[1:] != (84, 84):
                raise ValueError(f"obs_shape must be (C, 84, 84) for images, got {obs_shape}")
            self.input_shape: tuple[int, ...] = (1, 84, 84)
            self.target = nn.Sequential(*_convs(), layer_init(nn.Linear(3136, features)))
            self.predictor = nn.Sequential(
                *_convs(), layer_init(nn.Linear(3136, 512)), nn.ReLU(),
                layer_init(nn.Linear(512, 512)), nn.ReLU(), layer_init(nn.Linear(512, features)),
            )
        else:
            self.input_shape = obs_shape
            self.target = mlp(obs_shape[0], hidden, features, activation=nn.LeakyReLU,
                              orthogonal=True)
            self.predictor = mlp(obs_shape[0], [*hidden, hidden[-1]], features,
                                 activation=nn.LeakyReLU, orthogonal=True)
        self.target.requires_grad_(False)
        if self.images:
            # channels_last weights make oneDNN pick faster convolutions on CPU (the one-channel
            # input alone cannot signal the layout)
            self.to(memory_format=torch.channels_last)
        self.to(device)
        self.obs_rms = RunningMeanStd(self.input_shape, device=device)
        self.reward_filter = DiscountedReturnFilter(num_envs, gamma, device=device)

    def select(self, obs: Tensor) -> Tensor:
        """What RND sees of a batch of agent observations: the newest frame, or the vector."""
        return obs[:, -1:] if self.images else obs

    def update_obs_stats(self, obs: Tensor) -> None:
        """Merge a batch of :meth:`select`-ed observations into the running mean / std."""
        self.obs_rms.update(obs.float())

    def _normalized(self, obs: Tensor) -> Tensor:
        return self.obs_rms.normalize(obs.float(), clip=self.obs_clip)

    def _errors(self, obs: Tensor) -> Tensor:
        x = self._normalized(obs)
        return (self.predictor(x) - self.target(x)).pow(2).mean(dim=1)

    @torch.no_grad()
    def novelty(self, obs: Tensor, chunk: int = 1024) -> Tensor:
        """Unscaled intrinsic reward ``(B,)``: mean squared feature error on :meth:`select`-ed obs."""
        return torch.cat([self._errors(part) for part in obs.split(chunk)])

    def scale(self, rewards: Tensor) -> Tensor:
        """Divide ``(T, num_envs)`` intrinsic rewards by the running std of their discounted
        return (updated with these rewards first, over time, per environment)."""
        std = self.reward_filter.update(rewards)
        return (rewards / std.to(rewards)).to(rewards.dtype)

    def loss(self, obs: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Predictor loss on a random ``proportion`` of a minibatch of :meth:`select`-ed obs."""
        keep = torch.rand(obs.shape[0], device=obs.device) < self.proportion
        if not bool(keep.any()):
            return torch.zeros((), device=obs.device), {"loss/rnd": 0.0}
        # Only the kept samples go through the networks: 4x less work at 25 %.
        loss = self._errors(obs[keep]).mean()
        return loss, {"loss/rnd": float(loss.detach())}

    def get_extra_state(self) -> dict[str, Any]:
        return {"obs_rms": self.obs_rms.state_dict(), "reward_filter": self.reward_filter.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.reward_filter.load_state_dict(state["reward_filter"])
