"""Replay ring buffer with n-step returns, for any off-policy agent.

Transitions from ``n_envs`` parallel environments are stored in time order per
environment, so n-step returns are computed at sampling time by
:func:`rlcore.estimators.nstep_returns` over the stored window. Observations
are stored once: the next observation of a step is the following slot, and only
the final observation of a truncated episode (needed to bootstrap) and the
latest next observation of each environment are kept aside. With
``frame_stack = F`` only the newest frame of each stacked observation is
stored and the stack is rebuilt at sampling time, repeating an episode's first
frame before its start (gymnasium's ``FrameStackObservation`` default padding):
an Atari observation costs one 84x84 frame instead of four.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import DTypeLike
from torch import Tensor

from rlcore import _checks
from rlcore.estimators import nstep_returns

__all__ = ["ReplayBuffer", "ReplaySample"]


@dataclass(frozen=True)
class ReplaySample:
    """A batch of n-step transitions; the target is ``returns + discounts * V(next_obs)``.

    ``obs`` and ``next_obs`` keep the stored dtype (uint8 frames stay uint8);
    ``discounts`` is ``gamma ** steps``, 0 where the window ended in a termination.
    """

    obs: Tensor
    actions: Tensor
    returns: Tensor
    discounts: Tensor
    next_obs: Tensor
    steps: Tensor


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions with n-step returns.

    Args:
        capacity: transitions kept in total (``capacity // n_envs`` per environment).
        obs_shape: shape of one observation (for ``frame_stack > 1``: ``(F, ...)``).
        obs_dtype: stored dtype (``np.uint8`` for frames).
        n_envs: parallel environments added to at each :meth:`add`.
        n_step: steps summed into each return, ``>= 1``.
        gamma: discount in ``[0, 1]``.
        frame_stack: observations are stacks of this many frames along axis 0,
            the last the newest; only the newest frame of each is stored.
        seed: seed of the buffer's own sampling generator.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: DTypeLike = np.float32,
        *,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        frame_stack: int = 1,
        seed: int = 0,
    ) -> None:
        _checks.integer("n_envs", n_envs, minimum=1)
        self.n_step = _checks.integer("n_step", n_step, minimum=1)
        self.frame_stack = _checks.integer("frame_stack", frame_stack, minimum=1)
        self.gamma = _checks.unit_interval("gamma", gamma)
        _checks.integer("capacity", capacity, minimum=n_envs * max(2, frame_stack))
        _checks.integer("seed", seed, minimum=0)
        obs_shape = tuple(obs_shape)
        if not all(isinstance(d, int) and d >= 1 for d in obs_shape):
            raise ValueError(f"obs_shape must be a tuple of positive ints, got {obs_shape}")
        if frame_stack > 1 and (len(obs_shape) < 2 or obs_shape[0] != frame_stack):
            raise ValueError(
                f"obs_shape must start with frame_stack={frame_stack} (stacked frames), "
                f"got {obs_shape}"
            )
        self.obs_shape, self.n_envs = obs_shape, n_envs
        self.slots = capacity // n_envs
        frame_shape = obs_shape[1:] if frame_stack > 1 else obs_shape
        self.frames = np.zeros((self.slots, n_envs, *frame_shape), dtype=obs_dtype)
        self.actions = np.zeros((self.slots, n_envs), dtype=np.int64)
        self.rewards = np.zeros((self.slots, n_envs), dtype=np.float32)
        self.terminated = np.zeros((self.slots, n_envs), dtype=bool)
        self.truncated = np.zeros((self.slots, n_envs), dtype=bool)
        self.starts = np.zeros((self.slots, n_envs), dtype=bool)
        self.last_next = np.zeros((n_envs, *obs_shape), dtype=obs_dtype)
        self.final_obs: dict[tuple[int, int], np.ndarray] = {}
        self.pos, self.full = 0, False
        self._episode_start = np.ones(n_envs, dtype=bool)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Transitions stored (over all environments)."""
        return (self.slots if self.full else self.pos) * self.n_envs

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
    ) -> None:
        """Store one step of every environment.

        Args:
            obs: ``(n_envs, *obs_shape)`` observations the actions were taken in.
            actions: ``(n_envs,)`` integer actions.
            rewards: ``(n_envs,)`` rewards.
            terminated: ``(n_envs,)`` the episode reached a terminal state.
            truncated: ``(n_envs,)`` the episode was cut off (time limit); termination wins
                when both are set.
            next_obs: ``(n_envs, *obs_shape)`` the observations that followed, the
                final ones where an episode ended (gymnasium's ``final_obs``).
        """
        n = self.n_envs
        for name, x, shape in (
            ("obs", obs, (n, *self.obs_shape)), ("next_obs", next_obs, (n, *self.obs_shape)),
            ("actions", actions, (n,)), ("rewards", rewards, (n,)),
            ("terminated", terminated, (n,)), ("truncated", truncated, (n,)),
        ):
            if np.shape(x) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(x)}")
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool) & ~terminated
        p = self.pos
        for env in range(n):
            self.final_obs.pop((p, env), None)
        self.frames[p] = obs[:, -1] if self.frame_stack > 1 else obs
        self.actions[p] = actions
        self.rewards[p] = rewards
        self.terminated[p] = terminated
        self.truncated[p] = truncated
        self.starts[p] = self._episode_start
        self.last_next[:] = next_obs
        for env in np.flatnonzero(truncated):
            self.final_obs[(p, int(env))] = np.array(next_obs[env])
        self._episode_start = terminated | truncated
        self.pos = (p + 1) % self.slots
        self.full = self.full or self.pos == 0

    def _observations(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Observations stored at ``slots`` (rebuilding frame stacks)."""
        if self.frame_stack == 1:
            return self.frames[slots, envs]
        cur = slots.copy()
        stop = self.starts[cur, envs]
        stack = [self.frames[cur, envs]]
        for _ in range(self.frame_stack - 1):
            cur = np.where(stop, cur, (cur - 1) % self.slots)
            stop = stop | self.starts[cur, envs]
            stack.append(self.frames[cur, envs])
        return np.stack(stack[::-1], axis=1)

    def sample(self, batch_size: int, device: str | torch.device = "cpu") -> ReplaySample:
        """``batch_size`` transitions drawn uniformly with replacement."""
        _checks.integer("batch_size", batch_size, minimum=1)
        size = self.slots if self.full else self.pos
        oldest = self.pos if self.full else 0
        # Once the ring wraps, the oldest F - 1 slots have lost their earlier frames.
        skip = self.frame_stack - 1 if self.full else 0
        if size - skip < 1:
            raise ValueError("cannot sample from an empty ReplayBuffer")
        age = skip + self.rng.integers(0, size - skip, size=batch_size)
        envs = self.rng.integers(0, self.n_envs, size=batch_size)
        slots = (oldest + age) % self.slots

        window = np.arange(self.n_step)
        w_age = age[None, :] + window[:, None]
        w_slots = (oldest + w_age) % self.slots
        term = self.terminated[w_slots, envs]
        # The newest step's successor is known (last_next): the window stops there
        # and bootstraps, exactly like a truncation.
        trunc = (self.truncated[w_slots, envs] | (w_age == size - 1)) & ~term
        returns, discounts, steps = nstep_returns(
            torch.from_numpy(self.rewards[w_slots, envs]), torch.from_numpy(term | trunc),
            self.gamma, self.n_step, torch.from_numpy(trunc),
        )
        steps0 = steps[0].numpy()
        last_age = age + steps0 - 1
        last = (oldest + last_age) % self.slots
        next_obs = self._observations((last + 1) % self.slots, envs)
        # A terminated window has discount 0: any observation will do there.
        for i in np.flatnonzero(self.terminated[last, envs]):
            next_obs[i] = self._observations(last[i : i + 1], envs[i : i + 1])[0]
        for i in np.flatnonzero(last_age == size - 1):
            next_obs[i] = self.last_next[envs[i]]
        for i in np.flatnonzero(self.truncated[last, envs]):
            next_obs[i] = self.final_obs[(int(last[i]), int(envs[i]))]
        sample = ReplaySample(
            obs=torch.from_numpy(self._observations(slots, envs)),
            actions=torch.from_numpy(self.actions[slots, envs]),
            returns=returns[0], discounts=discounts[0],
            next_obs=torch.from_numpy(next_obs), steps=steps[0],
        )
        if torch.device(device).type != "cpu":
            sample = ReplaySample(**{
                f.name: getattr(sample, f.name).to(device) for f in dataclasses.fields(sample)
            })
        return sample

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, including the sampling generator."""
        arrays = ("frames", "actions", "rewards", "terminated", "truncated", "starts", "last_next")
        state = {name: getattr(self, name).copy() for name in arrays}
        state.update(
            final_obs=dict(self.final_obs), pos=self.pos, full=self.full,
            episode_start=self._episode_start.copy(), rng=self.rng.bit_generator.state,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same capacity and shapes)."""
        for name in ("frames", "actions", "rewards", "terminated", "truncated", "starts",
                     "last_next"):
            ours = getattr(self, name)
            if state[name].shape != ours.shape:
                raise ValueError(
                    f"state[{name!r}] has shape {state[name].shape}, this buffer {ours.shape}"
                )
            ours[:] = state[name]
        self.final_obs = dict(state["final_obs"])
        self.pos, self.full = int(state["pos"]), bool(state["full"])
        self._episode_start = state["episode_start"].copy()
        self.rng.bit_generator.state = state["rng"]
