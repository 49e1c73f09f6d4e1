"""PPO, and PPO with Random Network Distillation, on any discrete-action vector env.

:func:`train` is the whole agent, top to bottom: collect a rollout, add RND's
intrinsic stream if asked, compute both streams' advantages with rlcore's GAE,
run rlcore's PPO update, log, checkpoint. ``examples/train_atari.py`` is its
command line; :func:`evaluate` plays a trained checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from exploration.envs import (
    RoomTracker,
    check_env_id,
    is_atari,
    make_env,
    make_vector_env,
    restore_envs,
    snapshot_envs,
)
from exploration.rnd import RND
from rlcore import Logger, load_checkpoint, save_checkpoint, seed_everything
from rlcore.config import option, require
from rlcore.networks import bf16_is_fast
from rlcore.ppo import ActorCritic, PPOConfig, ppo_update, stream_advantages

__all__ = ["AgentConfig", "build_model", "evaluate", "load_agent", "train"]

# The reference settings of each algorithm (REFERENCE.md: CleanRL Atari PPO; Burda et al. 2018).
ALGO_DEFAULTS: dict[str, dict[str, float]] = {
    "ppo": {"lr": 2.5e-4, "gamma": 0.99, "ent_coef": 0.01},
    "rnd": {"lr": 1e-4, "gamma": 0.999, "ent_coef": 0.001},
}
# Fields that may change when a run is resumed (weights stay fp32 whatever the precision, so a
# run may move between machines; the resume is then exact up to the precision change).
RESUMABLE = ("total_steps", "resume", "checkpoint_every", "device", "torch_threads", "console",
             "precision")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """Train PPO or PPO-RND on a discrete-action environment (Atari: the RND paper's preprocessing)."""

    env: str = option("ALE/Breakout-v5", "gymnasium env id: ALE/<Game>-v5, CartPole-v1, exploration/Chain-v0, ...")
    algo: Literal["ppo", "rnd"] = option("ppo", "ppo, or rnd: PPO plus Random Network Distillation's intrinsic reward")
    vector_env: Literal["gymnasium", "ale"] = option(
        "gymnasium", "gymnasium: envs stepped in-process, exact --resume and Montezuma room counts; "
        "ale: ale-py's threaded AtariVectorEnv, faster, but --resume restarts the episodes")
    num_envs: int = option(8, "parallel environments (the RND paper used 128)")
    num_steps: int = option(128, "steps per environment per rollout")
    total_steps: int = option(10_000_000, "agent steps over all environments to train for (x4 frames on Atari); may grow on --resume")
    lr: float | None = option(None, "Adam learning rate; None: 2.5e-4 for ppo, 1e-4 for rnd")
    anneal_lr: bool = option(True, "anneal the learning rate linearly to 0 at total_steps (CleanRL; the RND paper keeps it constant)")
    gamma: float | None = option(None, "discount of the extrinsic reward; None: 0.99 for ppo, 0.999 for rnd")
    gamma_int: float = option(0.99, "discount of RND's intrinsic reward")
    lam: float = option(0.95, "GAE lambda of both streams")
    epochs: int = option(4, "PPO epochs per rollout")
    minibatches: int = option(4, "minibatches per epoch")
    clip: float = option(0.1, "PPO clip range of the probability ratio")
    ent_coef: float | None = option(None, "entropy bonus; None: 0.01 for ppo, 0.001 for rnd")
    vf_coef: float = option(0.5, "value loss coefficient")
    max_grad_norm: float = option(0.5, "global gradient-norm clip")
    ext_coef: float = option(2.0, "rnd: coefficient of the extrinsic advantage")
    int_coef: float = option(1.0, "rnd: coefficient of the intrinsic advantage")
    rnd_proportion: float | None = option(
        None, "rnd: fraction of each minibatch the predictor trains on; None: min(1, 32 / num_envs), "
        "RND's rule (25 %% with the paper's 128 envs: as many samples as 32 envs give)")
    rnd_init_steps: int = option(
        50 * 128, "rnd: random-agent steps per env that initialise the observation statistics "
        "(RND's code and CleanRL: 50 rollouts of 128)")
    clip_rewards: bool = option(True, "learn from the sign of the extrinsic reward (Atari convention); returns are logged unclipped")
    sticky: float = option(0.25, "Atari: probability of repeating the previous action (sticky actions)")
    max_episode_frames: int = option(18_000, "Atari: emulator frames per episode before truncation")
    hidden: int = option(64, "vector observations: width of the two hidden layers of policy and value MLPs")
    seed: int = option(0, "random seed (0 is a seed); environment i is reset with seed + i")
    precision: Literal["auto", "fp32", "bf16"] = option(
        "auto", "Atari policy network's compute: fp32, or bf16 autocast (about 2x faster "
        "updates on CPUs with bf16 instructions; weights and optimizer stay fp32); "
        "auto: bf16 where the device computes it natively, else fp32")
    device: str = option("cpu", "torch device, e.g. cpu or cuda")
    torch_threads: int = option(0, "torch CPU threads; 0 keeps torch's default (one per core); 1 is much faster for small MLPs")
    run_dir: str | None = option(None, "TensorBoard logs and checkpoint; None: runs/<env>_<algo>_seed<seed>")
    checkpoint_every: int = option(10, "save run_dir/checkpoint.pt every this many updates (and at the end)")
    resume: bool = option(False, "continue exactly from run_dir/checkpoint.pt")
    console: bool = option(False, "also print every update's metrics")

    def __post_init__(self) -> None:
        check_env_id(self.env)
        for name, value in ALGO_DEFAULTS[self.algo].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', "
                             f"got {self.device!r}") from None
        if self.precision == "auto":
            object.__setattr__(self, "precision", "bf16" if bf16_is_fast(self.device) else "fp32")
        if self.run_dir is None:
            name = f"{self.env.replace('/', '_')}_{self.algo}_seed{self.seed}"
            object.__setattr__(self, "run_dir", str(Path("runs") / name))
        for name in ("num_envs", "num_steps", "epochs", "minibatches", "hidden", "checkpoint_every",
                     "max_episode_frames"):
            require(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        require(self.total_steps >= self.num_envs * self.num_steps, "total_steps",
                f">= num_envs * num_steps ({self.num_envs * self.num_steps})", self.total_steps)
        require(self.minibatches <= self.num_envs * self.num_steps, "minibatches",
                "<= num_envs * num_steps", self.minibatches)
        for name in ("gamma", "gamma_int", "lam", "sticky"):
            require(0 <= getattr(self, name) <= 1, name, "in [0, 1]", getattr(self, name))
        for name in ("lr", "clip", "max_grad_norm"):
            require(getattr(self, name) > 0, name, "> 0", getattr(self, name))
        for name in ("ent_coef", "vf_coef", "ext_coef", "int_coef", "rnd_init_steps", "torch_threads"):
            require(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        if self.rnd_proportion is None:  # num_envs is checked by now
            object.__setattr__(self, "rnd_proportion", min(1.0, 32 / self.num_envs))
        require(0 < self.rnd_proportion <= 1, "rnd_proportion", "in (0, 1]", self.rnd_proportion)
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(self.vector_env == "gymnasium" or is_atari(self.env), "vector_env",
                "'gymnasium' for a non-Atari env", self.vector_env)

    def ppo(self) -> PPOConfig:
        return PPOConfig(epochs=self.epochs, minibatches=self.minibatches, clip=self.clip,
                         ent_coef=self.ent_coef, vf_coef=self.vf_coef,
                         max_grad_norm=self.max_grad_norm)


def build_model(cfg: AgentConfig, obs_shape: tuple[int, ...], num_actions: int) -> ActorCritic:
    """Nature CNN for frame stacks, MLPs for vectors; one value head per reward stream."""
    heads = 2 if cfg.algo == "rnd" else 1
    # RND's CNN value heads start near 0 (its code's init scale 0.01): until the first game
    # reward, a full-size V_ext on the trunk shared with the policy feeds noise into 2 * A_ext
    # that drowned the intrinsic advantage on Montezuma. The MLPs keep CleanRL's gain 1 (their
    # value trunk is separate; the Chain test learns with it, and did not with 0.01).
    gain = 0.01 if cfg.algo == "rnd" else 1.0
    if len(obs_shape) == 3:
        dtype = torch.bfloat16 if cfg.precision == "bf16" else None
        return ActorCritic.nature_cnn(obs_shape[0], num_actions, heads, compute_dtype=dtype,
                                      value_gain=gain)
    if len(obs_shape) != 1:
        raise ValueError(f"observations must be frame stacks (C, 84, 84) or vectors, got {obs_shape}")
    return ActorCritic.mlp(obs_shape[0], num_actions, heads, (cfg.hidden, cfg.hidden))


def _check_compatible(saved: dict[str, Any], cfg: AgentConfig, path: Path) -> None:
    """A checkpoint of another env or algorithm is refused by name, other settings listed."""
    for key in ("env", "algo"):
        if saved.get(key) != getattr(cfg, key):
            raise ValueError(f"{path} was trained with {key}={saved.get(key)!r}, this run asks for "
                             f"{key}={getattr(cfg, key)!r}")
    current = dataclasses.asdict(cfg)
    diff = {k: (saved.get(k), v) for k, v in current.items() if k not in RESUMABLE and saved.get(k) != v}
    if diff:
        raise ValueError(f"--resume: {path} was trained with another config (saved, now): {diff}")


def _real_next_obs(next_obs: np.ndarray, done: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The observation each step really led to (same-step autoreset hides the last one in info)."""
    if not done.any():
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(done):
        real[i] = info["final_obs"][i]
    return real


def _start(cfg: AgentConfig, envs: Any, model: nn.Module, optimizer: torch.optim.Optimizer,
           rnd: RND | None, rooms: RoomTracker | None, ckpt: Path) -> tuple[dict[str, Any], Tensor]:
    """A fresh start (RND's observation statistics from a random agent) or the checkpoint's state."""
    if cfg.resume:
        state = load_checkpoint(ckpt, map_location=cfg.device)
        _check_compatible(state["config"], cfg, ckpt)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if rnd:
            rnd.load_state_dict(state["rnd"])
        if rooms:
            rooms.visited = state["rooms"]
        if state["envs"] is not None:
            restore_envs(envs, state["envs"])
            return state["progress"], state["obs"]
        print("--vector-env ale cannot restore environment states: the episodes restart")
        progress = {**state["progress"], "ep_return": np.zeros(cfg.num_envs),
                    "ep_length": np.zeros(cfg.num_envs, dtype=np.int64)}
        return progress, torch.as_tensor(envs.reset(seed=cfg.seed + progress["update"])[0])
    obs = envs.reset(seed=cfg.seed)[0]
    for _ in range(cfg.rnd_init_steps if rnd else 0):
        obs, _, term, trunc, info = envs.step(np.random.randint(envs.single_action_space.n,
                                                                size=cfg.num_envs))
        rnd.update_obs_stats(rnd.select(torch.as_tensor(_real_next_obs(obs, term | trunc, info))))
    progress = {"update": 0, "step": 0, "elapsed": 0.0, "best_return": -math.inf, "returns": [],
                "ep_return": np.zeros(cfg.num_envs), "ep_length": np.zeros(cfg.num_envs, dtype=np.int64)}
    return progress, torch.as_tensor(obs)


def train(cfg: AgentConfig) -> dict[str, float]:
    """Train, log to TensorBoard under ``cfg.run_dir`` and checkpoint; returns summary numbers."""
    seed_everything(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    envs = make_vector_env(cfg.env, cfg.num_envs, cfg.vector_env, cfg.sticky, cfg.max_episode_frames)
    obs_shape, T, N, dev = envs.single_observation_space.shape, cfg.num_steps, cfg.num_envs, cfg.device
    model = build_model(cfg, obs_shape, int(envs.single_action_space.n)).to(dev)
    rnd = RND(obs_shape, N, cfg.gamma_int, cfg.rnd_proportion, device=dev) if cfg.algo == "rnd" else None
    optimizer = torch.optim.Adam([*model.parameters(), *(rnd.predictor.parameters() if rnd else [])],
                                 lr=cfg.lr, eps=1e-5)
    snapshots = cfg.vector_env == "gymnasium"
    rooms = RoomTracker(envs) if "MontezumaRevenge" in cfg.env and snapshots else None
    ckpt, num_updates = Path(cfg.run_dir) / "checkpoint.pt", cfg.total_steps // (N * T)
    s, obs = _start(cfg, envs, model, optimizer, rnd, rooms, ckpt)
    logger = Logger(cfg.run_dir, config=dataclasses.asdict(cfg), console=cfg.console)
    buf = {"obs": torch.zeros((T, N, *obs_shape), dtype=obs.dtype),
           "actions": torch.zeros(T, N, dtype=torch.long), "logp": torch.zeros(T, N),
           "values": torch.zeros(T, N, 2 if rnd else 1), "reward": torch.zeros(T, N),
           "done": torch.zeros(T, N)}
    if rnd:
        buf["rnd_obs"] = torch.zeros((T, N, *rnd.input_shape), dtype=obs.dtype)
    aux = (lambda mb: rnd.loss(mb["rnd_obs"])) if rnd else None  # RND's predictor, same minibatches
    while s["update"] < num_updates:
        tic, finished = time.perf_counter(), []
        if cfg.anneal_lr:
            optimizer.param_groups[0]["lr"] = cfg.lr * (1.0 - s["update"] / num_updates)
        for t in range(T):
            with torch.no_grad():
                logits, values = model(obs.to(dev))
                action = torch.distributions.Categorical(logits=logits).sample()
                logp = torch.log_softmax(logits, -1).gather(1, action[:, None])[:, 0]
            nxt, reward, term, trunc, info = envs.step(action.cpu().numpy())
            real_next = torch.as_tensor(_real_next_obs(nxt, term | trunc, info))
            learn = torch.as_tensor(np.sign(reward) if cfg.clip_rewards else reward).float()
            cut = torch.as_tensor(trunc & ~term)
            if cut.any():  # a time limit is not a terminal state: bootstrap V_ext(final obs)
                with torch.no_grad():
                    learn[cut] += cfg.gamma * model(real_next[cut].to(dev))[1][:, 0].cpu()
            for key, value in (("obs", obs), ("actions", action), ("logp", logp), ("values", values),
                               ("reward", learn), ("done", torch.as_tensor(term | trunc))):
                buf[key][t] = value.cpu()
            if rnd:
                buf["rnd_obs"][t] = rnd.select(real_next)
            s["ep_return"] += reward
            s["ep_length"] += 1
            for i in np.flatnonzero(term | trunc):
                finished.append((float(s["ep_return"][i]), int(s["ep_length"][i])))
                s["ep_return"][i], s["ep_length"][i] = 0.0, 0
            if rooms:
                rooms.update()
            obs = torch.as_tensor(nxt)
        with torch.no_grad():
            last_values = model(obs.to(dev))[1].cpu()
        rewards, dones, log = [buf["reward"]], [buf["done"]], {}
        if rnd:
            seen = buf["rnd_obs"].flatten(0, 1).to(dev)
            rnd.update_obs_stats(seen)
            raw = rnd.novelty(seen).view(T, N).cpu()
            rewards.append(rnd.scale(raw))  # a stream of its own; the extrinsic reward is untouched
            dones.append(None)  # the intrinsic stream is non-episodic
            log.update({"rollout/intrinsic_reward": float(rewards[1].mean()),
                        "rollout/intrinsic_reward_raw": float(raw.mean())})
        adv, ret = stream_advantages(rewards, buf["values"], dones, last_values,
                                     [cfg.gamma, cfg.gamma_int][: len(rewards)], cfg.lam,
                                     [cfg.ext_coef, cfg.int_coef] if rnd else [1.0])
        batch = {k: v.flatten(0, 1).to(dev) for k, v in buf.items() if k not in ("reward", "done")}
        batch.update(advantages=adv.flatten().to(dev), returns=ret.flatten(0, 1).to(dev))
        log.update(ppo_update(model, optimizer, batch, cfg.ppo(), aux,
                              ["extrinsic", "intrinsic"] if rnd else None))
        seconds = time.perf_counter() - tic
        s.update(update=s["update"] + 1, step=s["step"] + N * T, elapsed=s["elapsed"] + seconds)
        log.update({"time/sps": N * T / seconds, "time/elapsed_hours": s["elapsed"] / 3600,
                    "charts/learning_rate": optimizer.param_groups[0]["lr"],
                    "charts/frames": s["step"] * (4 if is_atari(cfg.env) else 1),
                    "rollout/extrinsic_reward": float(buf["reward"].mean()),
                    "rollout/extrinsic_return": float(ret[..., 0].mean())})
        if rnd:
            log["rollout/intrinsic_return"] = float(ret[..., 1].mean())
        if finished:
            s["returns"] = (s["returns"] + [r for r, _ in finished])[-100:]
            s["best_return"] = max(s["best_return"], *(r for r, _ in finished))
            log.update({"charts/episode_return": float(np.mean([r for r, _ in finished])),
                        "charts/episode_length": float(np.mean([n for _, n in finished]))})
        if rooms:
            log["charts/rooms_visited"] = len(rooms.visited)
        logger.log(log, s["step"])
        if s["update"] % cfg.checkpoint_every == 0 or s["update"] == num_updates:
            save_checkpoint(ckpt, {
                "config": dataclasses.asdict(cfg), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "rnd": rnd.state_dict() if rnd else None,
                "progress": s, "obs": obs, "envs": snapshot_envs(envs) if snapshots else None,
                "rooms": rooms.visited if rooms else None})
    logger.close()
    envs.close()
    return {"global_step": float(s["step"]), "best_return": float(s["best_return"]),
            "mean_return_last_100": float(np.mean(s["returns"])) if s["returns"] else float("nan")}


def load_agent(path: str | Path, env: str | None = None, device: str = "cpu",
               ) -> tuple[AgentConfig, ActorCritic]:
    """The config and trained model of a checkpoint written by :func:`train`.

    ``env``, when given, must be the env the checkpoint was trained on.
    """
    state = load_checkpoint(path, map_location=device, restore_rng=False)
    saved = state.get("config")
    if not isinstance(saved, dict) or "algo" not in saved or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint of exploration.agent.train")
    if env is not None and env != saved["env"]:
        raise ValueError(f"{path} was trained on env {saved['env']!r}, not {env!r}")
    cfg = AgentConfig(**{**saved, "resume": False})
    probe = make_env(cfg.env, cfg.sticky, cfg.max_episode_frames)
    model = build_model(cfg, probe.observation_space.shape, int(probe.action_space.n))
    probe.close()
    model.load_state_dict(state["model"])
    return cfg, model.to(device).eval()


def evaluate(
    cfg: AgentConfig, model: nn.Module, episodes: int = 10, seed: int = 10_000,
    greedy: bool = False, video: str | Path | None = None, device: str = "cpu",
) -> list[float]:
    """Play ``episodes`` full episodes (unclipped returns); optionally record them to an mp4.

    The policy samples its actions, as in training and the RND paper's
    evaluation; ``greedy`` takes the most likely action instead.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    import cv2  # only for the video (opencv comes with the atari extra)

    env = make_env(cfg.env, cfg.sticky, cfg.max_episode_frames,
                   render_mode="rgb_array" if video is not None else None)
    writer = None
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            if video is not None:
                frame = env.render()
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            with torch.no_grad():
                logits, _ = model(torch.as_tensor(np.asarray(obs))[None].to(device))
            action = logits.argmax(-1) if greedy else torch.distributions.Categorical(logits=logits).sample()
            obs, reward, term, trunc, _ = env.step(int(action))
            total += float(reward)
            done = term or trunc
        returns.append(total)
    if writer is not None:
        writer.release()
    env.close()
    return returns
