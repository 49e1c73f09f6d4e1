"""Vector environments for the exploration agents: Atari with the RND paper's preprocessing,
any registered gymnasium id, a hard-exploration chain, and state snapshots for exact resume.

All vector envs use gymnasium's *same-step* autoreset: when an episode ends,
``step`` returns the first observation of the next episode and puts the real
last one in ``info["final_obs"]``.
"""

from __future__ import annotations

import copy
import difflib
from collections import deque
from typing import Any, Literal

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

__all__ = [
    "ChainEnv",
    "RoomTracker",
    "check_env_id",
    "is_atari",
    "make_env",
    "make_vector_env",
    "restore_envs",
    "snapshot_envs",
]

gym.register_envs(ale_py)

VectorBackend = Literal["gymnasium", "ale"]


class ChainEnv(gym.Env):
    """A combination lock of ``length`` cells with one reward at the far end: hard exploration.

    The agent starts in cell 0. In every cell one of the two actions (a fixed
    random pattern, different from cell to cell, as in DeepMind's Deep Sea)
    moves it one cell on; the other sends it back to cell 0. Reaching cell
    ``length - 1`` gives reward 1 and ends the episode; every other step gives
    0. Observations are one-hot cells. Random actions get there with
    probability about ``2 ** -(length - 1)`` per try, so undirected exploration
    practically never sees the reward, while a novelty bonus leads the agent
    one cell further each time it learns the previous one.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 24, render_mode: str | None = None) -> None:
        if render_mode is not None:
            raise ValueError(f"ChainEnv has no render modes, got render_mode={render_mode!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise ValueError(f"length must be an int >= 2, got {length!r}")
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0
        self._right = np.random.default_rng(length).integers(0, 2, length)

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action: int):
        self.position = self.position + 1 if action == self._right[self.position] else 0
        done = self.position == self.length - 1
        return self._obs(), float(done), done, False, {}


gym.register("exploration/Chain-v0", entry_point=ChainEnv, max_episode_steps=40,
             kwargs={"length": 20})


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is an ale-py Atari game (``ALE/<Game>-v5``)."""
    spec = gym.registry.get(env_id)
    return spec is not None and spec.entry_point == "ale_py.env:AtariEnv"


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` listing close matches unless ``env_id`` is registered."""
    if not isinstance(env_id, str):
        raise TypeError(f"env must be a str, got {type(env_id).__name__}")
    if env_id in gym.registry:
        return
    ids = list(gym.registry)
    lower = {i.lower(): i for i in ids}
    matches = difflib.get_close_matches(env_id.lower(), list(lower), n=6, cutoff=0.6)
    stem = env_id.lower().split("/")[-1].split("-v")[0]
    matches += [i for i in lower if stem and stem in i and i not in matches][:6]
    hint = ", ".join(lower[m] for m in matches[:8]) or "none (see gymnasium.pprint_registry())"
    raise ValueError(f"env {env_id!r} is not a registered environment id; close matches: {hint}")


def make_env(
    env_id: str, sticky: float = 0.25, max_episode_frames: int = 18_000,
    render_mode: str | None = None,
) -> gym.Env:
    """One environment. Atari gets the RND paper's preprocessing: sticky actions
    ``sticky``, max-and-skip 4, 84x84 grey, 4-frame stack, ``max_episode_frames``
    emulator frames per episode (a truncation), life loss not terminal, no no-op
    or fire resets. Rewards are left unclipped (the agent clips its learning signal).
    """
    check_env_id(env_id)
    if not is_atari(env_id):
        return gym.make(env_id, render_mode=render_mode)
    env = gym.make(env_id, frameskip=1, repeat_action_probability=sticky,
                   max_num_frames_per_episode=max_episode_frames, render_mode=render_mode)
    env = AtariPreprocessing(env, noop_max=0, frame_skip=4, screen_size=84,
                             terminal_on_life_loss=False, grayscale_obs=True)
    return FrameStackObservation(env, 4)


def make_vector_env(
    env_id: str, num_envs: int, backend: VectorBackend = "gymnasium", sticky: float = 0.25,
    max_episode_frames: int = 18_000,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of :func:`make_env` with same-step autoreset.

    ``backend="gymnasium"`` steps them in this process (:class:`SyncVectorEnv`):
    its state can be saved for an exact resume, and the emulator RAM is
    readable. ``"ale"`` (Atari only) uses ale-py's threaded C++
    ``AtariVectorEnv`` with the same preprocessing: faster, but it can neither
    be snapshotted nor read.
    """
    check_env_id(env_id)
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    if backend == "ale":
        if not is_atari(env_id):
            raise ValueError(f"backend 'ale' needs an Atari env id (ALE/<Game>-v5), got {env_id!r}")
        game = gym.registry[env_id].kwargs["game"]
        return ale_py.vector_env.AtariVectorEnv(
            game, num_envs, frameskip=4, stack_num=4, img_height=84, img_width=84,
            grayscale=True, maxpool=True, noop_max=0, use_fire_reset=False,
            episodic_life=False, reward_clipping=False, repeat_action_probability=sticky,
            max_num_frames_per_episode=max_episode_frames,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
    if backend != "gymnasium":
        raise ValueError(f"backend must be 'gymnasium' or 'ale', got {backend!r}")
    return SyncVectorEnv(
        [lambda: make_env(env_id, sticky, max_episode_frames) for _ in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )


# Attribute values that make up an environment's state; everything else
# (spaces, specs, functions, the emulator handle) is structure rebuilt by make_env.
_STATE_TYPES = (type(None), bool, int, float, str, np.ndarray, np.generic, deque, list, tuple,
                np.random.Generator)


def _layers(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


def snapshot_envs(envs: gym.vector.VectorEnv) -> list[list[dict[str, Any]]]:
    """The full state of every sub-environment of a :class:`SyncVectorEnv`, picklable.

    Each wrapper's and the base env's state attributes are copied (numbers,
    strings, arrays, deques, lists, tuples, NumPy generators; other attributes
    are taken for structure that ``make_env`` rebuilds); Atari's emulator is
    cloned with its random generator (sticky actions), so :func:`restore_envs`
    continues bit for bit. A wrapper keeping state in another type would not be
    restored: ``tests/test_atari.py`` checks the chains built here.
    """
    if not isinstance(envs, SyncVectorEnv):
        raise TypeError(f"envs must be a gymnasium SyncVectorEnv to snapshot, got {type(envs).__name__}")
    out = []
    for env in envs.envs:
        layers = []
        for layer in _layers(env):
            state = {k: copy.deepcopy(v) for k, v in vars(layer).items()
                     if k != "env" and isinstance(v, _STATE_TYPES)}
            if isinstance(layer, ale_py.env.AtariEnv):
                state["__ale__"] = layer.ale.cloneState(include_rng=True)
            layers.append(state)
        out.append(layers)
    return out


def restore_envs(envs: gym.vector.VectorEnv, state: list[list[dict[str, Any]]]) -> None:
    """Put the sub-environments back into a :func:`snapshot_envs` state (same env id and count)."""
    if not isinstance(envs, SyncVectorEnv):
        raise TypeError(f"envs must be a gymnasium SyncVectorEnv to restore, got {type(envs).__name__}")
    if len(state) != envs.num_envs:
        raise ValueError(f"state holds {len(state)} environments, envs has {envs.num_envs}")
    for env, layers in zip(envs.envs, state, strict=True):
        chain = _layers(env)
        if len(chain) != len(layers):
            raise ValueError("state was taken from a differently wrapped environment")
        for layer, saved in zip(chain, layers, strict=True):
            for k, v in saved.items():
                if k == "__ale__":
                    layer.ale.restoreState(v)
                else:
                    setattr(layer, k, copy.deepcopy(v))


class RoomTracker:
    """Distinct rooms visited in Montezuma's Revenge, read from the emulator RAM.

    RAM byte 3 is the room and byte 57 the level (as in the RND authors' code);
    a room is counted once per level.
    """

    ROOM, LEVEL = 3, 57

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        if not isinstance(envs, SyncVectorEnv):
            raise TypeError("RoomTracker reads the RAM of a gymnasium SyncVectorEnv's sub-envs")
        self._ales = [env.unwrapped.ale for env in envs.envs]
        self.visited: set[tuple[int, int]] = set()

    def update(self) -> int:
        """Record the rooms the environments are in now; returns the count so far."""
        for ale in self._ales:
            ram = ale.getRAM()
            self.visited.add((int(ram[self.LEVEL]), int(ram[self.ROOM])))
        return len(self.visited)
