"""Train C51, a distributional ensemble, or independent C51 agents on a gymnasium environment.

One loop serves all three: ``k`` members each act in their own environment
(one gymnasium ``SyncVectorEnv`` with ``k`` copies) and keep their own replay;
they differ only in the target they learn toward, taken from one table
(:data:`TARGETS`): their own (``c51`` with ``k = 1``, ``independent``) or the
ensemble's mixture (``ensemble``). ``total_steps`` counts environment steps
over all members, so arms with the same ``total_steps`` see the same data budget.

Fields left at ``None`` take the preset for the environment (:data:`PRESETS`):
the C51 paper's Atari settings, MinAtar settings, and tuned classic-control ones.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from distributional.c51 import C51, c51_targets, make_network
from distributional.categorical import Support
from distributional.ensemble import mixture_act, mixture_targets
from rlcore import Logger, load_checkpoint, progress, save_checkpoint, seed_everything
from rlcore.buffers import ReplayBuffer
from rlcore.config import option, require

__all__ = [
    "PRESETS", "TARGETS", "TrainConfig", "evaluate", "load_agents", "make_env", "train",
]

TARGETS: dict[str, Callable] = {
    "c51": c51_targets,
    "independent": c51_targets,
    "ensemble": mixture_targets,
}

_CLASSIC = dict(
    n_atoms=51, v_min=-100.0, v_max=100.0, hidden="128,128", lr=2.5e-4, adam_eps=3.125e-4,
    batch_size=64, buffer_size=50_000, learning_starts=1_000, train_freq=1,
    target_update=500, n_step=3, gamma=0.99, eps_end=0.02, eps_decay_steps=10_000,
)
PRESETS: dict[str, dict[str, Any]] = {
    "classic": _CLASSIC,
    "CartPole-v1": {**_CLASSIC, "v_min": 0.0},
    "minatar": dict(
        n_atoms=51, v_min=-10.0, v_max=10.0, hidden="256,256", lr=2.5e-4, adam_eps=3.125e-4,
        batch_size=32, buffer_size=100_000, learning_starts=5_000, train_freq=1,
        target_update=1_000, n_step=3, gamma=0.99, eps_end=0.05, eps_decay_steps=50_000,
    ),
    # Bellemare et al. 2017: DQN's settings, 51 atoms on [-10, 10], Adam eps 0.01 / 32.
    "atari": dict(
        n_atoms=51, v_min=-10.0, v_max=10.0, hidden="512", lr=2.5e-4, adam_eps=0.01 / 32,
        batch_size=32, buffer_size=1_000_000, learning_starts=50_000, train_freq=4,
        target_update=10_000, n_step=1, gamma=0.99, eps_end=0.01, eps_decay_steps=1_000_000,
    ),
}


def env_family(env_id: str) -> str:
    """``atari`` for ``ALE/...``, ``minatar`` for ``MinAtar/...``, else ``classic``."""
    if env_id.startswith("ALE/"):
        return "atari"
    return "minatar" if env_id.startswith("MinAtar/") else "classic"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Train C51, a distributional ensemble or independent C51 agents."""

    env_id: str = option("CartPole-v1", "gymnasium id (classic control, MinAtar/..., ALE/...)")
    agent: Literal["c51", "ensemble", "independent"] = option(
        "c51", "c51: one agent; ensemble: mixture targets; independent: k separate C51 agents")
    members: int = option(1, "ensemble size k (must be 1 for c51)")
    total_steps: int = option(100_000, "environment steps over all members together")
    n_atoms: int | None = option(None, "atoms of the support (None: preset)")
    v_min: float | None = option(None, "smallest atom (None: preset)")
    v_max: float | None = option(None, "largest atom (None: preset)")
    hidden: str | None = option(None, "MLP widths, comma separated (None: preset; ignored for Atari)")
    lr: float | None = option(None, "Adam learning rate (None: preset)")
    adam_eps: float | None = option(None, "Adam epsilon (None: preset)")
    batch_size: int | None = option(None, "replay batch per member and gradient step (None: preset)")
    buffer_size: int | None = option(None, "replay capacity per member (None: preset)")
    learning_starts: int | None = option(None, "agent steps before learning (None: preset)")
    train_freq: int | None = option(None, "agent steps per gradient step (None: preset)")
    target_update: int | None = option(None, "agent steps between target copies (None: preset)")
    n_step: int | None = option(None, "n-step return length (None: preset)")
    gamma: float | None = option(None, "discount (None: preset)")
    eps_start: float = option(1.0, "initial exploration epsilon")
    eps_end: float | None = option(None, "final epsilon (None: preset)")
    eps_decay_steps: int | None = option(None, "agent steps of linear epsilon decay (None: preset)")
    eval_every: int = option(10_000, "environment steps (all members) between evaluations; 0: end only")
    eval_episodes: int = option(10, "greedy episodes per evaluated policy")
    log_every: int = option(1_000, "environment steps (all members) between training logs")
    checkpoint_every: int = option(50_000, "environment steps between checkpoints; 0: end only")
    threads: int = option(1, "torch CPU threads")
    device: str = option("cpu", "torch device")
    seed: int = option(0, "random seed (0 is a seed)")
    run_dir: str = option("runs/distributional", "TensorBoard logs and checkpoint folder")
    resume: bool = option(False, "continue from run_dir/checkpoint.pt")

    def __post_init__(self) -> None:
        require(self.members >= 1, "members", ">= 1 (k >= 1)", self.members)
        require(self.agent != "c51" or self.members == 1, "members", "1 for agent c51",
                self.members)
        require(self.total_steps >= self.members, "total_steps", ">= members", self.total_steps)
        for name in ("eval_every", "log_every", "checkpoint_every"):
            require(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        for name in ("eval_episodes", "threads"):
            require(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(0 <= self.eps_start <= 1, "eps_start", "in [0, 1]", self.eps_start)
        require(self.n_atoms is None or self.n_atoms >= 2, "n_atoms", ">= 2", self.n_atoms)
        if self.v_min is not None and self.v_max is not None:
            require(self.v_min < self.v_max, "v_min", f"< v_max = {self.v_max}", self.v_min)
        for name in ("batch_size", "learning_starts", "train_freq", "target_update",
                     "n_step", "eps_decay_steps"):
            value = getattr(self, name)
            minimum = 0 if name == "learning_starts" else 1
            require(value is None or value >= minimum, name, f">= {minimum}", value)
        require(self.buffer_size is None or self.buffer_size >= 2, "buffer_size", ">= 2",
                self.buffer_size)
        for name in ("lr", "adam_eps"):
            require(getattr(self, name) is None or getattr(self, name) > 0, name, "> 0",
                    getattr(self, name))
        for name in ("gamma", "eps_end"):
            value = getattr(self, name)
            require(value is None or 0 <= value <= 1, name, "in [0, 1]", value)
        if self.hidden is not None:
            widths = self.hidden.split(",")
            require(all(w.strip().isdigit() and int(w) > 0 for w in widths), "hidden",
                    "comma-separated positive ints like '64,64'", self.hidden)

    def resolved(self) -> TrainConfig:
        """This config with every ``None`` replaced by the environment's preset."""
        preset = PRESETS.get(self.env_id, PRESETS[env_family(self.env_id)])
        return dataclasses.replace(self, **{
            k: v for k, v in preset.items() if getattr(self, k) is None
        })


def make_env(env_id: str) -> gym.Env:
    """One environment; Atari gets the paper's preprocessing and a 4-frame stack."""
    family = env_family(env_id)
    if family == "minatar":
        import minatar.gym

        if env_id not in gym.registry:
            minatar.gym.register_envs()
        return gym.make(env_id)
    if family == "atari":
        import ale_py

        gym.register_envs(ale_py)
        env = gym.wrappers.AtariPreprocessing(gym.make(env_id, frameskip=1), noop_max=30)
        return gym.wrappers.FrameStackObservation(env, 4)
    return gym.make(env_id)


def _vector_env(env_id: str, n: int) -> gym.vector.SyncVectorEnv:
    # functools.partial pickles (a lambda would not), so the envs go into checkpoints.
    return gym.vector.SyncVectorEnv(
        [functools.partial(make_env, env_id) for _ in range(n)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def evaluate(
    env_id: str, policy: Callable[[Tensor], Tensor], episodes: int, seed: int,
    device: str | torch.device = "cpu",
) -> float:
    """Mean return of ``policy`` (observations -> actions) over ``episodes`` episodes
    with fixed seeds, run side by side; the global RNGs are not touched."""
    envs = _vector_env(env_id, episodes)
    obs, _ = envs.reset(seed=[seed + i for i in range(episodes)])
    returns, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not done.all():
        with torch.no_grad():
            actions = policy(torch.as_tensor(obs, device=device)).cpu().numpy()
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        returns += np.where(done, 0.0, rewards)
        done |= terminated | truncated
    envs.close()
    return float(returns.mean())


def _evaluate_all(cfg: TrainConfig, agents: list[C51]) -> dict[str, float]:
    seed = cfg.seed + 1_000_003  # evaluation episodes never share seeds with training ones
    metrics = {
        f"eval/return_member{i}": evaluate(
            cfg.env_id, lambda o, a=a: a.support.mean(a.probs(o)).argmax(1),
            cfg.eval_episodes, seed, cfg.device)
        for i, a in enumerate(agents)
    }
    metrics["eval/return_member_mean"] = float(np.mean(list(metrics.values())))
    if len(agents) > 1:
        metrics["eval/return_ensemble"] = evaluate(
            cfg.env_id, lambda o: mixture_act(agents, o), cfg.eval_episodes, seed, cfg.device)
    return metrics


def _pickle_envs(envs: gym.vector.SyncVectorEnv) -> bytes:
    # An ALE emulator pickles without its RNG (sticky actions would then differ after
    # a resume), so its full state is cloned alongside.
    ale = [e.unwrapped.clone_state(include_rng=True) if env_family(e.spec.id) == "atari"
           else None for e in envs.envs]
    return pickle.dumps((envs, ale))


def _unpickle_envs(blob: bytes) -> gym.vector.SyncVectorEnv:
    envs, ale = pickle.loads(blob)
    for env, state in zip(envs.envs, ale, strict=True):
        if state is not None:
            env.unwrapped.restore_state(state)
    return envs


def _check_resume(cfg: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    free = ("total_steps", "resume", "eval_every", "log_every", "checkpoint_every", "device")
    ours = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in free}
    theirs = {k: v for k, v in saved.items() if k not in free}
    if ours != theirs:
        raise ValueError(f"--resume: {path} was trained with another config: {theirs}")


def _build_agents(cfg: TrainConfig, obs_shape: tuple[int, ...], n_actions: int) -> list[C51]:
    support = Support(cfg.v_min, cfg.v_max, cfg.n_atoms, cfg.device)
    hidden = [int(w) for w in cfg.hidden.split(",")]
    return [C51(make_network(obs_shape, n_actions, cfg.n_atoms, hidden).to(cfg.device),
                support, cfg.lr, cfg.adam_eps) for _ in range(cfg.members)]


def load_agents(
    path: str | Path, device: str = "cpu"
) -> tuple[TrainConfig, list[C51]]:
    """The config and trained members saved in a checkpoint written by :func:`train`
    (the global RNGs are left alone)."""
    state = load_checkpoint(path, map_location=device, restore_rng=False)
    cfg = dataclasses.replace(TrainConfig(**state["config"]), device=device)
    env = make_env(cfg.env_id)
    agents = _build_agents(cfg, env.observation_space.shape, int(env.action_space.n))
    env.close()
    for agent, member in zip(agents, state["members"], strict=True):
        agent.load_state_dict(member["agent"])
    return cfg, agents


def train(cfg: TrainConfig) -> dict[str, float]:
    """Train, log to ``cfg.run_dir`` and checkpoint; returns the final evaluation."""
    cfg = cfg.resolved()
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    k, dev = cfg.members, torch.device(cfg.device)
    envs = _vector_env(cfg.env_id, k)
    obs, _ = envs.reset(seed=[cfg.seed * 1000 + i for i in range(k)])
    obs_shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)
    agents = _build_agents(cfg, obs_shape, n_actions)
    stack = obs_shape[0] if env_family(cfg.env_id) == "atari" else 1
    buffers = [ReplayBuffer(cfg.buffer_size, obs_shape, envs.single_observation_space.dtype,
                            n_step=cfg.n_step, gamma=cfg.gamma, frame_stack=stack,
                            seed=cfg.seed * 1000 + i) for i in range(k)]
    targets_fn, rng = TARGETS[cfg.agent], np.random.default_rng(cfg.seed)
    clip = env_family(cfg.env_id) == "atari"  # the paper learns from clipped Atari rewards
    run_dir = Path(cfg.run_dir)
    ckpt = run_dir / "checkpoint.pt"
    start, episode_return = 0, np.zeros(k)
    if cfg.resume:
        state = load_checkpoint(ckpt)
        _check_resume(cfg, state["config"], ckpt)
        for agent, buffer, s in zip(agents, buffers, state["members"], strict=True):
            agent.load_state_dict(s["agent"])
            buffer.load_state_dict(s["buffer"])
        envs.close()
        envs, obs = _unpickle_envs(state["envs"]), state["obs"]
        start, episode_return = state["iteration"], state["episode_return"]
        rng.bit_generator.state = state["exploration_rng"]
    logger = Logger(run_dir, config=dataclasses.asdict(cfg))
    iterations = cfg.total_steps // k

    def every(period: int, it: int) -> bool:  # period in environment steps over all members
        return period > 0 and (it * k) // period != ((it - 1) * k) // period

    def checkpoint(it: int) -> None:
        save_checkpoint(ckpt, {
            "members": [{"agent": a.state_dict(), "buffer": b.state_dict()}
                        for a, b in zip(agents, buffers, strict=True)],
            "envs": _pickle_envs(envs), "obs": obs, "iteration": it,
            "episode_return": episode_return, "exploration_rng": rng.bit_generator.state,
            "config": dataclasses.asdict(cfg)})

    tic, tic_it, losses, result = time.perf_counter(), start, [], {}
    for it in progress(range(start + 1, iterations + 1), total=iterations, desc=cfg.agent):
        eps = cfg.eps_start + min(1.0, (it - 1) / cfg.eps_decay_steps) * (cfg.eps_end - cfg.eps_start)
        obs_t = torch.as_tensor(obs, device=dev)
        actions = np.concatenate([a.act(obs_t[i : i + 1], eps, rng) for i, a in enumerate(agents)])
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        ended = terminated | truncated
        final = next_obs.copy()
        for i in np.flatnonzero(ended):
            final[i] = info["final_obs"][i]
        learn_rewards = np.clip(rewards, -1.0, 1.0) if clip else rewards
        for i, buffer in enumerate(buffers):
            buffer.add(obs[i : i + 1], actions[i : i + 1], learn_rewards[i : i + 1],
                       terminated[i : i + 1], truncated[i : i + 1], final[i : i + 1])
        episode_return += rewards
        for i in np.flatnonzero(ended):
            logger.log({f"train/return_member{i}": episode_return[i]}, it * k)
            episode_return[i] = 0.0
        obs = next_obs
        if it > cfg.learning_starts and it % cfg.train_freq == 0:
            batches = [b.sample(cfg.batch_size, dev) for b in buffers]
            targets = targets_fn(agents, batches)
            losses += [a.learn(b, t) for a, b, t in zip(agents, batches, targets, strict=True)]
            last_obs = [b.obs for b in batches]
        if it % cfg.target_update == 0:
            for agent in agents:
                agent.sync_target()
        if every(cfg.log_every, it) and losses:
            sps = (it - tic_it) * k / (time.perf_counter() - tic)
            mean_q = np.mean([a.mean_q(o) for a, o in zip(agents, last_obs, strict=True)])
            logger.log({"loss/categorical": float(np.mean(losses)), "train/mean_q": mean_q,
                        "charts/epsilon": eps, "time/sps": sps}, it * k)
            tic, tic_it, losses = time.perf_counter(), it, []
        pause = time.perf_counter()  # time/sps counts training only, not these
        if every(cfg.eval_every, it) or it == iterations:
            result = _evaluate_all(cfg, agents)
            logger.log(result, it * k)
        if every(cfg.checkpoint_every, it) or it == iterations:
            checkpoint(it)
        tic += time.perf_counter() - pause
    logger.close()
    envs.close()
    return result
